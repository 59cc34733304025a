"""Watch System 1 play in a window, take over at any moment, or play inside the world model's dream.

  python -m experiments.play [--workdir=pretrained/tinymon] [--dream] [--rom=pokered.gb --state=F]
  python -m experiments.play --workdir=W --record=out.gif --steps=60          # headless, no window
  python -m experiments.play --workdir=W --headless --steps=40 --screenshot=docs/play_agent.png

The window shows the real game (x3), beside it the world model's forecast of the next k agent
steps under the actor's intended actions, and below System 2's goal, rationale and last outcome
and the last step's reward terms. 60 display frames/s; System 1 decides every 24 frames.

Keys: TAB System 1 / person; arrows, Z = A, X = B, Enter = START, Backspace = SELECT; P pause;
S speed 1x / 4x / max; D dream / real game at the same moment; R restart the dream from the current
real frame; C the dream's context (4 / 8 / 16 observed steps); Escape quits.

The workdir needs a world-model checkpoint (experiments.train_world_model); without System 1's
(experiments.train_agent) a person drives (random actions when headless).
"""

import json
import sys

from absl import flags

from dreamer_jax.play import run as play_run
from experiments import cli

_WORKDIR = flags.DEFINE_string('workdir', None,
                               f'Workdir with a world model (and System 1); default '
                               f'{play_run.DEFAULT_WORKDIR} if it exists.')
_DREAM = flags.DEFINE_bool('dream', False, 'Start inside the dream: the world model alone.')
_RECORD = flags.DEFINE_string('record', None, 'Write the picture to this .gif (or .mp4) with no '
                              'window; needs --steps.')
_STEPS = flags.DEFINE_integer('steps', None, 'Agent steps to run (the window closes after them).')
_HEADLESS = flags.DEFINE_bool('headless', False, 'No window (implied by --record); needs --steps.')
_SCREENSHOT = flags.DEFINE_string('screenshot', None, 'Save the picture at the end to this .png.')
_ROM = flags.DEFINE_string('rom', None, 'Another ROM (e.g. Pokémon Red) the model was trained on.')
_STATE = flags.DEFINE_string('state', None, 'Start state file (experiments.make_start_state).')
_KEYS = flags.DEFINE_string('keys', '', "Scripted keys 'FRAME:KEY,...' (60 frames per second), "
                            "e.g. '30:TAB,60:P'.")
_SPEED = flags.DEFINE_enum('speed', '1x', ['1x', '4x', 'max'], 'Starting speed.')
_CONTEXT = flags.DEFINE_integer('context', 8, "The dream's observed steps: 4, 8 or 16.")
_FORECAST = flags.DEFINE_integer('forecast', 4, 'Imagined frames in the forecast panel.')
_LATENT = flags.DEFINE_enum('latent', 'mode', ['mode', 'sample'],
                            "The world model's latents: most likely or sampled.")
_GREEDY = flags.DEFINE_bool('greedy', False, "System 1's most likely action, not a sample.")
_BACKEND = flags.DEFINE_string('backend', None, "System 2's backend; default the config's.")
_MAX_SECONDS = flags.DEFINE_float('max_seconds', None, 'Close the window after this many seconds.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds the samples and the random person.')
_JSON = flags.DEFINE_bool('json', False, 'Print the session (state, key events) as JSON at exit.')


def _note(text):
  print(f'note: {text}.', file=sys.stderr, flush=True)


def main(argv):
  del argv
  summary = play_run.run(
      _WORKDIR.value, dream=_DREAM.value, record=_RECORD.value, steps=_STEPS.value,
      headless=_HEADLESS.value, screenshot=_SCREENSHOT.value, rom=_ROM.value, state=_STATE.value,
      keys=_KEYS.value, speed=_SPEED.value, context=_CONTEXT.value, forecast=_FORECAST.value,
      latent=_LATENT.value, greedy=_GREEDY.value, backend=_BACKEND.value,
      max_seconds=_MAX_SECONDS.value, seed=_SEED.value, notify=_note)
  if _JSON.value:
    print(json.dumps(summary, indent=2, sort_keys=True))


if __name__ == '__main__':
  cli.run(main)

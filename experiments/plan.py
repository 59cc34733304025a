"""System 2 from the command line.

Print the planner's output JSON for the current screen (with no API key set, the offline planner
answers):
  python -m experiments.plan --backend offline [--rom PATH] [--state FILE] [--steps N]
  GEMINI_API_KEY=... python -m experiments.plan --backend gemini
Let the planner drive the scripted expert's goal controller until 3 badges, printing a summary:
  python -m experiments.plan --mode play --backend offline --max_steps 20000
"""

import json
import logging

from absl import flags

from dreamer_jax.planner import run
from experiments import cli

_CONFIG = cli.define_config()
_MODE = flags.DEFINE_enum('mode', 'screen', ['screen', 'play'],
                          'screen: plan once for the current screen; play: drive the expert.')
_BACKEND = flags.DEFINE_enum('backend', None, ['auto', 'gemini', 'openai', 'offline', 'scripted'],
                             'Planner backend; default config.planner.backend.')
_ROM = flags.DEFINE_string('rom', None, 'A tinymon ROM; default the committed one.')
_STATE = flags.DEFINE_string('state', None, 'A start state file; default the game start.')
_STEPS = flags.DEFINE_integer('steps', 0, 'screen mode: no-op steps before planning.')
_MAX_STEPS = flags.DEFINE_integer('max_steps', 20000, 'play mode: step budget.')


def main(argv):
  del argv
  logging.getLogger('dreamer_jax').setLevel(logging.INFO)
  config = _CONFIG.value
  if _MODE.value == 'screen':
    out = run.plan_screen(config, _ROM.value, _STATE.value, _BACKEND.value, _STEPS.value)
  else:
    out = run.play(config, _MAX_STEPS.value, _ROM.value, _STATE.value, _BACKEND.value or 'offline')
  # One line for the screen's plan (the embedding is long), an indented summary for a play run.
  print(json.dumps(out, indent=None if _MODE.value == 'screen' else 2))


if __name__ == '__main__':
  cli.run(main)

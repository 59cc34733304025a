"""Open-loop drift of a trained world model: prints one JSON object and writes a picture.

  python -m experiments.evaluate --workdir=runs/wm [--replay=demos/expert] [--png=runs/wm/drift.png]

Observes config.world_model.eval_context real steps, imagines eval_horizon steps with the real
actions, and reports the decoded position's drift in tiles (see dreamer_jax.world_model.evaluate).
"""

import json
import os

from absl import flags

from dreamer_jax.world_model import evaluate
from experiments import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'A workdir written by train_world_model.',
                               required=True)
_REPLAY = flags.DEFINE_string('replay', None, 'Replay to evaluate on; default the training replay.')
_PNG = flags.DEFINE_string('png', None, 'Picture path; default <workdir>/open_loop.png.')
_WINDOWS = flags.DEFINE_integer('windows', None, 'Windows; default config eval_sequences.')
_SEED = flags.DEFINE_integer('seed', 1, 'Picks the windows.')


def main(argv):
  del argv
  print(json.dumps(evaluate.run(_WORKDIR.value, _REPLAY.value, _PNG.value, _WINDOWS.value,
                                _SEED.value), indent=2, sort_keys=True))


if __name__ == '__main__':
  cli.run(main)

"""Trains System 1 (behaviour cloning, then the actor-critic in imagination) from a world model.

  python -m experiments.train_world_model --config=configs/v3.py --workdir=runs/wm --replay=runs/demos
  python -m experiments.train_agent --config=configs/v3.py --workdir=runs/wm --replay=runs/demos
Re-running with the same workdir resumes; --phase bc|imagine|both picks the phases.
"""

import json

from absl import flags

from dreamer_jax.agent import train
from experiments import cli

_CONFIG = cli.define_config()
_WORKDIR = flags.DEFINE_string('workdir', None, 'A world-model workdir; the agent is saved in it.',
                               required=True)
_REPLAY = flags.DEFINE_string('replay', None, 'Replay directory (labelled demonstrations for BC).',
                              required=True)
_PHASE = flags.DEFINE_enum('phase', 'both', list(train.PHASES), 'Which phases to run.')
_MINUTES = flags.DEFINE_float('minutes', None, 'Wall-clock budget; checkpoints and stops when spent.')


def main(argv):
  del argv
  _, metrics = train.train(_CONFIG.value, _WORKDIR.value, _REPLAY.value, phase=_PHASE.value,
                           minutes=_MINUTES.value)
  print(json.dumps(metrics, indent=1, sort_keys=True))


if __name__ == '__main__':
  cli.run(main)

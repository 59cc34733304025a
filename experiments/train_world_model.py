"""Trains the RSSM world model on a replay directory; re-running with the same workdir resumes.

  python -m experiments.collect_demos --policy expert --episodes 20 --out demos/expert
  python -m experiments.train_world_model --config=configs/v3.py --workdir=runs/wm --replay=demos/expert
  python -m experiments.evaluate --workdir=runs/wm
"""

from absl import flags

from dreamer_jax.world_model import train
from experiments import cli

_CONFIG = cli.define_config()
_WORKDIR = flags.DEFINE_string('workdir', None, 'Checkpoints go here; resumed from.', required=True)
_REPLAY = flags.DEFINE_string('replay', None, 'Replay directory to train on.', required=True)
_STEPS = flags.DEFINE_integer('steps', None, 'Total updates; default config.world_model.train_steps.')
_MINUTES = flags.DEFINE_float('minutes', None, 'Wall-clock budget; checkpoints and stops when spent.')


def main(argv):
  del argv
  _, metrics = train.train(_CONFIG.value, _WORKDIR.value, _REPLAY.value, steps=_STEPS.value,
                            minutes=_MINUTES.value)
  print(' '.join(f'{k}={v:.4g}' for k, v in sorted(metrics.items())))


if __name__ == '__main__':
  cli.run(main)

"""The main command: trains the dual agent end to end and evaluates it (dreamer_jax.loop).

  python -m experiments.dreamer --config=configs/v3.py                 # tinymon, the seed's sizes
  python -m experiments.dreamer --config=configs/v3.py:smoke           # every phase in minutes
  python -m experiments.dreamer --config=configs/v3.py:cpu --workdir=runs/cpu \\
      --config.dreamer.minutes=120                                      # one sitting; re-run resumes
Re-running with the same --workdir resumes where the last sitting stopped (also after a kill).
"""

import json
import sys

from absl import flags
from ml_collections import config_flags

from dreamer_jax import loop
from experiments import cli

_CONFIG = cli.define_config()
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory (default: runs/<config>_<preset>_<UTC '
                               'time>); an existing one is resumed.')


def main(argv):
  del argv
  workdir = _WORKDIR.value
  if not workdir:
    path, _, preset = config_flags.get_config_filename(flags.FLAGS['config']).partition(':')
    workdir = loop.default_workdir(path, preset)
  print(f'workdir: {workdir}', file=sys.stderr)
  result = loop.train_and_evaluate(_CONFIG.value, workdir)
  print(json.dumps(result, indent=1, sort_keys=True, default=str))


if __name__ == '__main__':
  cli.run(main)

"""The main command: trains the dual agent end to end and evaluates it (dreamer_jax.loop).

  python -m experiments.dreamer --config=configs/v3.py                 # tinymon, the seed's sizes
  python -m experiments.dreamer --config=configs/v3.py:smoke           # every phase in minutes
  python -m experiments.dreamer --config=configs/v3.py:cpu --workdir=runs/cpu \\
      --config.dreamer.minutes=120                                      # one sitting; re-run resumes
Re-running with the same --workdir resumes where the last sitting stopped (also after a kill).

Several hosts (or processes): the same command on each, with DREAMER_JAX_MULTIHOST=1 (TPU VM slices,
Slurm) or DREAMER_JAX_COORDINATOR / NUM_PROCESSES / PROCESS_ID (see dreamer_jax/distributed.py) and
one --workdir for all; process 0 alone prints.
"""

import json
import sys

from absl import flags
import jax
from ml_collections import config_flags

from dreamer_jax import distributed
from dreamer_jax import loop
from dreamer_jax.errors import UserError
from experiments import cli

_CONFIG = cli.define_config()
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory (default: runs/<config>_<preset>_<UTC '
                               'time>); an existing one is resumed.')


def main(argv):
  del argv
  # Before anything touches a device: jax.distributed must start first when it is asked for.
  distributed.maybe_initialize(_CONFIG.value)
  workdir = _WORKDIR.value
  if not workdir:
    if jax.process_count() > 1:
      raise UserError(f'--workdir is unset with {jax.process_count()} processes; expected one '
                      '--workdir for all of them (each would name its own default by the clock).')
    path, _, preset = config_flags.get_config_filename(flags.FLAGS['config']).partition(':')
    workdir = loop.default_workdir(path, preset)
  primary = distributed.is_primary()
  if primary:
    print(f'workdir: {workdir}', file=sys.stderr)
  result = loop.train_and_evaluate(_CONFIG.value, workdir)
  if primary:
    print(json.dumps(result, indent=1, sort_keys=True, default=str))


if __name__ == '__main__':
  cli.run(main)

"""Exports a trained workdir for shipping: parameters only (no optimisers, no replay), half precision.

  python -m experiments.export --workdir=runs/tm --out=pretrained/tinymon [--dtype float16]
The result is a workdir that experiments.evaluate and experiments.play accept.
"""

import json

from absl import flags

from dreamer_jax import export
from experiments import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained workdir (world model + agent).',
                               required=True)
_OUT = flags.DEFINE_string('out', None, 'A new directory to write.', required=True)
_DTYPE = flags.DEFINE_enum('dtype', 'float16', list(export.DTYPES), 'Parameter precision.')


def main(argv):
  del argv
  print(json.dumps(export.export(_WORKDIR.value, _OUT.value, _DTYPE.value), indent=1))


if __name__ == '__main__':
  cli.run(main)

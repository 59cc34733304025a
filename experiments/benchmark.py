"""Speed and size benchmarks: `python -m experiments.benchmark --suite {env,world_model,planner} [--json]`.

Speed lives here, never in timed tests. Each suite is a library function returning a dict of figures.
"""

import importlib
import json

from absl import app
from absl import flags

from dreamer_jax.errors import run_main

SUITES = {
    'env': 'dreamer_jax.envs.benchmark',
    'world_model': 'dreamer_jax.world_model.benchmark',
    'planner': 'dreamer_jax.planner.benchmark',
}

_SUITE = flags.DEFINE_enum('suite', 'env', list(SUITES), 'Which benchmark suite to run.')
_JSON = flags.DEFINE_bool('json', False, 'Print the figures as one JSON object.')
_QUICK = flags.DEFINE_bool('quick', False, 'Smaller sizes and fewer repeats (a smoke run).')


def main(argv):
  del argv
  results = importlib.import_module(SUITES[_SUITE.value]).run(quick=_QUICK.value)
  if _JSON.value:
    print(json.dumps(results, indent=2, sort_keys=True))
  else:
    for key, value in sorted(results.items()):
      print(f'{key:40s} {value}')


if __name__ == '__main__':
  app.run(run_main(main))

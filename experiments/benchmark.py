"""Speed and size benchmarks: `python -m experiments.benchmark --suite {env,replay,world_model,planner,agent}`.

  python -m experiments.benchmark --suite world_model --json          # configs/v3.py
  python -m experiments.benchmark --suite world_model --json --quick  # the ':small' model, fewer repeats
  python -m experiments.benchmark --suite env --config=configs/v3.py --config.collector.num_workers=4

Speed lives here, never in timed tests. Each suite is a library function `run(config, quick)`
returning a dict of figures; this entry point loads the config and hands it in.
"""

import importlib
import json

from absl import flags

from configs import v3
from experiments import cli

SUITES = {
    'env': 'dreamer_jax.envs.benchmark',
    'replay': 'dreamer_jax.envs.replay_benchmark',
    'world_model': 'dreamer_jax.world_model.benchmark',
    'planner': 'dreamer_jax.planner.benchmark',
    'agent': 'dreamer_jax.agent.benchmark',
}

_SUITE = flags.DEFINE_enum('suite', 'env', list(SUITES), 'Which benchmark suite to run.')
_JSON = flags.DEFINE_bool('json', False, 'Print the figures as one JSON object.')
_QUICK = flags.DEFINE_bool('quick', False, 'Shorter measurements and fewer repeats (a smoke run).')
# No default file, so that --quick can pick the small world model; --config.FIELD overrides then
# need --config given too.
_CONFIG = cli.define_config(
    None, 'Config: default configs/v3.py (configs/v3.py:small for --suite world_model --quick); '
    'give it to override fields with --config.FIELD=VALUE.')


def main(argv):
  del argv
  if _CONFIG.value is not None:
    config, name = _CONFIG.value, flags.FLAGS['config'].config_filename
  else:
    # The small preset's other sizes (its replay chunks) would change the env suite's figures.
    small = _QUICK.value and _SUITE.value in ('world_model', 'agent')
    name = 'configs/v3.py:small' if small else 'configs/v3.py'
    config = v3.get_config(name.partition(':')[2])
  results = importlib.import_module(SUITES[_SUITE.value]).run(config, quick=_QUICK.value)
  results['config'] = name
  if _JSON.value:
    print(json.dumps(results, indent=2, sort_keys=True))
  else:
    for key, value in sorted(results.items()):
      print(f'{key:40s} {value}')


if __name__ == '__main__':
  cli.run(main)

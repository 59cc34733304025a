"""Plays tinymon from power-on with the scripted expert and reports what it reached.

  python -m experiments.expert --rom games/tinymon/tinymon.gb --json [--max_steps 20000] [--seed 0]

Prints {"badges", "species_owned", "steps", "frames", "seconds", "map_id", "party_levels", "won"}.
A missing, truncated or foreign ROM ends in one sentence (exit code 2).
"""

import json

from absl import flags

from dreamer_jax.tinymon import expert
from dreamer_jax.envs import rom as rom_lib
from experiments import cli

_ROM = flags.DEFINE_string('rom', rom_lib.TINYMON_ROM, 'The tinymon ROM to play.')
_MAX_STEPS = flags.DEFINE_integer('max_steps', 20000, 'Agent steps (24 frames each) at most.')
_SEED = flags.DEFINE_integer('seed', 0, 'Shifts the start, so the game RNG: another playthrough.')
_JSON = flags.DEFINE_bool('json', False, 'Print the result as one JSON object.')
_PROGRESS = flags.DEFINE_bool('progress', True, 'Show a progress bar on stderr.')


def main(argv):
  del argv
  result = expert.run_expert(_ROM.value, max_steps=_MAX_STEPS.value, seed=_SEED.value,
                             progress=_PROGRESS.value)
  if _JSON.value:
    print(json.dumps(result, sort_keys=True))
  else:
    for key, value in sorted(result.items()):
      print(f'{key:16s} {value}')


if __name__ == '__main__':
  cli.run(main)

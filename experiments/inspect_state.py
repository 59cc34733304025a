"""Print the state dict the agent reads from a ROM, to check that your ROM is read correctly.

  python -m experiments.inspect_state --rom PATH/pokered.gb --state states/pallet.state --steps 10
  python -m experiments.inspect_state --rom games/tinymon/tinymon.gb
"""

import json

from absl import flags

from dreamer_jax.envs import gb_env
from experiments import cli

_ROM = flags.DEFINE_string('rom', None, 'Game Boy ROM.', required=True)
_STATE = flags.DEFINE_string('state', None, "State file; default: the game's start (tinymon) or "
                             'power-on.')
_STEPS = flags.DEFINE_integer('steps', 0, 'No-op agent steps to run before reading.', lower_bound=0)
_ALLOW_UNKNOWN_ROM = flags.DEFINE_enum('allow_unknown_rom', None, ['pokered', 'tinymon'],
                                       "Read a ROM of unknown SHA-1 with this game's RAM map.")


def main(argv):
  del argv
  state = gb_env.inspect_state(_ROM.value, _STATE.value, _STEPS.value, _ALLOW_UNKNOWN_ROM.value)
  print(json.dumps(state, indent=2, ensure_ascii=False))


if __name__ == '__main__':
  cli.run(main)

"""Play a ROM in a PyBoy window to where training should begin; closing the window saves the state.

  python -m experiments.make_start_state --rom PATH/pokered.gb --out states/pallet.state
  python -m experiments.make_start_state --rom PATH/pokered.gb --state states/pallet.state \
      --out states/route1.state        # continue from an earlier state

  python -m experiments.make_start_state --rom games/tinymon/tinymon.gb --out /tmp/t.state \
      --window null --max_frames 600  # headless: saves after 600 frames (scripts, tests)

Then train from it with --config.env.rom_path=PATH/pokered.gb --config.env.state_path=states/....
"""

from absl import flags

from dreamer_jax.envs import start_states
from dreamer_jax.errors import UserError
from experiments import cli

_ROM = flags.DEFINE_string('rom', None, 'Game Boy ROM to play.', required=True)
_OUT = flags.DEFINE_string('out', None, 'Where to save the start state.', required=True)
_STATE = flags.DEFINE_string('state', None, 'Optional state file to continue from.')
_WINDOW = flags.DEFINE_enum('window', 'SDL2', ['SDL2', 'null'], "PyBoy window ('null': headless).")
_MAX_FRAMES = flags.DEFINE_integer('max_frames', None, 'Stop and save after this many frames '
                                   '(0: the power-on state).', lower_bound=0)
_ALLOW_UNKNOWN_ROM = flags.DEFINE_enum('allow_unknown_rom', None, ['pokered', 'tinymon'],
                                       "Read a ROM of unknown SHA-1 with this game's RAM map.")


def main(argv):
  del argv
  if _WINDOW.value == 'null' and _MAX_FRAMES.value is None:
    raise UserError('--window=null has no window to close; give --max_frames N to save after N '
                    'frames.')
  start_states.play_and_save(_ROM.value, _OUT.value, state_path=_STATE.value, window=_WINDOW.value,
                             max_frames=_MAX_FRAMES.value, allow_unknown_rom=_ALLOW_UNKNOWN_ROM.value)
  print(f'saved {_OUT.value}')


if __name__ == '__main__':
  cli.run(main)

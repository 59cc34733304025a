"""Play a ROM in a PyBoy window to where training should begin; closing the window saves the state.

  python -m experiments.make_start_state --rom PATH/pokered.gb --out states/pallet.state
  python -m experiments.make_start_state --rom PATH/pokered.gb --state states/pallet.state \
      --out states/route1.state        # continue from an earlier state

Then train from it with --config.env.rom_path=PATH/pokered.gb --config.env.state_path=states/....
"""

from absl import app
from absl import flags

from dreamer_jax.envs import start_states
from dreamer_jax.errors import run_main

_ROM = flags.DEFINE_string('rom', None, 'Game Boy ROM to play.', required=True)
_OUT = flags.DEFINE_string('out', None, 'Where to save the start state.', required=True)
_STATE = flags.DEFINE_string('state', None, 'Optional state file to continue from.')
_WINDOW = flags.DEFINE_enum('window', 'SDL2', ['SDL2', 'null'], "PyBoy window ('null': headless).")
_MAX_FRAMES = flags.DEFINE_integer('max_frames', None, 'Stop and save after this many frames.')
_ALLOW_UNKNOWN_ROM = flags.DEFINE_enum('allow_unknown_rom', None, ['pokered', 'tinymon'],
                                       "Read a ROM of unknown SHA-1 with this game's RAM map.")


def main(argv):
  del argv
  start_states.play_and_save(_ROM.value, _OUT.value, state_path=_STATE.value, window=_WINDOW.value,
                             max_frames=_MAX_FRAMES.value, allow_unknown_rom=_ALLOW_UNKNOWN_ROM.value)
  print(f'saved {_OUT.value}')


if __name__ == '__main__':
  app.run(run_main(main))

"""A thin PyBoy wrapper: one agent step = `frames_per_step` frames with the button held for the first
`press_frames` (the Pokémon RL convention: 24 and 8), over 8 actions.

This is the only place that presses buttons, so the environment, the scripted expert and the
collectors all step the game identically.
"""

import io
import os
import warnings

import numpy as np

from dreamer_jax.envs import rom as rom_lib
from dreamer_jax.errors import UserError

ACTIONS = ('down', 'left', 'right', 'up', 'a', 'b', 'start', 'noop')
NUM_ACTIONS = len(ACTIONS)
DOWN, LEFT, RIGHT, UP, A, B, START, NOOP = range(NUM_ACTIONS)
SCREEN_H, SCREEN_W = 144, 160
# The DMG palette, lightest to darkest: near-grey, chosen so that each colour's red byte ends in its
# shade (0xFC & 3 = 0, ..., 0x03 & 3 = 3) and `frame` converts with one mask instead of a lookup.
PALETTE = (0xFCFCFC, 0xA9A9A9, 0x565656, 0x030303)


class Emulator:
  """PyBoy with no window and sound off, stepped in agent steps.

  Args:
    rom_path: a Game Boy ROM; checked by `rom.read_rom` first.
    state: optional path or bytes of a PyBoy save state to start from.
    frames_per_step: frames per agent step.
    press_frames: frames the button is held at the start of a step.
  """

  def __init__(self, rom_path=rom_lib.TINYMON_ROM, state=None, frames_per_step=24, press_frames=8):
    if not 0 < press_frames <= frames_per_step:
      raise UserError(
          f'press_frames={press_frames} must be in 1..frames_per_step ({frames_per_step}).')
    self.rom = rom_lib.read_rom(rom_path)
    self.frames_per_step = frames_per_step
    self.press_frames = press_frames
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')
      from pyboy import PyBoy  # pylint: disable=g-import-not-at-top
      self.pyboy = PyBoy(io.BytesIO(self.rom.data), window='null', sound_emulated=False,
                         no_input=True, log_level='ERROR', cgb=False)
    self.pyboy.set_emulation_speed(0)
    self.pyboy.set_color_palette(PALETTE)
    self.memory = self.pyboy.memory
    # PyBoy renders into one buffer for its whole life (loading a state refills it in place); viewed
    # as little-endian uint32 per pixel, each value's low byte is the red channel.
    self._screen = self.pyboy.screen.ndarray.view(np.uint32).reshape(SCREEN_H, SCREEN_W)
    self.frame_count = 0
    if state is not None:
      self.load_state(state)

  def step(self, action, render=True):
    """Advances one agent step; renders the last frame when `render`."""
    name = ACTIONS[action]
    if name != 'noop':
      self.pyboy.button_press(name)
      self.pyboy.tick(self.press_frames, False, False)
      self.pyboy.button_release(name)
      rest = self.frames_per_step - self.press_frames
    else:
      rest = self.frames_per_step
    if rest:
      self.pyboy.tick(rest, render, False)
    self.frame_count += self.frames_per_step

  def tick(self, frames, render=False):
    self.pyboy.tick(frames, render, False)
    self.frame_count += frames

  def frame(self):
    """The last rendered frame as (144, 160) uint8 DMG shades 0..3, 0 the lightest."""
    return (self._screen & 3).astype(np.uint8)

  def rgba(self):
    """The last rendered frame as a (144, 160, 4) uint8 copy."""
    return np.array(self.pyboy.screen.ndarray, copy=True)

  def save_state(self):
    buf = io.BytesIO()
    self.pyboy.save_state(buf)
    return buf.getvalue()

  def load_state(self, state):
    """Loads a save state from bytes or a file path; a missing or corrupt one raises `UserError`."""
    name = '<bytes>'
    if isinstance(state, (str, os.PathLike)):
      name = os.fspath(state)
      if not os.path.isfile(name):
        raise UserError(f'emulator state file {name!r} does not exist; expected a PyBoy save state.')
      with open(name, 'rb') as f:
        state = f.read()
    try:
      self.pyboy.load_state(io.BytesIO(state))
    except Exception as e:  # PyBoy raises assorted errors on bad data.
      raise UserError(
          f'emulator state {name!r} could not be loaded ({type(e).__name__}); expected a PyBoy save '
          f'state made with this ROM ({self.rom.title}).') from None

  def close(self):
    if self.pyboy is not None:
      self.pyboy.stop(save=False)
      self.pyboy = None

"""Start states: emulator save states wrapped in a checked header, and where episodes begin.

PyBoy does not notice a truncated, corrupt or other-ROM save state reliably, so every state this
project writes carries a header: magic, format version, the ROM's SHA-1, the payload length and its
CRC32. `unwrap` checks all of them and names the first that fails in one sentence.

tinymon's start state (the overworld after power-on and the title screen) is made automatically and
cached per ROM SHA-1; Pokémon Red's is made by the user with `python -m experiments.make_start_state`.
"""

import io
import os
import struct
import tempfile
import zlib

from absl import logging

from dreamer_jax.envs import emulator as emulator_lib
from dreamer_jax.envs import games
from dreamer_jax.envs import ram_map as rm
from dreamer_jax.envs import rom as rom_lib
from dreamer_jax.errors import UserError

MAGIC = b'DJXSTATE'
VERSION = 1
_HEADER = struct.Struct('<8sH20sII')  # magic, version, ROM SHA-1, payload length, payload CRC32.
HEADER_SIZE = _HEADER.size

# Bump when the generation procedure changes, so stale cached states are not reused.
_PROCEDURE_VERSION = 1
_MAX_START_STEPS = 600
_SETTLE_STEPS = 4  # Consecutive agent steps the overworld must hold before the state is taken.


def wrap(payload, rom_sha1):
  """Header + PyBoy state bytes, bound to the ROM with SHA-1 `rom_sha1` (hex)."""
  header = _HEADER.pack(MAGIC, VERSION, bytes.fromhex(rom_sha1), len(payload),
                        zlib.crc32(payload))
  return header + payload


def unwrap(data, rom_sha1, name='<bytes>'):
  """Checks a wrapped state against the ROM with SHA-1 `rom_sha1` and returns the PyBoy state bytes.

  Raises:
    UserError: one sentence naming `name` and what is wrong (not a state, truncated, corrupt, made
      with another ROM, or a newer format).
  """
  expected = ('expected a state made by `python -m experiments.make_start_state` or the '
              "environment's save_state for this ROM")
  if len(data) < HEADER_SIZE or not data.startswith(MAGIC):
    if MAGIC.startswith(bytes(data[:len(MAGIC)])) and len(data) < HEADER_SIZE:
      raise UserError(f'state {name!r} is truncated ({len(data)} bytes, shorter than its '
                      f'{HEADER_SIZE}-byte header); {expected}.')
    raise UserError(f'state {name!r} is not a dreamer_jax state file (no {MAGIC.decode()} header); '
                    f'{expected}.')
  magic, version, sha1, length, crc = _HEADER.unpack_from(data)
  del magic
  if version != VERSION:
    raise UserError(f'state {name!r} has format version {version}, but this code reads version '
                    f'{VERSION}; {expected}.')
  if sha1.hex() != rom_sha1:
    raise UserError(f'state {name!r} was saved with the ROM of SHA-1 {sha1.hex()}, not this ROM '
                    f'(SHA-1 {rom_sha1}); {expected}.')
  payload = bytes(data[HEADER_SIZE:])
  if len(payload) != length:
    raise UserError(f'state {name!r} holds {len(payload)} bytes of emulator state but its header '
                    f'says {length}; the file is truncated or was cut.')
  if zlib.crc32(payload) != crc:
    raise UserError(f'state {name!r} is corrupt (CRC32 mismatch); {expected}.')
  return payload


def write_state_file(path, payload, rom_sha1):
  """Writes a wrapped state atomically (a crash leaves the old file or the new one, never half)."""
  path = os.fspath(path)
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp-state-')
  try:
    with os.fdopen(fd, 'wb') as f:
      f.write(wrap(payload, rom_sha1))
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def read_state_file(path, rom_sha1):
  """The PyBoy state bytes in a wrapped state file; a missing or bad file raises `UserError`."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise UserError(f'state file {path!r} does not exist; expected a state made by '
                    '`python -m experiments.make_start_state --rom ROM --out FILE`.')
  with open(path, 'rb') as f:
    return unwrap(f.read(), rom_sha1, path)


def cache_dir():
  """Where generated start states are cached: $DREAMER_JAX_CACHE, else ~/.cache/dreamer_jax."""
  return os.environ.get('DREAMER_JAX_CACHE') or os.path.join(
      os.path.expanduser('~'), '.cache', 'dreamer_jax')


# tinymon's wGameMode (games/tinymon/DESIGN.md, extra RAM): 0 title, 1 overworld, 2.. menus, battle.
_TINYMON_GAME_MODE = 0xD900
_MODE_OVERWORLD = 1


def in_overworld(memory):
  """Whether tinymon's player is free to walk: overworld mode, no battle, no text box or menu, not
  mid-step."""
  return (memory[_TINYMON_GAME_MODE] == _MODE_OVERWORLD and memory[rm.IS_IN_BATTLE] == rm.BATTLE_NONE
          and not memory[rm.FONT_LOADED] & 1 and memory[rm.WALK_COUNTER] == 0)


def generate_start_state(emulator, max_steps=_MAX_START_STEPS):
  """Runs from power-on through the title screen into the overworld; returns the PyBoy state bytes.

  Presses START and A in turn, a no-op step after each so every press is a new one, until the game
  is in the overworld; then waits with no-ops until `in_overworld` has held for `_SETTLE_STEPS`
  steps (pressing on would open the START menu).
  """
  presses = (emulator_lib.START, emulator_lib.NOOP, emulator_lib.A, emulator_lib.NOOP)
  settled = 0
  for i in range(max_steps):
    emulator.step(emulator_lib.NOOP if settled else presses[i % len(presses)])
    settled = settled + 1 if in_overworld(emulator.memory) else 0
    if settled >= _SETTLE_STEPS:
      return emulator.save_state()
  raise UserError(f'the ROM {emulator.rom.path!r} did not reach the overworld within {max_steps} '
                  'agent steps of pressing START and A; expected the tinymon ROM built from '
                  'games/tinymon.')


def start_state(rom, spec, state_path=None):
  """The PyBoy state bytes episodes begin from.

  Args:
    rom: the checked ROM (`rom.RomInfo`).
    spec: its `games.GameSpec`.
    state_path: a wrapped state file, or None/'' for the game's default start.

  Returns:
    PyBoy save-state bytes. A generated start is made by its own emulator at 24 frames per step,
    button held 8, so the cached state is the same whatever the environment's step settings.
  """
  if state_path:
    return read_state_file(state_path, rom.sha1)
  if spec.start != games.START_GENERATED:
    raise UserError(
        f'{spec.title} needs a start state file (state_path); make one by playing to where training '
        f'should begin with `python -m experiments.make_start_state --rom {rom.path} --out FILE`.')
  path = os.path.join(cache_dir(), 'start_states', f'{rom.sha1}-v{_PROCEDURE_VERSION}.state')
  if os.path.isfile(path):
    try:
      return read_state_file(path, rom.sha1)
    except UserError as e:
      logging.warning('regenerating the cached start state: %s', e)
  emulator = emulator_lib.Emulator(rom.path, frames_per_step=24, press_frames=8)
  try:
    payload = generate_start_state(emulator)
  finally:
    emulator.close()
  write_state_file(path, payload, rom.sha1)
  logging.info('cached the start state of %s in %s', rom.path, path)
  return payload


def play_and_save(rom_path, out, state_path=None, window='SDL2', max_frames=None,
                  allow_unknown_rom=None):
  """Lets a person play from power-on (or `state_path`) and saves a start state to `out`.

  The PyBoy window runs at real-time speed with sound; the state is taken when the window is closed
  (or after `max_frames` frames, how tests and scripts run it with `window='null'`).

  Returns:
    The number of frames played.
  """
  rom = rom_lib.read_rom(rom_path)
  spec = games.identify(rom, allow_unknown_rom)
  payload = read_state_file(state_path, rom.sha1) if state_path else None
  from pyboy import PyBoy  # pylint: disable=g-import-not-at-top
  pyboy = PyBoy(io.BytesIO(rom.data), window=window, sound_emulated=window != 'null',
                log_level='ERROR', cgb=False)
  pyboy.set_emulation_speed(1 if window != 'null' else 0)
  try:
    if payload is not None:
      pyboy.load_state(io.BytesIO(payload))
    logging.info('playing %s (%s): close the window to save the state to %s', rom.path, spec.title,
                 out)
    frames = 0
    while (max_frames is None or frames < max_frames) and pyboy.tick():
      frames += 1
    buf = io.BytesIO()
    pyboy.save_state(buf)
  finally:
    pyboy.stop(save=False)
  write_state_file(out, buf.getvalue(), rom.sha1)
  logging.info('saved the start state after %d frames to %s', frames, out)
  return frames

"""State files: header checks (one sentence each), atomic writes, generated and user-made starts."""

import os

import pytest

from dreamer_jax.envs import emulator as emulator_lib
from dreamer_jax.envs import games
from dreamer_jax.envs import rom as rom_lib
from dreamer_jax.envs import start_states
from dreamer_jax.errors import UserError
from tests import gb_testing as gt

SHA1 = 'ab' * 20
OTHER_SHA1 = 'cd' * 20


def test_wrap_round_trip():
  payload = bytes(range(256)) * 10
  assert start_states.unwrap(start_states.wrap(payload, SHA1), SHA1) == payload


def test_every_bad_state_is_one_sentence():
  data = start_states.wrap(b'\x01\x02\x03' * 1000, SHA1)
  cases = [
      (data[:-10], "state 'x' holds 2990 bytes of emulator state but its header says 3000; the file "
                   'is truncated'),
      (data[:10], f'is truncated (10 bytes, shorter than its {start_states.HEADER_SIZE}-byte header)'),
      (b'', 'is truncated (0 bytes'),
      (data[:60] + bytes([data[60] ^ 0xFF]) + data[61:], 'is corrupt (CRC32 mismatch)'),
      (b'PyBoy raw state bytes' * 10, 'is not a dreamer_jax state file (no DJXSTATE header)'),
      (start_states.wrap(b'abc', OTHER_SHA1),
       f'was saved with the ROM of SHA-1 {OTHER_SHA1}, not this ROM (SHA-1 {SHA1})'),
      (data[:8] + b'\x09\x00' + data[10:], 'has format version 9, but this code reads version 1'),
  ]
  for bad, message in cases:
    with pytest.raises(UserError) as e:
      start_states.unwrap(bad, SHA1, name='x')
    assert message in str(e.value)
    assert str(e.value).count('. ') == 0 and str(e.value).endswith('.')


def test_files_are_written_atomically_and_checked(tmp_path):
  path = tmp_path / 'sub' / 's.state'
  start_states.write_state_file(path, b'payload', SHA1)
  assert start_states.read_state_file(path, SHA1) == b'payload'
  assert os.listdir(tmp_path / 'sub') == ['s.state']  # No temporary left behind.
  with pytest.raises(UserError, match=r"state file '.*missing.state' does not exist; expected a state "
                                      'made by `python -m experiments.make_start_state'):
    start_states.read_state_file(tmp_path / 'missing.state', SHA1)
  path.write_bytes(path.read_bytes()[:-3])
  with pytest.raises(UserError, match='s.state.* the file is truncated'):
    start_states.read_state_file(path, SHA1)


_CUT_STATE = f'''
from dreamer_jax.envs import start_states
path = os.path.join(sys.argv[1], 's.state')
start_states.write_state_file(path, bytes(range(256)) * 4, {SHA1!r})
limit_file_size(4096)
cut_write(start_states.write_state_file, path, bytes(100_000), {SHA1!r})
cut_write(start_states.write_state_file, os.path.join(sys.argv[1], 'new.state'), bytes(100_000),
          {SHA1!r})
'''


@pytest.mark.parametrize('die', [True, False], ids=['killed', 'raised'])
def test_a_write_cut_short_leaves_the_old_file_or_none(tmp_path, die):
  from tests.test_replay import run_with_file_size_limit  # pylint: disable=g-import-not-at-top
  # The child writes a 1 KiB state, then two of 100,000 bytes that its 4,096-byte file size limit
  # cuts (killed at the first, or both raising OSError EFBIG).
  out = run_with_file_size_limit(_CUT_STATE, tmp_path, die)
  assert out.split() == ([] if die else ['failed', 'EFBIG'] * 2)
  assert start_states.read_state_file(tmp_path / 's.state', SHA1) == bytes(range(256)) * 4
  assert not (tmp_path / 'new.state').exists()
  if not die:
    assert os.listdir(tmp_path) == ['s.state']  # No temporary left behind.


def test_generated_start_is_cached_per_rom(tmp_path, monkeypatch):
  monkeypatch.setenv('DREAMER_JAX_CACHE', str(tmp_path / 'cache'))
  rom = rom_lib.read_rom(gt.make_rom(tmp_path / 'ov.gb'))
  spec = games.GAMES['tinymon']
  payload = start_states.start_state(rom, spec)
  cached = os.listdir(tmp_path / 'cache' / 'start_states')
  assert cached == [f'{rom.sha1}-v1.state']
  emu = emulator_lib.Emulator(rom.path)
  emu.load_state(payload)
  assert start_states.in_overworld(emu.memory)
  emu.close()

  def fail(_):
    raise AssertionError('regenerated although cached')
  monkeypatch.setattr(start_states, 'generate_start_state', fail)
  assert start_states.start_state(rom, spec) == payload


def test_corrupt_cache_is_regenerated(tmp_path, monkeypatch, caplog):
  monkeypatch.setenv('DREAMER_JAX_CACHE', str(tmp_path / 'cache'))
  rom = rom_lib.read_rom(gt.make_rom(tmp_path / 'ov.gb'))
  spec = games.GAMES['tinymon']
  payload = start_states.start_state(rom, spec)
  path = tmp_path / 'cache' / 'start_states' / f'{rom.sha1}-v1.state'
  path.write_bytes(b'garbage')
  assert start_states.start_state(rom, spec) == payload
  assert 'regenerating the cached start state' in caplog.text


def test_rom_that_never_reaches_the_overworld(tmp_path):
  rom_path = gt.make_rom(tmp_path / 'idle.gb', code=bytes([0x18, 0xFE]))
  emu = emulator_lib.Emulator(rom_path)
  with pytest.raises(UserError, match='did not reach the overworld within 8 agent steps'):
    start_states.generate_start_state(emu, max_steps=8)
  emu.close()


def test_user_game_needs_a_state_file(tmp_path):
  rom = rom_lib.read_rom(gt.make_rom(tmp_path / 'ov.gb'))
  with pytest.raises(UserError, match=r'needs a start state file \(state_path\); make one by playing '
                                      'to where training should begin with `python -m '
                                      'experiments.make_start_state --rom .*ov.gb --out FILE`'):
    start_states.start_state(rom, games.GAMES['pokered'])


def test_play_and_save_headless_then_continue(tmp_path):
  rom_path = gt.make_rom(tmp_path / 'ov.gb')
  out = tmp_path / 'start.state'
  frames = start_states.play_and_save(rom_path, out, window='null', max_frames=120,
                                      allow_unknown_rom='pokered')
  assert frames == 120
  rom = rom_lib.read_rom(rom_path)
  emu = emulator_lib.Emulator(rom_path, state=None)
  emu.load_state(start_states.read_state_file(out, rom.sha1))
  assert emu.memory[0xD900] == 1  # The ROM's code ran before the save.
  emu.close()
  out2 = tmp_path / 'later.state'
  start_states.play_and_save(rom_path, out2, state_path=out, window='null', max_frames=10,
                             allow_unknown_rom='pokered')
  assert start_states.read_state_file(out2, rom.sha1) != start_states.read_state_file(out, rom.sha1)
  other = gt.make_rom(tmp_path / 'other.gb', title=b'OTHER')
  with pytest.raises(UserError, match='not this ROM'):
    start_states.play_and_save(other, tmp_path / 'x.state', state_path=out, window='null',
                               max_frames=1, allow_unknown_rom='pokered')

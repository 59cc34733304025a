"""Game specs: ROMs identified by SHA-1, unknown and bad ROMs refused in one sentence."""

import hashlib
import logging

import pytest

from dreamer_jax.envs import games
from dreamer_jax.envs import rom as rom_lib
from dreamer_jax.envs import state as state_lib
from dreamer_jax.errors import UserError
from tests import gb_testing as gt

RED_SHA1 = 'ea9bcae617fdf159b045185467ae58b2e4a48b9a'
BLUE_SHA1 = 'd7037c83e1ae5b39bde3c30787637ba1d4c48ce2'


def _info(sha1, path='user/pokered.gb'):
  # No commercial ROM anywhere: identification only needs the hash.
  return rom_lib.RomInfo(path=path, data=b'', sha1=sha1, title='POKEMON RED')


@pytest.mark.parametrize('sha1', [RED_SHA1, BLUE_SHA1])
def test_red_and_blue_are_pokered(sha1):
  spec = games.identify(_info(sha1))
  assert spec.name == 'pokered' and spec.start == games.START_USER


def test_pokered_map_names():
  names = games.GAMES['pokered'].map_names()
  assert names[0x00] == 'Pallet Town'
  assert names[0x0C] == 'Route 1' and names[0x24] == 'Route 25'
  assert names[0x26] == "Red's House 2F" and names[0x36] == 'Pewter Gym'
  assert state_lib.map_name(names, 0x0B) == 'MAP_0x0B'
  assert len(set(names.values())) == len(names)


def test_unknown_rom_names_its_sha1_and_the_known_games(tmp_path):
  path = gt.make_rom(tmp_path / 'hack.gb')
  rom = rom_lib.read_rom(path)
  with pytest.raises(UserError) as e:
    games.identify(rom)
  msg = str(e.value)
  assert rom.sha1 in msg and 'hack.gb' in msg
  assert 'pokered' in msg and 'tinymon' in msg and 'Pokemon Red (UE)' in msg
  assert 'allow_unknown_rom' in msg


def test_allow_unknown_rom_reads_it_with_that_map_and_warns(tmp_path, caplog):
  rom = rom_lib.read_rom(gt.make_rom(tmp_path / 'hack.gb'))
  with caplog.at_level(logging.WARNING):
    assert games.identify(rom, allow_unknown_rom='pokered').name == 'pokered'
  assert rom.sha1 in caplog.text and 'not a known dump' in caplog.text
  with pytest.raises(UserError,
                     match=r"unknown game 'zelda'; expected one of \['pokered', 'tinymon'\]"):
    games.identify(rom, allow_unknown_rom='zelda')


def test_tinymon_is_identified_by_the_committed_rom():
  rom = rom_lib.read_rom(rom_lib.TINYMON_ROM)
  with open(rom_lib.TINYMON_ROM, 'rb') as f:
    assert rom.sha1 == hashlib.sha1(f.read()).hexdigest()
  assert games.identify(rom).name == 'tinymon'
  rom2, spec = games.resolve('tinymon')
  assert (rom2.sha1, spec.name) == (rom.sha1, 'tinymon')


def test_pokered_needs_a_rom_path():
  with pytest.raises(UserError, match=r"game 'pokered' needs a ROM file \(rom_path\)"):
    games.resolve('pokered')


def test_missing_truncated_and_foreign_files_are_one_sentence(tmp_path):
  with pytest.raises(UserError, match='does not exist; expected a Game Boy ROM'):
    games.resolve('pokered', str(tmp_path / 'nope.gb'))
  good = open(gt.make_rom(tmp_path / 'good.gb'), 'rb').read()
  (tmp_path / 'cut.gb').write_bytes(good[:0x8000 // 2])
  with pytest.raises(UserError, match='the file is truncated'):
    games.resolve('pokered', str(tmp_path / 'cut.gb'))
  (tmp_path / 'tiny.gb').write_bytes(good[:100])
  with pytest.raises(UserError, match='too short to hold a Game Boy cartridge header'):
    games.resolve('pokered', str(tmp_path / 'tiny.gb'))
  (tmp_path / 'notes.txt').write_bytes(b'not a rom at all' * 100)
  with pytest.raises(UserError, match='no valid Game Boy cartridge header'):
    games.resolve('pokered', str(tmp_path / 'notes.txt'))

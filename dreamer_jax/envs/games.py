"""Game specs: which ROM (by SHA-1) is which game, with its RAM map, map names and start procedure.

Two games are known: Pokémon Red/Blue (UE), by the hashes of the known good dumps, and tinymon, by
the hash of the committed games/tinymon/tinymon.gb. A ROM with any other hash is refused unless the
user names the game whose RAM map to read it with (`allow_unknown_rom`), e.g. for a ROM hack.
"""

import dataclasses
import functools
import hashlib
import os
from typing import Callable

from absl import logging

from dreamer_jax.envs import ram_map
from dreamer_jax.envs import rom as rom_lib
from dreamer_jax.errors import UserError

# Start procedures (see start_states): generated automatically from power-on, or made by the user.
START_GENERATED = 'generated'
START_USER = 'user'

_POKERED_SHA1S = {
    'ea9bcae617fdf159b045185467ae58b2e4a48b9a': 'Pokemon Red (UE) [S][!]',
    'd7037c83e1ae5b39bde3c30787637ba1d4c48ce2': 'Pokemon Blue (UE) [S][!]',
}

_POKERED_NAMED = {
    0x00: 'Pallet Town', 0x01: 'Viridian City', 0x02: 'Pewter City', 0x03: 'Cerulean City',
    0x04: 'Lavender Town', 0x05: 'Vermilion City', 0x06: 'Celadon City', 0x07: 'Fuchsia City',
    0x08: 'Cinnabar Island', 0x09: 'Indigo Plateau', 0x0A: 'Saffron City',
    0x25: "Red's House 1F", 0x26: "Red's House 2F", 0x27: "Blue's House", 0x28: "Oak's Lab",
    0x29: 'Viridian Pokécenter', 0x2A: 'Viridian Mart', 0x2B: 'Viridian School House',
    0x2C: 'Viridian Nickname House', 0x2D: 'Viridian Gym', 0x2E: "Diglett's Cave (Route 2)",
    0x2F: 'Viridian Forest North Gate', 0x30: 'Route 2 Trade House', 0x31: 'Route 2 Gate',
    0x32: 'Viridian Forest South Gate', 0x33: 'Viridian Forest', 0x34: 'Museum 1F', 0x35: 'Museum 2F',
    0x36: 'Pewter Gym', 0x37: 'Pewter Nidoran House', 0x38: 'Pewter Mart',
    0x39: 'Pewter Speech House', 0x3A: 'Pewter Pokécenter', 0x3B: 'Mt. Moon 1F', 0x3C: 'Mt. Moon B1F',
    0x3D: 'Mt. Moon B2F', 0x3E: 'Cerulean Trashed House', 0x3F: 'Cerulean Trade House',
    0x40: 'Cerulean Pokécenter', 0x41: 'Cerulean Gym', 0x42: 'Bike Shop', 0x43: 'Cerulean Mart',
    0x44: 'Mt. Moon Pokécenter', 0x5C: 'Vermilion Gym', 0x86: 'Celadon Gym', 0x9D: 'Fuchsia Gym',
    0xA6: 'Cinnabar Gym', 0xB2: 'Saffron Gym',
}
# Pokécenters whose town the reference does not give keep their id in the name, to stay unique.
_POKERED_CENTERS = (0x51, 0x59, 0x85, 0x8D, 0x9A, 0xAB, 0xB6)


def _pokered_map_names():
  names = dict(_POKERED_NAMED)
  names.update({0x0C + n - 1: f'Route {n}' for n in range(1, 26)})
  names.update({i: f'Pokécenter 0x{i:02X}' for i in _POKERED_CENTERS})
  return names


@functools.lru_cache(maxsize=8)
def _file_sha1(path, mtime_ns, size):
  del mtime_ns, size  # Cache keys only: a rebuilt ROM is hashed again.
  with open(path, 'rb') as f:
    return hashlib.sha1(f.read()).hexdigest()


def _tinymon_sha1s():
  path = rom_lib.TINYMON_ROM
  if not os.path.isfile(path):
    return {}
  st = os.stat(path)
  sha1 = _file_sha1(path, st.st_mtime_ns, st.st_size)
  return {sha1: 'tinymon (games/tinymon/tinymon.gb)'} if sha1 else {}


def _tinymon_map_names():
  from dreamer_jax.tinymon import world as tinymon_world  # pylint: disable=g-import-not-at-top
  return dict(tinymon_world.load_world().map_names)


@dataclasses.dataclass(frozen=True)
class GameSpec:
  """One game the environment can read.

  Attributes:
    name: 'tinymon' or 'pokered'.
    title: a human-readable name.
    known_sha1s: () -> {ROM SHA-1: dump name}.
    ram_map: the module with the game's RAM addresses (both games share `ram_map`).
    map_names: () -> {map id: name}; ids not in it read as 'MAP_0xNN'.
    start: START_GENERATED (made from power-on and cached) or START_USER (a state file is needed).
    default_rom: the ROM used when none is given, or None when the user must supply it.
    menu_cursor_address: the byte holding the (battle) menu cursor's item, or None.
    menu_phase: memory -> 1 while a battle message waits for A, 2 while the battle menu waits for
      input, else 0; or None where the game has no such byte.
    enemy_species: memory -> the battle enemy's dex number (1-based, 0 for none), or None where the
      game's RAM holds it in another numbering (Pokémon Red's internal index).
    ball_count: memory -> the balls in the bag, or None.
  """
  name: str
  title: str
  known_sha1s: Callable[[], dict]
  ram_map: object
  map_names: Callable[[], dict]
  start: str
  default_rom: str = None
  menu_cursor_address: int = None
  menu_phase: Callable = None
  enemy_species: Callable = None
  ball_count: Callable = None


def _tinymon_menu_phase(memory):
  phase = memory[ram_map.TINYMON_BATTLE_PHASE]
  return phase if phase in (1, 2) else 0


GAMES = {
    'tinymon': GameSpec('tinymon', 'tinymon', _tinymon_sha1s, ram_map, _tinymon_map_names,
                        START_GENERATED, default_rom=rom_lib.TINYMON_ROM,
                        menu_cursor_address=ram_map.TINYMON_BATTLE_CURSOR,
                        menu_phase=_tinymon_menu_phase,
                        enemy_species=lambda m: m[ram_map.TINYMON_ENEMY_SPECIES],
                        ball_count=lambda m: m[ram_map.TINYMON_BALL_COUNT]),
    'pokered': GameSpec('pokered', 'Pokémon Red/Blue (UE)', lambda: dict(_POKERED_SHA1S), ram_map,
                        _pokered_map_names, START_USER,
                        menu_cursor_address=ram_map.CURRENT_MENU_ITEM,
                        ball_count=ram_map.bag_ball_count),
}


def get_game(name):
  """The spec named `name`; an unknown name raises `UserError`."""
  if name not in GAMES:
    raise UserError(f'unknown game {name!r}; expected one of {sorted(GAMES)}.')
  return GAMES[name]


def identify(rom, allow_unknown_rom=None):
  """The game a checked ROM (`rom.RomInfo`) is, by SHA-1.

  Args:
    rom: a `rom.RomInfo` from `rom.read_rom`.
    allow_unknown_rom: None/'' to refuse unknown ROMs, or a game name whose RAM map an unknown ROM is
      read with (a warning is logged).

  Returns:
    The `GameSpec`.
  """
  for spec in GAMES.values():
    if rom.sha1 in spec.known_sha1s():
      return spec
  if allow_unknown_rom:
    spec = get_game(allow_unknown_rom)
    logging.warning('ROM %s (SHA-1 %s) is not a known dump; reading it with the %s RAM map as asked.',
                    rom.path, rom.sha1, spec.name)
    return spec
  known = '; '.join(f'{name}: {", ".join(sorted(spec.known_sha1s().values())) or "no ROM built"}'
                    for name, spec in GAMES.items())
  raise UserError(
      f'ROM file {rom.path!r} (SHA-1 {rom.sha1}, title {rom.title!r}) is not a known game ({known}); '
      "expected one of these dumps, or set allow_unknown_rom to 'pokered' or 'tinymon' (flag "
      "--allow_unknown_rom, config env.allow_unknown_rom) to read it with that game's RAM map.")


def resolve(game='tinymon', rom_path=None, allow_unknown_rom=None):
  """Checks and identifies the ROM to run.

  Args:
    game: the game asked for; picks the default ROM when `rom_path` is empty.
    rom_path: a ROM file, or None/'' for the game's default ROM.
    allow_unknown_rom: see `identify`.

  Returns:
    (RomInfo, GameSpec). The ROM's hash decides the game; a ROM of another game than `game` is run
    as the game it is, with a warning.
  """
  asked = get_game(game)
  if not rom_path:
    if asked.default_rom is None:
      raise UserError(f'game {game!r} needs a ROM file (rom_path); expected the path of your own '
                      f'{asked.title} ROM.')
    rom_path = asked.default_rom
  rom = rom_lib.read_rom(rom_path)
  spec = identify(rom, allow_unknown_rom)
  if spec.name != asked.name and rom.sha1 in spec.known_sha1s():
    logging.warning('ROM %s is %s, not %s; running it as %s.', rom.path, spec.title, asked.title,
                    spec.name)
  return rom, spec

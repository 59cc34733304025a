"""Pure readers from work RAM to the game state the agent, the reward and System 2 use.

Everything here reads `memory[address]` only, so it works on PyBoy's memory and on any fake memory
(a numpy array of 0x10000 bytes in tests). `read_snapshot` does every read of one agent step once;
`state_dict` turns a snapshot into the JSON-serialisable dict that is System 2's view of the game.
"""

import collections

import numpy as np

from dreamer_jax.envs import ram_map as rm

# One party member. `key` is what survives evolution, healing and reordering (OT id and DVs), so a
# mon is followed by identity rather than by its slot.
Mon = collections.namedtuple('Mon', 'species hp max_hp level exp key')

# Everything one step needs from RAM. Dex bitfields are ints (bit n-1 = dex number n).
Snapshot = collections.namedtuple('Snapshot', [
    'map_id', 'x', 'y', 'badge_bits', 'party', 'in_battle', 'font_loaded', 'dex_owned', 'dex_seen',
    'money', 'enemy_hp', 'enemy_max_hp', 'enemy_level', 'facing', 'walking', 'joy_ignore',
    'menu_cursor', 'menu_phase', 'enemy_new', 'balls',
], defaults=(0, 0, False, 0))
# menu_cursor: the menu cursor's item (0 where the game spec names no cursor byte); menu_phase:
# 1 while a battle message waits for A, 2 while the battle menu waits for input, else 0 (games
# whose spec names no phase byte read 0). System 1 reads both: a clone that cannot see the
# cursor never leaves FIGHT. enemy_new: a wild battle against a species not owned yet; balls: the
# balls in the bag. The expert catches exactly when both hold, so a clone must see them too.

MAX_PARTY = 6
_OT_ID = 0x0C
_DVS = 0x1B


def _read_bytes(memory, address, n):
  # One slice read: PyBoy's memory gives a list of ints, a numpy fake memory an array.
  return bytes(memory[address:address + n])


class _IntMemory:
  """A numpy fake memory that reads as Python ints (numpy uint8 overflows when shifted, and is not
  JSON-serialisable); slices stay arrays."""

  def __init__(self, array):
    self.array = array

  def __getitem__(self, index):
    value = self.array[index]
    return value if isinstance(index, slice) else int(value)


def _plain(memory):
  return _IntMemory(memory) if isinstance(memory, np.ndarray) else memory


def read_mon(memory, slot):
  """Party slot `slot` (0..5) as a `Mon`."""
  m, b = _plain(memory), rm.party_mon_address(slot, 0)
  # Inline reads: this runs for every party member on every agent step.
  return Mon(
      species=m[b + rm.MON_SPECIES],
      hp=m[b + rm.MON_HP] << 8 | m[b + rm.MON_HP + 1],
      max_hp=m[b + rm.MON_MAX_HP] << 8 | m[b + rm.MON_MAX_HP + 1],
      level=m[b + rm.MON_LEVEL],
      exp=m[b + rm.MON_EXP] << 16 | m[b + rm.MON_EXP + 1] << 8 | m[b + rm.MON_EXP + 2],
      key=(m[b + _OT_ID] << 8 | m[b + _OT_ID + 1], m[b + _DVS] << 8 | m[b + _DVS + 1]),
  )


def party_count(memory):
  """wPartyCount clamped to 0..6 (a garbage byte before the game initialises it must not overrun)."""
  return min(int(memory[rm.PARTY_COUNT]), MAX_PARTY)


def read_snapshot(memory, game=None):
  """Reads every field one agent step needs; slots at or past the party count are left out.

  `game` (a `games.GameSpec`) names the game's menu, enemy-species and ball bytes; without one they
  read 0. `enemy_new`: a wild battle against a species the Pokédex does not own yet.
  """
  m = _plain(memory)
  cursor = getattr(game, 'menu_cursor_address', None)
  phase = getattr(game, 'menu_phase', None)
  species_of = getattr(game, 'enemy_species', None)
  balls_of = getattr(game, 'ball_count', None)
  species = species_of(m) if species_of is not None and m[rm.IS_IN_BATTLE] == rm.BATTLE_WILD else 0
  enemy_new = 1 <= species <= 8 * rm.POKEDEX_BYTES and not rm.dex_flag(m, rm.POKEDEX_OWNED, species)
  return Snapshot(
      map_id=m[rm.CUR_MAP],
      x=m[rm.X_COORD],
      y=m[rm.Y_COORD],
      badge_bits=m[rm.OBTAINED_BADGES],
      party=tuple(read_mon(m, i) for i in range(party_count(m))),
      in_battle=m[rm.IS_IN_BATTLE],
      font_loaded=m[rm.FONT_LOADED],
      dex_owned=int.from_bytes(_read_bytes(m, rm.POKEDEX_OWNED, rm.POKEDEX_BYTES), 'little'),
      dex_seen=int.from_bytes(_read_bytes(m, rm.POKEDEX_SEEN, rm.POKEDEX_BYTES), 'little'),
      money=rm.read_bcd(m, rm.PLAYER_MONEY, 3),
      enemy_hp=m[rm.ENEMY_MON_HP] << 8 | m[rm.ENEMY_MON_HP + 1],
      enemy_max_hp=m[rm.ENEMY_MON_MAX_HP] << 8 | m[rm.ENEMY_MON_MAX_HP + 1],
      enemy_level=m[rm.ENEMY_MON_LEVEL],
      facing=m[rm.PLAYER_FACING],
      walking=m[rm.WALK_COUNTER] != 0,
      joy_ignore=m[rm.JOY_IGNORE],
      menu_cursor=0 if cursor is None else m[cursor],
      menu_phase=0 if phase is None else phase(m),
      enemy_new=enemy_new,
      balls=0 if balls_of is None else balls_of(m),
  )


def dialog_open(snap):
  """A text box or the START menu is up in the overworld (battle text does not set wFontLoaded)."""
  return bool(snap.font_loaded & 1) and snap.in_battle == rm.BATTLE_NONE


def map_name(map_names, map_id):
  return map_names.get(map_id, f'MAP_0x{map_id:02X}')


def state_dict(snap, map_names, steps_without_progress=0):
  """The System 2 view of a snapshot: a JSON-serialisable dict of plain ints, bools, strs and lists.

  Args:
    snap: a `Snapshot`.
    map_names: {map id: name}; ids not in it are named 'MAP_0xNN'.
    steps_without_progress: the reward tracker's counter (0 outside an episode).
  """
  return {
      'map_id': snap.map_id,
      'map_name': map_name(map_names, snap.map_id),
      'x': snap.x,
      'y': snap.y,
      'badges': bin(snap.badge_bits).count('1'),
      'badge_bits': snap.badge_bits,
      'party_count': len(snap.party),
      'party_hp': [m.hp for m in snap.party],
      'party_max_hp': [m.max_hp for m in snap.party],
      'party_levels': [m.level for m in snap.party],
      'in_battle': snap.in_battle,
      'dialog_open': dialog_open(snap),
      'pokedex_owned': bin(snap.dex_owned).count('1'),
      'pokedex_seen': bin(snap.dex_seen).count('1'),
      'pokedex_owned_ids': [n + 1 for n in range(snap.dex_owned.bit_length())
                            if snap.dex_owned >> n & 1],   # Dex numbers (tinymon: species ids).
      'money': snap.money,
      'steps_without_progress': int(steps_without_progress),
  }


def read_state(memory, map_names, steps_without_progress=0):
  """`state_dict(read_snapshot(memory), ...)`: the state dict straight from memory."""
  return state_dict(read_snapshot(memory), map_names, steps_without_progress)

"""Pure readers from work RAM to the game state the agent, the reward and System 2 use.

Everything here reads `memory[address]` only, so it works on PyBoy's memory and on any fake memory
(a numpy array of 0x10000 bytes in tests). `read_snapshot` does every read of one agent step once;
`state_dict` turns a snapshot into the JSON-serialisable dict that is System 2's view of the game.
"""

import collections

from dreamer_jax.envs import ram_map as rm

# One party member. `key` is what survives evolution, healing and reordering (OT id and DVs), so a
# mon is followed by identity rather than by its slot.
Mon = collections.namedtuple('Mon', 'species hp max_hp level exp key')

# Everything one step needs from RAM. Dex bitfields are ints (bit n-1 = dex number n).
Snapshot = collections.namedtuple('Snapshot', [
    'map_id', 'x', 'y', 'badge_bits', 'party', 'in_battle', 'font_loaded', 'dex_owned', 'dex_seen',
    'money', 'enemy_hp', 'enemy_max_hp', 'enemy_level', 'facing', 'walking', 'joy_ignore',
])

MAX_PARTY = 6
_OT_ID = 0x0C
_DVS = 0x1B


def _read_bytes(memory, address, n):
  # One slice read: PyBoy's memory gives a list of ints, a numpy fake memory an array.
  return bytes(memory[address:address + n])


def read_mon(memory, slot):
  """Party slot `slot` (0..5) as a `Mon`."""
  base = rm.party_mon_address(slot, 0)
  return Mon(
      species=rm.read_u8(memory, base + rm.MON_SPECIES),
      hp=rm.read_u16(memory, base + rm.MON_HP),
      max_hp=rm.read_u16(memory, base + rm.MON_MAX_HP),
      level=rm.read_u8(memory, base + rm.MON_LEVEL),
      exp=rm.read_u24(memory, base + rm.MON_EXP),
      key=(rm.read_u16(memory, base + _OT_ID), rm.read_u16(memory, base + _DVS)),
  )


def party_count(memory):
  """wPartyCount clamped to 0..6 (a garbage byte before the game initialises it must not overrun)."""
  return min(rm.read_u8(memory, rm.PARTY_COUNT), MAX_PARTY)


def read_snapshot(memory):
  """Reads every field one agent step needs; slots at or past the party count are left out."""
  return Snapshot(
      map_id=rm.read_u8(memory, rm.CUR_MAP),
      x=rm.read_u8(memory, rm.X_COORD),
      y=rm.read_u8(memory, rm.Y_COORD),
      badge_bits=rm.read_u8(memory, rm.OBTAINED_BADGES),
      party=tuple(read_mon(memory, i) for i in range(party_count(memory))),
      in_battle=rm.read_u8(memory, rm.IS_IN_BATTLE),
      font_loaded=rm.read_u8(memory, rm.FONT_LOADED),
      dex_owned=int.from_bytes(_read_bytes(memory, rm.POKEDEX_OWNED, rm.POKEDEX_BYTES), 'little'),
      dex_seen=int.from_bytes(_read_bytes(memory, rm.POKEDEX_SEEN, rm.POKEDEX_BYTES), 'little'),
      money=rm.read_bcd(memory, rm.PLAYER_MONEY, 3),
      enemy_hp=rm.read_u16(memory, rm.ENEMY_MON_HP),
      enemy_max_hp=rm.read_u16(memory, rm.ENEMY_MON_MAX_HP),
      enemy_level=rm.read_u8(memory, rm.ENEMY_MON_LEVEL),
      facing=rm.read_u8(memory, rm.PLAYER_FACING),
      walking=rm.read_u8(memory, rm.WALK_COUNTER) != 0,
      joy_ignore=rm.read_u8(memory, rm.JOY_IGNORE),
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
      'money': snap.money,
      'steps_without_progress': int(steps_without_progress),
  }


def read_state(memory, map_names, steps_without_progress=0):
  """`state_dict(read_snapshot(memory), ...)`: the state dict straight from memory."""
  return state_dict(read_snapshot(memory), map_names, steps_without_progress)

"""The RAM -> state dict reader, on fake memory laid out as Pokémon Red's."""

import json

from dreamer_jax.envs import games
from dreamer_jax.envs import ram_map as rm
from dreamer_jax.envs import state as state_lib
from tests import gb_testing as gt

POKERED_NAMES = games.GAMES['pokered'].map_names()


def _red_memory():
  mem = gt.fake_memory()
  mem[rm.CUR_MAP] = 0x0D  # Route 2.
  mem[rm.X_COORD], mem[rm.Y_COORD] = 7, 42
  mem[rm.OBTAINED_BADGES] = 0b00000101
  gt.put_party(mem, [
      dict(species=0xB1, hp=20, max_hp=25, level=9, exp=729, ot_id=0x1234, dvs=0xABCD),
      dict(species=0x24, hp=0, max_hp=300, level=55, exp=166375, ot_id=0x1234, dvs=0x0101),
  ])
  # A stale third slot past wPartyCount must not show.
  gt.put_mon(mem, 2, species=0x99, hp=99, max_hp=99, level=99, exp=99)
  gt.set_dex(mem, rm.POKEDEX_OWNED, [1, 4, 151])
  gt.set_dex(mem, rm.POKEDEX_SEEN, [1, 4, 7, 16, 150, 151])
  gt.put_money(mem, 123456)
  return mem


def test_every_field_from_fake_memory():
  st = state_lib.read_state(_red_memory(), POKERED_NAMES, steps_without_progress=17)
  assert st == {
      'map_id': 0x0D, 'map_name': 'Route 2', 'x': 7, 'y': 42, 'badges': 2, 'badge_bits': 5,
      'party_count': 2, 'party_hp': [20, 0], 'party_max_hp': [25, 300], 'party_levels': [9, 55],
      'in_battle': 0, 'dialog_open': False, 'pokedex_owned': 3, 'pokedex_seen': 6,
      'pokedex_owned_ids': [1, 4, 151], 'money': 123456, 'steps_without_progress': 17,
  }
  assert json.loads(json.dumps(st)) == st


def test_json_types_are_plain_python():
  st = state_lib.read_state(_red_memory(), POKERED_NAMES)
  for value in st.values():
    assert type(value) in (int, bool, str, list)
  assert all(type(v) is int for v in st['party_hp'] + st['party_max_hp'] + st['party_levels'])


def test_dialog_open_needs_font_bit_outside_battle():
  mem = _red_memory()
  mem[rm.FONT_LOADED] = 0b10
  assert not state_lib.read_state(mem, POKERED_NAMES)['dialog_open']
  mem[rm.FONT_LOADED] = 0b11
  assert state_lib.read_state(mem, POKERED_NAMES)['dialog_open']
  for battle in (1, 2, 0xFF):
    mem[rm.IS_IN_BATTLE] = battle
    st = state_lib.read_state(mem, POKERED_NAMES)
    assert st['in_battle'] == battle and not st['dialog_open']


def test_unknown_map_and_empty_or_garbage_party():
  mem = gt.fake_memory()
  mem[rm.CUR_MAP] = 0x0B
  st = state_lib.read_state(mem, POKERED_NAMES)
  assert st['map_name'] == 'MAP_0x0B'
  assert (st['party_count'], st['party_hp'], st['party_levels']) == (0, [], [])
  mem[rm.PARTY_COUNT] = 0xFF  # Uninitialised RAM before the game sets it: clamp, never overrun.
  assert state_lib.read_state(mem, POKERED_NAMES)['party_count'] == 6


def test_snapshot_keeps_identity_and_battle_fields():
  mem = _red_memory()
  mem[rm.IS_IN_BATTLE] = 2
  gt.put_u16(mem, rm.ENEMY_MON_HP, 300)  # Above 255: both bytes, high byte first (0x01, 0x2C).
  gt.put_u16(mem, rm.ENEMY_MON_MAX_HP, 348)
  mem[rm.ENEMY_MON_LEVEL] = 14
  mem[rm.PLAYER_FACING] = 0x0C
  mem[rm.WALK_COUNTER] = 1
  mem[rm.JOY_IGNORE] = 0x30  # LEFT and RIGHT ignored (a cutscene).
  # Party struct offset 0x03 is the box level, not the live one (shared/reference/pokered_ram.md).
  mem[rm.party_mon_address(0, rm.MON_BOX_LEVEL)] = 7
  snap = state_lib.read_snapshot(mem)
  assert snap.party[0] == state_lib.Mon(0xB1, 20, 25, 9, 729, (0x1234, 0xABCD))
  assert (snap.enemy_hp, snap.enemy_max_hp, snap.enemy_level) == (300, 348, 14)
  assert (snap.facing, snap.walking, snap.joy_ignore) == (0x0C, True, 0x30)
  mem[rm.WALK_COUNTER] = 0
  assert not state_lib.read_snapshot(mem).walking


def test_dex_bitfields_put_dex_number_n_at_bit_n_minus_1():
  # Owned #1, #4 and #151: byte 0 bits 0 and 3, byte 18 bit 6 (150 = 18 * 8 + 6).
  snap = state_lib.read_snapshot(_red_memory())
  assert snap.dex_owned == 1 << 0 | 1 << 3 | 1 << 150
  assert snap.dex_seen == 1 << 0 | 1 << 3 | 1 << 6 | 1 << 15 | 1 << 149 | 1 << 150

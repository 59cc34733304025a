"""tinymon in PyBoy (no window, sound off), asserted through the RAM mirror the agent reads.

Situations are reached by playing (walking, talking, pressing A); where a test needs a strong party
or a weak target it writes those RAM bytes, and the behaviour under test is the game's own.
"""

import importlib.util
import json
import os

import pytest

from dreamer_jax.envs import ram_map as R
from dreamer_jax.envs import rom as rom_lib
from dreamer_jax.tinymon import world as tinymon_world
from dreamer_jax.envs.emulator import A, DOWN, LEFT, NOOP, RIGHT, START, UP, B, Emulator
from dreamer_jax.errors import UserError

GAME_MODE, BATTLE_CURSOR, BATTLE_PHASE = 0xD900, 0xD901, 0xD902
PHASE_MENU = 2


@pytest.fixture(scope='module')
def booted():
  """A save state standing in LEAF TOWN right after the title screen."""
  emu = Emulator()
  emu.tick(120)
  emu.step(START)
  emu.step(NOOP)
  state = emu.save_state()
  emu.close()
  return state


@pytest.fixture
def emu(booted):
  e = Emulator(state=booted)
  yield e
  e.close()


@pytest.fixture(scope='module')
def world():
  return tinymon_world.load_world()


def xy(emu):
  return emu.memory[R.X_COORD], emu.memory[R.Y_COORD]


def walk(emu, action, n=1):
  for _ in range(n):
    emu.step(action)


def make_strong(emu, slot=0):
  """Gives party slot `slot` the top level (60: no level-up recomputes its stats) and 999 HP and
  stats, so battles end fast."""
  emu.memory[R.party_mon_address(slot, R.MON_LEVEL)] = 60
  for offset in (R.MON_HP, R.MON_MAX_HP, 0x24, 0x26, 0x28):
    emu.memory[R.party_mon_address(slot, offset)] = 0x03
    emu.memory[R.party_mon_address(slot, offset) + 1] = 0xE7


def finish_battle(emu, menu_keys=(A,), limit=400):
  """Presses A through messages and `menu_keys` at each menu until the battle is over."""
  for _ in range(limit):
    if emu.memory[R.IS_IN_BATTLE] == 0:
      return
    if emu.memory[BATTLE_PHASE] == PHASE_MENU:
      for key in menu_keys:
        emu.step(key)
    else:
      emu.step(A)
  raise AssertionError('the battle did not end')


def find_wild_battle(emu):
  """From the start: north to ROUTE 1, then back and forth in its tall grass until a battle."""
  walk(emu, UP, 8)
  assert emu.memory[R.CUR_MAP] == 1
  walk(emu, UP, 3)
  walk(emu, LEFT, 2)
  for i in range(300):
    if emu.memory[R.IS_IN_BATTLE]:
      return
    emu.step(UP if i % 2 else DOWN)
  raise AssertionError('no wild battle in 300 steps of tall grass')


def test_world_file_matches_rom_start(emu, world):
  assert world.start['map'] == emu.memory[R.CUR_MAP] == 0
  assert xy(emu) == (world.start['x'], world.start['y'])
  assert len(world.maps) >= 8 and len(world.species) == 15 and len(world.gyms) == 3
  assert emu.memory[R.PARTY_COUNT] == 1 and emu.memory[R.PARTY_SPECIES + 1] == 0xFF
  assert R.read_bcd(emu.memory, R.PLAYER_MONEY, 3) == world.start['money']


def test_walking_moves_one_cell_per_step(emu, world):
  x, y = xy(emu)
  emu.step(UP)
  assert xy(emu) == (x, y - 1)
  emu.step(LEFT)
  assert xy(emu) == (x - 1, y - 1)
  emu.step(RIGHT)
  emu.step(DOWN)
  assert xy(emu) == (x, y)
  assert emu.memory[R.WALK_COUNTER] == 0
  # West of (7, 9) is water: pressing LEFT there only turns the player.
  leaf = world.map_by_id(0)
  emu.step(DOWN)
  assert xy(emu) == (x, y + 1) and not leaf.walkable(x - 1, y + 1)
  emu.step(LEFT)
  assert xy(emu) == (x, y + 1) and emu.memory[R.PLAYER_FACING] == 8


def test_warp_changes_map(emu, world):
  walk(emu, UP, 8)
  assert emu.memory[R.CUR_MAP] == 1
  assert xy(emu) == (world.map_by_id(0).warps[0].dest_x, world.map_by_id(0).warps[0].dest_y)
  walk(emu, DOWN, 1)
  assert emu.memory[R.CUR_MAP] == 0 and emu.memory[R.LAST_MAP] == 1


def test_text_box_sets_font_loaded_until_last_a(emu, world):
  sign = next(n for n in world.map_by_id(0).npcs if n.kind == 'sign')
  walk(emu, UP, 2)   # (7, 6)
  walk(emu, LEFT, 3)  # (4, 6), facing the sign at (3, 6).
  assert (sign.x, sign.y) == (xy(emu)[0] - 1, xy(emu)[1])
  assert emu.memory[R.FONT_LOADED] & 1 == 0
  emu.step(A)
  assert emu.memory[R.FONT_LOADED] & 1 == 1 and emu.memory[R.H_WY] == 0
  for _ in range(10):
    if not emu.memory[R.FONT_LOADED] & 1:
      break
    emu.step(A)
  assert emu.memory[R.FONT_LOADED] & 1 == 0 and emu.memory[R.H_WY] == 0x90
  emu.step(RIGHT)
  assert xy(emu) == (5, 6)


def test_start_menu_opens_and_closes(emu):
  emu.step(START)
  assert emu.memory[R.FONT_LOADED] & 1 and emu.memory[GAME_MODE] == 3
  emu.step(B)
  assert not emu.memory[R.FONT_LOADED] & 1 and emu.memory[GAME_MODE] == 1
  emu.step(START)
  emu.step(A)  # PARTY: the party view.
  assert emu.memory[GAME_MODE] == 4
  emu.step(B)
  assert not emu.memory[R.FONT_LOADED] & 1 and emu.memory[GAME_MODE] == 1


def test_wild_battle_and_catch(emu, world):
  find_wild_battle(emu)
  assert emu.memory[R.IS_IN_BATTLE] == 1
  make_strong(emu)
  species = emu.memory[0xD907]
  assert species in [e[0] for e in world.map_by_id(1).encounters]
  assert R.dex_flag(emu.memory, R.POKEDEX_SEEN, species)
  assert not R.dex_flag(emu.memory, R.POKEDEX_OWNED, species)
  emu.memory[R.ENEMY_MON_HP] = 0
  emu.memory[R.ENEMY_MON_HP + 1] = 1  # One HP left: the ball almost always holds.
  finish_battle(emu, menu_keys=(DOWN, A))
  assert R.dex_flag(emu.memory, R.POKEDEX_OWNED, species)
  assert emu.memory[R.PARTY_COUNT] == 2 and emu.memory[R.PARTY_SPECIES + 1] == species
  assert emu.memory[R.PARTY_SPECIES + 2] == 0xFF
  assert emu.memory[R.party_mon_address(1, R.MON_LEVEL)] >= 1


def test_running_from_a_wild_battle(emu):
  find_wild_battle(emu)
  x, y = xy(emu)
  finish_battle(emu, menu_keys=(DOWN, DOWN, A))
  assert emu.memory[R.IS_IN_BATTLE] == 0 and emu.memory[R.CUR_MAP] == 1 and xy(emu) == (x, y)
  assert emu.memory[R.PARTY_COUNT] == 1


def test_gym_leader_battle_sets_badge(emu, world):
  map_id, leader_id, badge_bit = world.gyms[0]
  leader = world.trainers[leader_id]
  walk(emu, UP, 3)     # (7, 5)
  walk(emu, RIGHT, 3)  # (10, 5)
  walk(emu, UP, 1)     # the gym door
  assert emu.memory[R.CUR_MAP] == map_id
  walk(emu, UP, xy(emu)[1] - leader.y - 1)
  assert xy(emu) == (leader.x, leader.y + 1)
  make_strong(emu)
  money = R.read_bcd(emu.memory, R.PLAYER_MONEY, 3)
  for _ in range(10):
    emu.step(A)
    if emu.memory[R.IS_IN_BATTLE]:
      break
  assert emu.memory[R.IS_IN_BATTLE] == 2
  finish_battle(emu)
  assert emu.memory[R.OBTAINED_BADGES] == 1 << badge_bit
  assert R.event_flag(emu.memory, leader_id)
  assert R.read_bcd(emu.memory, R.PLAYER_MONEY, 3) == money + leader.money
  emu.step(A)  # Beaten: only the after-battle text now.
  assert emu.memory[R.IS_IN_BATTLE] == 0 and emu.memory[R.FONT_LOADED] & 1


def test_gate_opens_with_the_badge(emu, world):
  route1 = world.map_by_id(1)
  (gate,) = route1.gates
  walk(emu, UP, 8)
  walk(emu, UP, 18 - gate.y - 1)
  assert emu.memory[R.CUR_MAP] == 1 and xy(emu) == (gate.x, gate.y + 1)
  emu.step(UP)  # The guard blocks the way.
  assert xy(emu) == (gate.x, gate.y + 1)
  emu.step(A)
  assert emu.memory[R.FONT_LOADED] & 1
  while emu.memory[R.FONT_LOADED] & 1:
    emu.step(A)
  emu.memory[R.OBTAINED_BADGES] = gate.badges_required
  walk(emu, DOWN, 18 - gate.y)  # Leave the route and come back: the guard is gone.
  assert emu.memory[R.CUR_MAP] == 0
  walk(emu, UP, 1 + 18 - gate.y - 1)
  walk(emu, UP, gate.y + 1)
  assert emu.memory[R.CUR_MAP] == route1.warps[0].dest_map


def test_blackout_returns_to_healing_spot_healed(emu, world):
  find_wild_battle(emu)
  emu.memory[R.party_mon_address(0, R.MON_HP)] = 0
  emu.memory[R.party_mon_address(0, R.MON_HP) + 1] = 1
  emu.memory[R.BATTLE_MON_HP] = 0
  emu.memory[R.BATTLE_MON_HP + 1] = 1
  money = R.read_bcd(emu.memory, R.PLAYER_MONEY, 3)
  seen_lost = False
  for _ in range(200):
    if emu.memory[R.IS_IN_BATTLE] == 0:
      break
    seen_lost |= emu.memory[R.IS_IN_BATTLE] == R.BATTLE_LOST
    emu.step(A)
  assert seen_lost
  spot = world.start['blackout']
  assert (emu.memory[R.CUR_MAP], *xy(emu)) == (spot['map'], spot['x'], spot['y'])
  hp = R.read_u16(emu.memory, R.party_mon_address(0, R.MON_HP))
  assert hp == R.read_u16(emu.memory, R.party_mon_address(0, R.MON_MAX_HP)) > 0
  assert R.read_bcd(emu.memory, R.PLAYER_MONEY, 3) == money // 2


def test_same_inputs_same_game(booted):
  runs = []
  for _ in range(2):
    e = Emulator(state=booted)
    try:
      find_wild_battle(e)
      runs.append((e.memory[0xD907], e.memory[R.ENEMY_MON_LEVEL], e.frame_count))
    finally:
      e.close()
  assert runs[0] == runs[1]


def test_load_world_errors(tmp_path):
  with pytest.raises(UserError, match='does not exist'):
    tinymon_world.load_world(tmp_path / 'missing.json')
  bad = tmp_path / 'bad.json'
  bad.write_text('{"maps": [')
  with pytest.raises(UserError, match='not valid JSON'):
    tinymon_world.load_world(bad)
  bad.write_text(json.dumps({'maps': []}))
  with pytest.raises(UserError, match='malformed'):
    tinymon_world.load_world(bad)


def test_world_tables(world):
  assert [m.id for m in world.maps] == list(range(len(world.maps)))
  assert sorted(g[2] for g in world.gyms) == [0, 1, 2]
  for map_id, x, y in world.healing_spots:
    assert world.map_by_id(map_id).walkable(x, y + 1)
  for m in world.maps:
    for w in m.warps:
      assert w.dest_map in world.connections[m.id]
      assert world.map_by_id(w.dest_map).walkable(w.dest_x, w.dest_y)
  gated = [(m.id, g.badges_required) for m in world.maps for g in m.gates]
  assert gated == [(1, 1), (3, 2)]
  assert any(m.is_grass(x, y) for m in world.maps for y in range(m.height) for x in range(m.width))


def test_build_checker_guards_every_mirrored_range():
  path = os.path.join(rom_lib.REPO_ROOT, 'games', 'tinymon', 'tools', 'check_map.py')
  spec = importlib.util.spec_from_file_location('check_map', path)
  check_map = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(check_map)
  assert sorted(check_map.MIRRORED_RANGES) == sorted(R.MIRRORED_RANGES)

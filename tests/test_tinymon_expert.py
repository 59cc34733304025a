"""The scripted expert: path-finding on world data, goals in PyBoy, the full run, bad ROMs."""

import json
import subprocess
import sys

import pytest

from dreamer_jax.envs import emulator as emulator_lib
from dreamer_jax.tinymon import expert
from dreamer_jax.tinymon import battle as expert_battle
from dreamer_jax.tinymon import controller as expert_goals
from dreamer_jax.tinymon import nav as expert_nav
from dreamer_jax.envs import ram_map as rm
from dreamer_jax.envs import rom as rom_lib
from dreamer_jax.tinymon import world as tinymon_world
from tests import gb_testing

ROM = rom_lib.TINYMON_ROM


@pytest.fixture(scope='module')
def world():
  return tinymon_world.load_world()


def _map(world, name):
  return next(m for m in world.maps if m.name == name)


# Path-finding on world data.


def test_shortest_path_prefers_cheaper_cells_and_reports_unreachable():
  # A 3x3 open grid: from (0, 0) to (2, 0), straight through (1, 0) unless that cell costs 10.
  def neighbours(cost_of_middle):
    def fn(state):
      x, y = state
      for action, dx, dy in expert_nav.MOVES:
        nx, ny = x + dx, y + dy
        if 0 <= nx < 3 and 0 <= ny < 3:
          yield action, (nx, ny), cost_of_middle if (nx, ny) == (1, 0) else 1
    return fn
  actions, states = expert_nav.shortest_path((0, 0), neighbours(1), lambda s: s == (2, 0))
  assert actions == [emulator_lib.RIGHT, emulator_lib.RIGHT] and states == [(1, 0), (2, 0)]
  actions, states = expert_nav.shortest_path((0, 0), neighbours(10), lambda s: s == (2, 0))
  assert len(actions) == 4 and (1, 0) not in states and states[-1] == (2, 0)
  assert expert_nav.shortest_path((0, 0), neighbours(1), lambda s: s == (5, 5)) is None
  assert expert_nav.shortest_path((0, 0), neighbours(1), lambda s: s == (0, 0)) == ([], [])


def test_paths_respect_walls_npcs_and_badge_gates(world):
  nav = expert_nav.NavGraph(world)
  route1 = _map(world, 'ROUTE 1')
  start = (world.start['map'], world.start['x'], world.start['y'])
  moss = _map(world, 'MOSS CITY').id
  (gate,) = route1.gates
  gx, gy, need = gate.x, gate.y, gate.badges_required
  assert nav.path(start, lambda s: s[0] == moss, badges=0) is None
  actions, states = nav.path(start, lambda s: s[0] == moss, badges=need)
  assert (route1.id, gx, gy) in states
  npc_cells = {(m.id, n.x, n.y) for m in world.maps for n in m.npcs if n.kind != 'guard'}
  prev = start
  for action, state in zip(actions, states):
    m = world.map_by_id(state[0])
    assert m.walkable(state[1], state[2]) and state not in npc_cells
    if state[0] == prev[0]:  # A move within a map is one cell in the pressed direction.
      assert expert_nav.direction_to(prev[1], prev[2], state[1], state[2]) == action
    prev = state


# Battle arithmetic.


def test_wins_counts_speed_order_and_the_next_mon():
  # Equal stats: worst-case hits are ours ((6 * 80 // 50 + 2) * 217 // 255 = 9) and theirs
  # (11 * 255 // 255 = 11). Against 27 HP we land 3 hits before taking a third: 30 - 22 = 8 left.
  mon = expert_battle.Fighter(level=10, hp=30, attack=20, defense=20, speed=20)
  assert expert_battle.damage(10, 20, 20, expert_battle.ROLL_MIN) == 9
  assert expert_battle.damage(10, 20, 20, expert_battle.ROLL_MAX) == 11
  assert expert_battle.wins([mon], [mon._replace(hp=27)])
  # A 4th hit is needed at 28 HP: their 3rd hit (33 > 30) comes first.
  assert not expert_battle.wins([mon], [mon._replace(hp=28)])
  # A faster enemy hits first: 27 HP is no longer enough.
  assert not expert_battle.wins([mon], [mon._replace(hp=27, speed=21)])
  # The next party mon finishes the job (the enemy keeps the HP it had).
  assert expert_battle.wins([mon, mon], [mon._replace(hp=28)])
  assert not expert_battle.wins([mon._replace(hp=0)], [mon._replace(hp=1)])


def test_damage_formula_matches_the_rom(world):
  """Every hit seen while the expert plays lies in the formula's roll range."""
  emulator = emulator_lib.Emulator(ROM)
  agent = expert.ScriptedExpert(world)
  memory = emulator.memory
  hits, prev = 0, None
  try:
    for _ in range(800):
      emulator.step(agent.act(memory), render=False)
      if memory[rm.IS_IN_BATTLE] not in (rm.BATTLE_WILD, rm.BATTLE_TRAINER):
        prev = None
        continue
      now = (memory[expert_battle.ENEMY_SPECIES], memory[rm.ENEMY_MON_LEVEL],
             memory[expert_battle.BATTLE_MON_INDEX], rm.read_u16(memory, rm.ENEMY_MON_HP),
             rm.read_u16(memory, rm.BATTLE_MON_HP))
      if prev is not None and prev[:3] == now[:3]:
        ours = expert_battle.party_fighter(memory, now[2])
        enemy = expert_battle.species_fighter(world.species_by_id(now[0]), now[1])
        for before, after, hitter, target in ((prev[3], now[3], ours, enemy),
                                              (prev[4], now[4], enemy, ours)):
          if after < before:
            low, high = (expert_battle.damage(hitter.level, hitter.attack, target.defense, roll)
                         for roll in (expert_battle.ROLL_MIN, expert_battle.ROLL_MAX))
            assert before - after <= high and (after == 0 or before - after >= low)
            hits += 1
      prev = now
  finally:
    emulator.close()
  assert hits >= 20


def _boot(world, steps=40):
  """An emulator past the title screen (the controller presses START there)."""
  emulator = emulator_lib.Emulator(ROM)
  controller = expert_goals.GoalController(world)
  spec = expert.goal('navigate')
  for _ in range(steps):
    if emulator.memory[expert_goals.GAME_MODE] == expert_goals.MODE_OVERWORLD:
      break
    emulator.step(controller.act(emulator.memory, spec), render=False)
  assert emulator.memory[expert_goals.GAME_MODE] == expert_goals.MODE_OVERWORLD
  return emulator, controller


def _play(emulator, controller, spec, max_steps, watch=None):
  """Steps `spec` until done; returns the steps taken (and calls `watch(memory)` every step)."""
  for step in range(max_steps):
    if controller.done(emulator.memory, spec):
      return step
    emulator.step(controller.act(emulator.memory, spec), render=False)
    if watch is not None:
      watch(emulator.memory)
  where = expert_goals.position(emulator.memory)
  raise AssertionError(f'goal {spec} not done in {max_steps} steps; at {where}')


def test_navigate_reaches_a_cell_on_another_map_through_a_warp(world):
  emulator, controller = _boot(world)
  try:
    center = world.map_by_id(world.healing_spots[0][0])
    x, y = world.healing_spots[0][1], world.healing_spots[0][2] + 2
    spec = expert.goal('navigate', center.name, x, y)
    _play(emulator, controller, spec, max_steps=100)
    assert expert_goals.position(emulator.memory) == (center.id, x, y)
  finally:
    emulator.close()


def test_a_goal_behind_a_closed_gate_is_not_walked_toward(world):
  emulator, controller = _boot(world)
  try:
    start = expert_goals.position(emulator.memory)
    spec = expert.goal('navigate', 'MOSS CITY')
    for _ in range(5):
      assert controller.act(emulator.memory, spec) == emulator_lib.NOOP
      emulator.step(emulator_lib.NOOP, render=False)
    assert expert_goals.position(emulator.memory) == start
    assert not controller.done(emulator.memory, spec)
    with pytest.raises(ValueError, match='not a tinymon map'):
      controller.act(emulator.memory, expert.goal('navigate', 'PALLET TOWN'))
    with pytest.raises(ValueError, match='unknown goal kind'):
      controller.done(emulator.memory, expert.goal('dance'))
  finally:
    emulator.close()


def test_explore_enters_a_map_not_visited_before(world):
  emulator, controller = _boot(world)
  try:
    start_map = emulator.memory[rm.CUR_MAP]
    _play(emulator, controller, expert.goal('explore'), max_steps=300)
    assert emulator.memory[rm.CUR_MAP] != start_map
    assert len(controller.visited) > 5
  finally:
    emulator.close()


def test_talk_opens_and_closes_a_text_box(world):
  leaf = _map(world, 'LEAF TOWN')
  sign = next(n for n in leaf.npcs if n.kind == 'sign')
  emulator, controller = _boot(world)
  seen = []
  try:
    spec = expert.goal('talk', leaf.name, sign.x, sign.y)
    _play(emulator, controller, spec, max_steps=60,
          watch=lambda m: seen.append(m[rm.FONT_LOADED] & 1))
    assert any(seen) and not emulator.memory[rm.FONT_LOADED] & 1
  finally:
    emulator.close()


def test_heal_walks_to_a_nurse_and_restores_the_party(world):
  emulator, controller = _boot(world)
  try:
    hp = rm.party_mon_address(0, rm.MON_HP)
    gb_testing.put_u16(emulator.memory, hp, 1)  # Set-up only: the expert itself never writes RAM.
    spec = expert.goal('heal')
    assert not controller.done(emulator.memory, spec)
    _play(emulator, controller, spec, max_steps=120)
    assert rm.read_u16(emulator.memory, hp) == rm.read_u16(
        emulator.memory, rm.party_mon_address(0, rm.MON_MAX_HP))
  finally:
    emulator.close()


def test_catch_goal_catches_a_new_species_on_route_1(world):
  emulator, controller = _boot(world)
  try:
    before = emulator.memory[rm.PARTY_COUNT], expert_goals.species_owned(emulator.memory)
    _play(emulator, controller, expert.goal('catch', 'ROUTE 1'), max_steps=600)
    assert expert_goals.species_owned(emulator.memory) == before[1] + 1
    assert emulator.memory[rm.PARTY_COUNT] == before[0] + 1
  finally:
    emulator.close()


def test_skip_catch_draws_the_species_left_to_catch_goals_anew_each_episode(world):
  every = {s.id for s in world.species}
  assert expert_goals.GoalController(world).skipped == set()
  assert expert_goals.GoalController(world, skip_catch=1.0).skipped == every

  def draws(seed, episodes=20):
    controller = expert_goals.GoalController(world, skip_catch=0.5, seed=seed)
    out = []
    for _ in range(episodes):
      controller.new_episode()
      out.append(frozenset(controller.skipped))
    return out
  half = draws(3)
  assert draws(3) == half and draws(4) != half
  assert len(set(half)) > 10 and all(d <= every for d in half)
  assert 0.35 < sum(map(len, half)) / (20 * len(every)) < 0.65
  with pytest.raises(ValueError, match='skip_catch'):
    expert_goals.GoalController(world, skip_catch=1.5)


def test_catching_on_catch_goals_only_fights_new_species_under_a_battle_goal(world):
  emulator, _ = _boot(world)
  controller = expert_goals.GoalController(world, skip_catch=1.0)
  try:
    owned = expert_goals.species_owned(emulator.memory)
    met = set()
    watch = lambda m: m[rm.IS_IN_BATTLE] == rm.BATTLE_WILD and met.add(
        m[expert_battle.ENEMY_SPECIES])
    for _ in range(2):   # Two wild battles in ROUTE 1's grass, every species there new: fought.
      controller.reset()
      _play(emulator, controller, expert.goal('battle', 'ROUTE 1'), max_steps=600, watch=watch)
    assert met and expert_goals.species_owned(emulator.memory) == owned
    controller.reset()
    _play(emulator, controller, expert.goal('catch', 'ROUTE 1'), max_steps=600)
    assert expert_goals.species_owned(emulator.memory) == owned + 1   # Asked for: caught.
  finally:
    emulator.close()


# The whole game.


def test_expert_wins_from_power_on():
  result = expert.run_expert(ROM, max_steps=20000, progress=False)
  assert result['badges'] == 3 and result['species_owned'] >= 10 and result['won']
  assert result['steps'] <= 20000 and result['frames'] == 24 * result['steps']


def test_a_seed_fixes_the_playthrough_and_another_seed_changes_it(world):
  def actions(seed, steps=300):
    emulator = emulator_lib.Emulator(ROM)
    agent = expert.ScriptedExpert(world, seed=seed)
    out = []
    try:
      for _ in range(steps):
        out.append(agent.act(emulator.memory))
        emulator.step(out[-1], render=False)
    finally:
      emulator.close()
    return out
  first = actions(3)
  assert actions(3) == first
  assert actions(4) != first


# Bad ROMs end in one sentence.


def _run_entry_point(rom_path):
  return subprocess.run(
      [sys.executable, '-m', 'experiments.expert', '--rom', str(rom_path), '--json',
       '--noprogress', '--max_steps', '10'],
      capture_output=True, text=True, cwd=rom_lib.REPO_ROOT, timeout=120, check=False)


@pytest.mark.parametrize('case', ['missing', 'truncated', 'foreign'])
def test_entry_point_rejects_bad_roms_in_one_sentence(tmp_path, case):
  path = tmp_path / 'game.gb'
  if case == 'truncated':
    with open(ROM, 'rb') as f:
      path.write_bytes(f.read()[:0x4000])
  elif case == 'foreign':
    gb_testing.make_rom(path)
  proc = _run_entry_point(path)
  assert proc.returncode == 2, proc.stderr
  lines = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
  assert len(lines) == 1 and str(path) in lines[0] and 'Traceback' not in proc.stderr
  assert {'missing': 'does not exist', 'truncated': 'truncated',
          'foreign': 'is not tinymon'}[case] in lines[0]
  assert proc.stdout == ''


def test_entry_point_prints_json_result():
  proc = _run_entry_point(ROM)
  assert proc.returncode == 0, proc.stderr
  result = json.loads(proc.stdout)
  assert result['steps'] == 10 and result['frames'] == 240 and not result['won']
  assert set(result) >= {'badges', 'species_owned', 'steps', 'frames', 'seconds'}

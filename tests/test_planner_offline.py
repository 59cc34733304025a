"""The offline planner on tinymon's world data, the planner factory, experiments.plan, and the
offline planner driving the scripted expert's GoalController to all 3 badges."""

import json
import os
import subprocess
import sys

import pytest

from configs import v3
from dreamer_jax.envs import games
from dreamer_jax.envs import rom as rom_lib
from dreamer_jax.tinymon import world as tinymon_world
from dreamer_jax.errors import UserError
from dreamer_jax.planner import async_planner
from dreamer_jax.planner import goals
from dreamer_jax.planner import offline
from dreamer_jax.planner import run

WORLD = tinymon_world.load_world()
INDEX = goals.WorldIndex.from_world(WORLD)
LEADERS = {t.badge_bit: t for t in WORLD.trainers if t.badge_bit is not None}


def _state(map_name='LEAF TOWN', x=7, y=8, badge_bits=0, levels=(6,), hp=None, **changes):
  map_id = next(i for i, n in WORLD.map_names.items() if n == map_name)
  max_hp = [20 + 2 * level for level in levels]
  state = dict(map_id=map_id, map_name=map_name, x=x, y=y, badges=bin(badge_bits).count('1'),
               badge_bits=badge_bits, party_count=len(levels),
               party_hp=list(max_hp if hp is None else hp), party_max_hp=max_hp,
               party_levels=list(levels), in_battle=0, dialog_open=False,
               pokedex_owned=len(levels), pokedex_seen=len(levels), money=3000,
               steps_without_progress=0)
  state.update(changes)
  return state


def _plan(state, current=None):
  planner = offline.OfflinePlanner(WORLD, waypoints=True)
  _, spec, _ = goals.parse_reply(planner.propose(state, current), INDEX)
  return spec


def _leader_spec(bit):
  leader = LEADERS[bit]
  return {'kind': 'battle', 'map': WORLD.map_names[leader.map_id], 'x': leader.x, 'y': leader.y}


def test_offline_goals_follow_the_game_plan():
  strong = (30, 30, 30)
  assert _plan(_state())['kind'] == 'catch'                         # One mon: catch more first.
  train = _plan(_state(levels=(6, 4, 4)))                             # Too weak for the leader:
  assert train['kind'] == 'battle' and train['x'] is None             # train in grass,
  assert WORLD.map_by_id(INDEX.map_id(train['map'])).encounters      # on a map with encounters.
  assert _plan(_state(levels=strong)) == _leader_spec(0)
  assert _plan(_state('MOSS CITY', badge_bits=0b001, levels=strong)) == _leader_spec(1)
  assert _plan(_state('EMBER CITY', badge_bits=0b011, levels=strong)) == _leader_spec(2)
  assert _plan(_state(badge_bits=0b111, levels=strong))['kind'] == 'explore'
  assert _plan(_state(levels=strong, steps_without_progress=10_000))['kind'] == 'explore'


def test_with_every_badge_the_offline_planner_catches_up_to_min_species():
  strong, done = (30, 30, 30), 0b111
  planner = offline.OfflinePlanner(WORLD, min_species=10)
  plan = lambda **k: goals.parse_reply(planner.propose(_state(badge_bits=done, levels=strong, **k)),
                                       INDEX)[1]
  assert plan(pokedex_owned=9) == {'kind': 'catch', 'map': None, 'x': None, 'y': None}
  assert plan(pokedex_owned=10)['kind'] == 'explore'
  assert plan(pokedex_owned=9, steps_without_progress=10_000)['kind'] == 'explore'   # Stuck.
  # Before the last badge the species count changes nothing: the next leader comes first.
  assert goals.parse_reply(planner.propose(_state('EMBER CITY', badge_bits=0b011, levels=strong,
                                                  pokedex_owned=3)), INDEX)[1] == _leader_spec(2)
  # The episode is over with every badge and min_species species, not before.
  assert not offline.finished(_state(badge_bits=done, pokedex_owned=9), 3, 10)
  assert offline.finished(_state(badge_bits=done, pokedex_owned=10), 3, 10)
  assert not offline.finished(_state(badge_bits=0b011, pokedex_owned=15), 3, 10)
  assert offline.finished(_state(badge_bits=done, pokedex_owned=1), 3)   # Old configs: badges.
  config = v3.get_config().planner
  config.backend = 'offline'
  rules = async_planner.build_planner(config, WORLD).rules
  assert rules.min_species == config.min_species == 10 and rules.waypoints
  del config.min_species, config.waypoints        # A workdir's config from before them.
  rules = async_planner.build_planner(config, WORLD).rules
  assert rules.min_species == 0 and not rules.waypoints


def test_a_goal_maps_away_is_given_one_map_at_a_time():
  # tinymon's gyms share one layout (every leader stands at the same cell), so from LEAF TOWN the
  # MOSS GYM leader is given as the walk north, map by map, never as a far 'battle' goal.
  strong, walk = (30, 30, 30), lambda name: {'kind': 'navigate', 'map': name, 'x': None, 'y': None}
  assert _leader_spec(0)['x'] == _leader_spec(1)['x'] and _leader_spec(0)['y'] == _leader_spec(1)['y']
  assert _plan(_state(badge_bits=0b001, levels=strong)) == walk('ROUTE 1')
  assert _plan(_state('ROUTE 1', 5, 10, 0b001, strong)) == walk('MOSS CITY')
  assert _plan(_state('LEAF GYM', 4, 5, 0b001, strong)) == walk('LEAF TOWN')
  assert _plan(_state(levels=strong)) == _leader_spec(0)          # LEAF GYM is next door.
  # A heal from the gym walks out first; the nurse next door is the goal itself.
  assert _plan(_state('LEAF GYM', 4, 5, 0b001, strong, hp=(0, 5, 5))) == walk('LEAF TOWN')
  assert _plan(_state(levels=strong, hp=(0, 5, 5)))['kind'] == 'heal'
  # Without waypoints (a config from before them) the far goal itself.
  far = offline.OfflinePlanner(WORLD).propose(_state(badge_bits=0b001, levels=strong))
  assert goals.parse_reply(far, INDEX)[1] == _leader_spec(1)


def test_offline_heals_at_the_nearest_reachable_nurse():
  nurses = {WORLD.map_names[m]: (m, x, y) for m, x, y in WORLD.healing_spots}
  spec = _plan(_state(levels=(30, 30, 30), hp=(0, 5, 5)))
  assert spec['kind'] == 'heal' and spec['map'] == 'LEAF CENTER'
  assert (spec['x'], spec['y']) == nurses['LEAF CENTER'][1:]
  # In MOSS CITY with the first badge the MOSS CENTER is nearer.
  assert _plan(_state('MOSS CITY', 7, 8, 0b001, (30, 30, 30), hp=(0, 5, 5)))['map'] == 'MOSS CENTER'


def test_offline_keeps_a_catch_goal_during_its_battle():
  catch = {'kind': 'catch', 'map': None, 'x': None, 'y': None}
  assert _plan(_state(in_battle=1), catch) == catch
  assert _plan(_state(in_battle=2), None) == {'kind': 'battle', 'map': None, 'x': None, 'y': None}


def test_factory_picks_offline_without_keys_and_rejects_bad_settings(monkeypatch, tmp_path):
  for name in ('GEMINI_API_KEY', 'GOOGLE_API_KEY', 'OPENAI_API_KEY'):
    monkeypatch.delenv(name, raising=False)
  config = v3.get_config().planner
  planner = async_planner.build_planner(config, WORLD)
  assert planner.llm is None and planner.rules.name == 'offline'
  plan = planner.poll(_state())
  assert plan.source == 'offline' and plan.goal_embedding.shape == (config.goal_embedding_dim,)
  with pytest.raises(UserError, match='GEMINI_API_KEY'):
    async_planner.build_planner(config, WORLD, 'gemini')
  with pytest.raises(UserError, match='scripted_goals'):
    async_planner.build_planner(config, WORLD, 'scripted')
  config.goal_embedding_dim = 8
  with pytest.raises(UserError, match='goal_embedding_dim=8'):
    async_planner.build_planner(config, WORLD)


def _red_state(map_id=0x01, in_battle=0):
  names = games.GAMES['pokered'].map_names()
  return dict(map_id=map_id, map_name=names[map_id], x=5, y=5, badges=0, badge_bits=0,
              party_count=1, party_hp=[20], party_max_hp=[20], party_levels=[5],
              in_battle=in_battle, dialog_open=False, pokedex_owned=1, pokedex_seen=1, money=3000,
              steps_without_progress=0)


def test_a_red_planner_checks_goals_against_red_map_names(tmp_path):
  world, names = async_planner.game_world('pokered')
  assert world is None and names == games.GAMES['pokered'].map_names()
  tm_world, tm_names = async_planner.game_world('tinymon')
  assert tm_world is not None and tm_names == WORLD.map_names
  config = v3.get_config().planner
  config.backend = 'offline'
  planner = async_planner.build_planner(config, world, map_names=names)
  assert planner.index.map_names == names and planner.rules.name == 'offline'
  goal = lambda name: {'goal': 'Go.', 'rationale': '',
                       'goal_spec': {'kind': 'navigate', 'map': name, 'x': 3, 'y': 4}}
  assert goals.parse_reply(goal('pewter city'), planner.index)[1]['map'] == 'Pewter City'
  with pytest.raises(goals.InvalidReply, match="unknown map 'LEAF TOWN'"):
    goals.parse_reply(goal('LEAF TOWN'), planner.index)   # tinymon's map is not Red's.
  # The game-agnostic rules: explore, a battle while one is on.
  assert planner.poll(_red_state()).goal_spec == {'kind': 'explore', 'map': None, 'x': None,
                                                  'y': None}
  fight = async_planner.build_planner(config, world, map_names=names).poll(_red_state(in_battle=1))
  assert fight.goal_spec['kind'] == 'battle'
  # A scripted Red goal is validated against the same table: Red's map passes, tinymon's does not.
  script = tmp_path / 'goals.json'
  script.write_text(json.dumps([goal('Viridian City'), goal('LEAF TOWN')]))
  config.scripted_goals = str(script)
  scripted = async_planner.build_planner(config, world, 'scripted', map_names=names)
  assert scripted.plan_now(_red_state()).goal_spec['map'] == 'Viridian City'
  assert scripted.plan_now(_red_state()).goal_spec['map'] == 'Viridian City'   # LEAF TOWN refused.


def test_plan_screen_prints_a_valid_goal_for_the_start_screen():
  out = run.plan_screen(v3.get_config(), backend='offline')
  assert set(out) == {'goal', 'goal_spec', 'goal_embedding', 'rationale'}
  assert goals.check_goal_spec(out['goal_spec'], INDEX) == out['goal_spec']
  assert len(out['goal_embedding']) == v3.get_config().planner.goal_embedding_dim


def test_plan_cli_without_a_key_says_so_in_one_sentence(tmp_path):
  env = {k: v for k, v in os.environ.items()
         if k not in ('GEMINI_API_KEY', 'GOOGLE_API_KEY', 'OPENAI_API_KEY')}
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  result = subprocess.run([sys.executable, '-m', 'experiments.plan', '--backend', 'gemini'],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert 'GEMINI_API_KEY' in result.stderr and 'Traceback' not in result.stderr
  missing = tmp_path / 'nope.gb'
  with pytest.raises(UserError, match='does not exist'):
    run.plan_screen(v3.get_config(), rom_path=str(missing), backend='offline')


def test_offline_planner_driving_the_expert_reaches_all_three_badges():
  assert os.path.exists(rom_lib.TINYMON_ROM)
  result = run.play(v3.get_config(), max_steps=20000, backend='offline', progress=False)
  assert result['badges'] == 3, result
  assert result['steps'] <= 20000

"""Goal validation, the goal embedding, goal-reached judgement, replan triggers, scripted replay."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from dreamer_jax.errors import UserError
from dreamer_jax.planner import async_planner
from dreamer_jax.planner import goals
from dreamer_jax.planner import prompt
from dreamer_jax.planner import scripted
from dreamer_jax.planner import triggers

INDEX = goals.WorldIndex(map_names={0: 'LEAF TOWN', 1: 'ROUTE 1', 7: 'LEAF GYM', 60: 'FAR CAVE'},
                         map_sizes={0: (14, 12), 1: (12, 20), 7: (10, 10), 60: (8, 8)})
STATE = dict(map_id=0, map_name='LEAF TOWN', x=7, y=8, badges=0, badge_bits=0, party_count=1,
             party_hp=[10], party_max_hp=[24], party_levels=[6], in_battle=0, dialog_open=False,
             pokedex_owned=1, pokedex_seen=1, money=3000, steps_without_progress=0)


def _reply(kind='navigate', map_name='ROUTE 1', x=3, y=4, goal='Walk north.', rationale='why'):
  return json.dumps({'goal': goal, 'rationale': rationale,
                     'goal_spec': {'kind': kind, 'map': map_name, 'x': x, 'y': y}})


def test_a_valid_reply_is_accepted_with_the_canonical_map_name():
  goal, spec, rationale = goals.parse_reply(_reply(map_name=' route 1 '), INDEX)
  assert (goal, rationale) == ('Walk north.', 'why')
  assert spec == {'kind': 'navigate', 'map': 'ROUTE 1', 'x': 3, 'y': 4}
  fenced = '```json\n' + _reply() + '\n```'
  assert goals.parse_reply(fenced, INDEX)[1] == spec


@pytest.mark.parametrize('text,message', [
    ('Head to the gym, it is north.', 'prose'),
    ('', 'empty'),
    ('{"goal": "x", "goal_spec": {', 'malformed JSON'),
    (_reply(kind='fly'), 'goal_spec.kind'),
    (_reply(map_name='ATLANTIS'), "unknown map 'ATLANTIS'"),
    (_reply(x=12, y=4), "outside map 'ROUTE 1', which is 12x20"),
    (_reply(x=3, y=None), 'only one of'),
    (_reply(kind='explore', map_name=None, x=3, y=4), 'without a map'),
    (_reply(kind='navigate', map_name=None, x=None, y=None), 'needs a map'),
    (_reply(kind='talk', x=None, y=None), 'needs a map and a tile'),
    (_reply(goal='g' * 201), 'at most 200 characters'),
    (_reply(rationale='r' * 601), 'at most 600 characters'),
    (json.dumps({'goal': 'x', 'rationale': ''}), 'goal_spec'),
    (_reply(x=-1, y=2), 'greater than or equal to 0'),
])
def test_bad_replies_are_rejected_with_a_reason(text, message):
  with pytest.raises(goals.InvalidReply, match=message):
    goals.parse_reply(text, INDEX)


def test_a_tile_is_inside_its_map_up_to_the_last_cell():
  # ROUTE 1 is 12x20 cells: x 0..11, y 0..19.
  assert goals.parse_reply(_reply(x=11, y=19), INDEX)[1] == {
      'kind': 'navigate', 'map': 'ROUTE 1', 'x': 11, 'y': 19}
  with pytest.raises(goals.InvalidReply, match=r"tile \(3, 20\) is outside map 'ROUTE 1'"):
    goals.parse_reply(_reply(x=3, y=20), INDEX)
  # A map the world gives no size for accepts any coordinate byte, up to 255.
  index = goals.WorldIndex(map_names={0: 'LEAF TOWN', 3: 'ATTIC'}, map_sizes={0: (14, 12)})
  spec = {'kind': 'navigate', 'map': 'ATTIC', 'x': 255, 'y': 255}
  assert goals.check_goal_spec(spec, index) == spec


def test_check_goal_spec_refuses_an_unknown_kind_on_its_own():
  with pytest.raises(goals.InvalidReply, match="unknown goal kind 'fly'; expected one of navigate"):
    goals.check_goal_spec({'kind': 'fly', 'map': None, 'x': None, 'y': None}, INDEX)


def test_embedding_values_worked_by_hand():
  # dim 32 leaves 32 - 19 = 13 map slots: ids 8 and 21 share slot 8 and differ only in the wrap
  # feature, 8 // 13 / 4 = 0 against 21 // 13 / 4 = 0.25.
  names = {8: 'CAVE A', 21: 'CAVE B'}
  spec = {'kind': 'navigate', 'map': 'CAVE B', 'x': 2, 'y': 8}
  r = 0.5 ** 0.5
  want = np.zeros(32, np.float32)
  want[0] = 1                              # navigate, the first kind.
  want[6:8] = 1                            # Map and tile present.
  want[8:10] = 2 / 64, 8 / 64              # x and y / COORD_SCALE.
  # Period 4: x=2 is half a turn (sin 0, cos -1), y=8 two turns (0, 1); period 16: x=2 is an eighth
  # of a turn (r, r), y=8 half a turn (0, -1).
  want[10:18] = 0, -1, 0, 1, r, r, 0, -1
  want[18] = 0.25
  want[19 + 8] = 1
  np.testing.assert_allclose(goals.goal_embedding(spec, names, 32), want, atol=1e-6)
  other = goals.goal_embedding(dict(spec, map='CAVE A'), names, 32)
  np.testing.assert_allclose(other, np.where(np.arange(32) == 18, 0, want), atol=1e-6)


def test_embedding_is_a_fixed_function_of_the_goal_spec():
  spec = {'kind': 'battle', 'map': 'LEAF GYM', 'x': 4, 'y': 1}
  a = goals.goal_embedding(spec, INDEX.map_names, 64)
  assert a.shape == (64,) and a.dtype == np.float32
  np.testing.assert_array_equal(a, goals.goal_embedding(dict(spec), dict(INDEX.map_names), 64))
  assert a[goals.GOAL_KINDS.index('battle')] == 1 and a[:len(goals.GOAL_KINDS)].sum() == 1


def test_embedding_tells_every_kind_map_and_tile_apart():
  specs = [{'kind': k, 'map': m, 'x': x, 'y': y}
           for k in goals.GOAL_KINDS for m in INDEX.map_names.values()
           for x, y in ((0, 0), (1, 0), (0, 1), (5, 7))]
  specs += [{'kind': k, 'map': None, 'x': None, 'y': None} for k in goals.GOAL_KINDS]
  specs += [{'kind': 'heal', 'map': m, 'x': None, 'y': None} for m in INDEX.map_names.values()]
  vectors = np.stack([goals.goal_embedding(s, INDEX.map_names, 32) for s in specs])
  distances = np.linalg.norm(vectors[:, None] - vectors[None], axis=-1)
  assert (distances + np.eye(len(specs)) > 1e-3).all()
  # Map ids beyond the slot count (FAR CAVE is id 60) still get their own code.
  assert np.isfinite(vectors).all() and np.abs(vectors).max() <= 4


def test_embedding_rejects_a_too_small_dim_and_an_unknown_map():
  with pytest.raises(ValueError, match='minimum'):
    goals.goal_embedding({'kind': 'heal', 'map': None, 'x': None, 'y': None}, {}, 8)
  with pytest.raises(ValueError, match='not in the map table'):
    goals.goal_embedding({'kind': 'heal', 'map': 'NOWHERE', 'x': None, 'y': None}, {}, 64)


def test_plan_json_is_the_seed_output():
  _, spec, _ = goals.parse_reply(_reply(), INDEX)
  plan = goals.make_plan('Walk north.', spec, 'why', 'offline', INDEX, 64)
  out = json.loads(json.dumps(plan.to_json()))
  assert set(out) == {'goal', 'goal_spec', 'goal_embedding', 'rationale'}
  assert len(out['goal_embedding']) == 64 and out['goal_spec'] == spec


def _progress(spec, **changes):
  tracker = goals.GoalProgress(spec, STATE)
  return tracker, tracker.update(dict(STATE, **changes))


def test_goal_reached_is_judged_from_the_state():
  nav = {'kind': 'navigate', 'map': 'ROUTE 1', 'x': 3, 'y': 4}
  assert _progress(nav, map_name='ROUTE 1', x=3, y=4)[1]
  assert not _progress(nav, map_name='ROUTE 1', x=3, y=5)[1]
  heal = {'kind': 'heal', 'map': None, 'x': None, 'y': None}
  assert not _progress(heal)[1] and _progress(heal, party_hp=[24])[1]
  catch = {'kind': 'catch', 'map': None, 'x': None, 'y': None}
  assert not _progress(catch)[1] and _progress(catch, pokedex_owned=2)[1]
  leader = {'kind': 'battle', 'map': 'LEAF GYM', 'x': 4, 'y': 1}
  tracker, _ = _progress(leader, in_battle=1)                 # A wild battle on the way...
  assert not tracker.update(STATE)                             # ...does not count;
  tracker.update(dict(STATE, map_name='LEAF GYM', in_battle=2))
  assert tracker.update(dict(STATE, map_name='LEAF GYM'))      # the trainer battle's end does,
  assert _progress(leader, badges=1)[1]                        # and so does a new badge.
  talk = {'kind': 'talk', 'map': 'LEAF TOWN', 'x': 3, 'y': 6}
  tracker, reached = _progress(talk, dialog_open=True)
  assert not reached and tracker.update(STATE)


def test_goal_reached_edge_cases():
  battle = {'kind': 'battle', 'map': None, 'x': None, 'y': None}
  tracker, _ = _progress(battle, in_battle=1)
  assert not tracker.update(dict(STATE, in_battle=0xFF))      # A blackout is no battle won.
  leader = {'kind': 'battle', 'map': 'LEAF GYM', 'x': 4, 'y': 1}
  tracker, _ = _progress(leader, map_name='ROUTE 1', in_battle=2)
  assert not tracker.update(dict(STATE, map_name='ROUTE 1'))  # Another map's trainer is not it.
  explore = {'kind': 'explore', 'map': None, 'x': None, 'y': None}
  assert not _progress(explore, x=9, y=2)[1] and _progress(explore, map_name='ROUTE 1')[1]
  heal = {'kind': 'heal', 'map': 'ROUTE 1', 'x': None, 'y': None}
  assert not _progress(heal, party_hp=[24])[1]                # Full HP, but not at ROUTE 1.
  assert not _progress(heal, party_hp=[24], map_name='ROUTE 1', in_battle=1)[1]
  assert _progress(heal, party_hp=[24], map_name='ROUTE 1')[1]
  town = {'kind': 'navigate', 'map': 'ROUTE 1', 'x': None, 'y': None}
  assert _progress(town, map_name='ROUTE 1', x=9, y=17)[1]    # Any tile of the map.


def _run(trig, states, reached=()):
  reasons = []
  for i, state in enumerate(states):
    reason = trig.check(state, i in reached)
    if reason:
      trig.replanned()
    reasons.append(reason)
  return reasons


def test_triggers_fire_on_each_event_once():
  cfg = triggers.TriggerConfig(replan_every=10, stuck_steps=4, min_steps=2, retry_steps=3)
  s = STATE
  states = [s, s, dict(s, in_battle=1), dict(s, in_battle=1), s, dict(s, map_id=1), s]
  assert _run(triggers.Triggers(cfg), states) == [
      'start', None, 'battle_start', None, 'battle_end', 'map_change', 'map_change']
  assert _run(triggers.Triggers(cfg), [s] * 12) == ['start'] + [None] * 9 + ['interval', None]
  stuck = dict(s, steps_without_progress=9)
  assert _run(triggers.Triggers(cfg), [stuck] * 6) == ['start', None, None, None, 'stuck', None]
  reasons = _run(triggers.Triggers(cfg), [s] * 4, reached={1, 2})
  assert reasons == ['start', None, 'goal_reached', None]


def test_triggers_can_be_switched_off_and_retry_after_a_failure():
  cfg = triggers.TriggerConfig(replan_every=0, stuck_steps=0, on_map_change=False, on_battle=False,
                               on_goal_reached=False, retry_steps=2)
  trig = triggers.Triggers(cfg)
  states = [STATE, dict(STATE, in_battle=2, map_id=5, steps_without_progress=999)] * 3
  assert _run(trig, states, reached={1, 2, 3}) == ['start'] + [None] * 5
  trig.failed()
  assert [trig.check(STATE, False) for _ in range(2)] == [None, 'retry']


def test_scripted_planner_replays_and_stays_on_the_last_goal(tmp_path):
  replies = [json.loads(_reply(goal='one')), json.loads(_reply(goal='two'))]
  path = tmp_path / 'goals.json'
  path.write_text(json.dumps(replies))
  planner = scripted.ScriptedPlanner(scripted.load_script(path))
  assert [planner.propose(STATE)['goal'] for _ in range(3)] == ['one', 'two', 'two']
  (tmp_path / 'bad.json').write_text('[{"goal": ')
  with pytest.raises(UserError, match='not valid JSON'):
    scripted.load_script(tmp_path / 'bad.json')
  with pytest.raises(UserError, match='does not exist'):
    scripted.load_script(tmp_path / 'missing.json')


@pytest.mark.parametrize('frame', [
    np.full((144, 160), 3, np.uint8), np.zeros((144, 160, 4), np.uint8)])
def test_screenshot_is_a_160x144_png(frame):
  image = Image.open(io.BytesIO(prompt.encode_png(frame)))
  assert image.size == (160, 144)


def test_planner_moves_on_when_a_goal_is_reached_and_records_it():
  walk = json.loads(_reply(kind='navigate', map_name='ROUTE 1', x=3, y=4, goal='Walk north.'))
  heal = json.loads(_reply(kind='heal', map_name=None, x=None, y=None, goal='Heal.'))
  cfg = triggers.TriggerConfig(replan_every=0, stuck_steps=0, on_map_change=False, min_steps=1)
  planner = async_planner.Planner(INDEX, scripted.ScriptedPlanner([walk, heal]), trigger_cfg=cfg,
                                  dim=32)
  assert planner.poll(STATE).goal == 'Walk north.'
  assert planner.poll(dict(STATE, map_id=1, map_name='ROUTE 1', x=3, y=3)).goal == 'Walk north.'
  arrived = dict(STATE, map_id=1, map_name='ROUTE 1', x=3, y=4)
  plan = planner.poll(arrived)
  assert plan.goal == 'Heal.' and plan.goal_embedding.shape == (32,)
  assert list(planner.history) == [
      {'goal': 'Walk north.', 'kind': 'navigate', 'outcome': 'reached', 'steps': 2}]
  # System 1's own judgement (e.g. GoalController.done) overrides the state-based one.
  assert planner.poll(arrived, goal_done=False).goal == 'Heal.'
  assert planner.goal_count == 2

"""The agent evaluation's games played at once (`evaluate.play` with workers > 1): the same games
and figures as one after another, each episode from the start, System 2 per game."""

import numpy as np

from configs import v3
from dreamer_jax.agent import evaluate
from dreamer_jax.envs import emulator


def _scripted(batch):
  """An act_fn whose action is a function of the step within the episode alone (so a game's moves
  do not depend on which emulator plays it); records the goals and first flags it was given."""
  seen = dict(first=[], goals=[])
  if not batch:
    state = dict(step=0, episode=-1)

    def act(obs, goal_spec, first):
      del obs
      if first:
        state.update(step=0, episode=state['episode'] + 1)
      else:
        state['step'] += 1
      seen['first'].append(first)
      seen['goals'].append(goal_spec)
      return _action(state['episode'], state['step'])
    return act, seen
  steps, episodes, begun = {}, {}, [0]

  def act_all(obs, goal_specs, first):
    seen['first'].append(np.asarray(first).copy())
    seen['goals'].append(list(goal_specs))
    actions = []
    for i in range(len(goal_specs)):
      if first[i]:   # Episodes begin in game order: the one `play` gives this game now.
        steps[i], episodes[i], begun[0] = 0, begun[0], begun[0] + 1
      else:
        steps[i] += 1
      actions.append(_action(episodes[i], steps[i]))
    assert obs['frame'].shape[0] == len(goal_specs) == obs['ram'].shape[0]
    return np.array(actions)
  return act_all, seen


def _action(episode, step):
  """Episode 0 walks down and right, episode 1 up and left, episode 2 presses A and waits."""
  plans = ((emulator.DOWN, emulator.RIGHT), (emulator.UP, emulator.LEFT), (emulator.A, emulator.NOOP))
  return plans[episode % 3][step // 4 % 2]


def test_games_at_once_match_games_one_after_another():
  config = v3.get_config('small')
  config.planner.backend = 'offline'
  one, _ = _scripted(False)
  sequential = evaluate.play(config, one, episodes=3, max_steps=30, progress=False)
  many, seen = _scripted(True)
  parallel = evaluate.play(config, many, episodes=3, max_steps=30, progress=False, workers=2)
  assert parallel == sequential and len(parallel) == 3
  assert len({e['episode_return'] for e in parallel}) == 3   # Three different games.
  assert all(e['steps'] == 30 for e in parallel)
  # Two games at once: both begin at the first call; the third episode begins in the first game to
  # finish, as a new episode (its first flag), after 30 steps.
  assert seen['first'][0].tolist() == [True, True]
  assert sum(f.sum() for f in seen['first']) == 3 and seen['first'][30].any()
  assert all(len(g) == 2 and all(s['kind'] in evaluate_kinds() for s in g) for g in seen['goals'])


def evaluate_kinds():
  from dreamer_jax.planner import goals  # pylint: disable=g-import-not-at-top
  return goals.GOAL_KINDS


def test_the_games_at_once_are_at_most_the_episodes_and_one_per_core_by_default():
  assert evaluate.emulators(3, 8) == 3
  assert evaluate.emulators(5, 2) == 2
  assert evaluate.emulators(1, 0) == 1
  assert evaluate.emulators(64, 0) >= 1


def test_the_menu_tally_counts_actions_against_new_species_only():
  from dreamer_jax.envs import features  # pylint: disable=g-import-not-at-top
  names = {n: i for i, n in enumerate(features.RAM_FEATURE_NAMES)}

  def ram(new, menu=1.0, lead=0.6, enemy=0.1, cursor=1):
    r = np.zeros(features.RAM_FEATURES, np.float32)
    r[names['battle_wild']], r[names['enemy_new']], r[names['battle_menu']] = 1.0, new, menu
    r[names['level_0']], r[names['enemy_level']] = lead, enemy
    r[names['menu_cursor_0'] + cursor] = 1.0
    r[names['badge_0']] = r[names['badge_1']] = r[names['badge_2']] = 1.0
    return r

  tally = evaluate.MenuTally()
  act = tally.wrap(lambda obs, spec, first: emulator.A)
  catch = {'kind': 'catch', 'map': None, 'x': None, 'y': None}
  for r in (ram(1.0), ram(1.0), ram(0.0), ram(1.0, menu=0.0), ram(1.0, lead=0.2, cursor=0)):
    act({'frame': None, 'ram': r}, catch, False)
  assert tally.counts() == [
      [2, '3 badges, goal catch, lead >= wild+20 levels, cursor on BALL: a'],
      [1, '3 badges, goal catch, lead < wild+20 levels, cursor on FIGHT: a']]
  batched = evaluate.MenuTally()   # Games at once: a row each.
  batched.wrap(lambda obs, specs, first: np.array([emulator.DOWN, emulator.A]))(
      {'frame': None, 'ram': np.stack([ram(1.0, cursor=0), ram(0.0)])}, [catch, catch], None)
  assert batched.counts() == [[1, '3 badges, goal catch, lead >= wild+20 levels, cursor on FIGHT: down']]


def test_fixed_length_plays_every_step_and_records_when_the_target_was_first_held(monkeypatch):
  """The target (here: two cells from the start tile, in place of every badge and 10 species) ends
  an episode by default; with fixed_length every episode plays all its steps, and steps_to_target
  and return_at_target are what the default run ended with (the same games: the actions depend on
  the step alone). Episode 2 presses A and never moves: it never holds the target."""
  from dreamer_jax.envs import gb_env  # pylint: disable=g-import-not-at-top
  config = v3.get_config('small')
  config.planner.backend = 'offline'
  env = gb_env.GameBoyEnv.from_config(config.env, config.reward)
  start = env.reset()[1]['state']
  env.close()
  away = lambda state, badges, species: abs(state['x'] - start['x']) + abs(state['y'] - start['y']) >= 2
  monkeypatch.setattr(evaluate.offline, 'finished', away)

  ended = evaluate.play(config, _scripted(False)[0], episodes=3, max_steps=30, progress=False)
  fixed = evaluate.play(config, _scripted(False)[0], episodes=3, max_steps=30, progress=False,
                        fixed_length=True)
  at_once = evaluate.play(config, _scripted(True)[0], episodes=3, max_steps=30, progress=False,
                          workers=2, fixed_length=True)
  assert at_once == fixed
  assert [e['steps'] for e in ended] == [2, 2, 30]
  assert [e['steps'] for e in fixed] == [30, 30, 30]
  assert [e['steps_to_target'] for e in ended] == [e['steps_to_target'] for e in fixed] == [2, 2, None]
  assert [e['return_at_target'] for e in fixed] == [e['episode_return'] for e in ended[:2]] + [None]
  # Played on, the first two episodes earn more (here: the idle steps' penalty) after their target.
  assert all(f['episode_return'] < f['return_at_target'] for f in fixed[:2])
  assert fixed[2]['episode_return'] == ended[2]['episode_return']
  summary = evaluate.summary(fixed)
  assert (summary['reached_target'], summary['steps_to_target']) == (2, 2)
  assert evaluate.summary(ended[2:])['steps_to_target'] is None

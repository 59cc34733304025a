"""System 1 playing the real game: the actor network chooses every action, System 2 (the planner
backend in the config; offline by default) sets the goals. Nothing here calls the scripted expert or
its GoalController: the planner judges its goals from the state dict alone (`GoalProgress`).
"""

import statistics
import time

import numpy as np
import tqdm

from dreamer_jax.agent import train as agent_train
from dreamer_jax.agent.policy import Policy
from dreamer_jax.envs import gb_env
from dreamer_jax.planner import offline

FLOOR = 'random'
RED_BADGES = 8            # Pokémon Red's badges: a game without world data ends an episode at 8.


class _Tally:
  """One episode's figures as it is played."""

  def __init__(self, state):
    self.steps, self.ret, self.badge_steps = 0, 0.0, []
    self.maps, self.badges, self.state = {state['map_id']}, state['badges'], state
    self.target_step = self.target_return = None

  def add(self, reward, state, finished=False):
    """One step's reward and state; `finished`: the episode's target (every badge and the species
    asked for) is held after this step."""
    self.steps += 1
    self.ret += reward
    self.state = state
    if finished and self.target_step is None:
      self.target_step, self.target_return = self.steps, self.ret
    self.maps.add(state['map_id'])
    if state['badges'] > self.badges:
      self.badge_steps += [self.steps] * (state['badges'] - self.badges)
      self.badges = state['badges']

  def result(self):
    return dict(badges=self.badges, species_owned=self.state['pokedex_owned'],
                maps_visited=len(self.maps), steps=self.steps, episode_return=round(self.ret, 3),
                steps_to_badges=self.badge_steps, steps_to_target=self.target_step,
                return_at_target=None if self.target_return is None else round(
                    self.target_return, 3))


def _episode(env, planner, act, max_steps, bar, all_badges, min_species=0, fixed_length=False):
  obs, info = env.reset()
  tally = _Tally(info['state'])
  for step in range(1, max_steps + 1):
    plan = planner.poll(info['state'], obs['frame'])
    obs, reward, _, truncated, info = env.step(act(obs, plan.goal_spec, step == 1))
    finished = offline.finished(info['state'], all_badges, min_species)
    tally.add(reward, info['state'], finished)
    bar.update()
    if truncated or (finished and not fixed_length):
      break
  return tally.result()


def _rules(config, game):
  """(world, map names, badges and species that end an episode) for `game` (see `play`)."""
  from dreamer_jax.planner import async_planner  # pylint: disable=g-import-not-at-top
  world, names = async_planner.game_world(game)
  if world is None:
    return world, names, RED_BADGES, 0
  return world, names, len(world.gyms), int(config.planner.get('min_species', 0))


def emulators(episodes, workers=1):
  """How many games `play` runs at once: `workers` (0: one per core, as config.collector's
  num_workers), at most `episodes`."""
  from dreamer_jax.envs import collector as collector_lib  # pylint: disable=g-import-not-at-top
  return max(1, min(collector_lib.resolve_workers(workers), int(episodes)))


def play(config, act_fn, episodes, max_steps, state_path=None, desc='agent', progress=True,
         workers=1, fixed_length=False):
  """Plays `episodes` episodes of the config's game with the config's planner, each from the start
  state (or `state_path`). Returns the episode dicts, in the order the episodes began.

  With `workers` = 1 the games run one after another in this process and `act_fn(obs, goal_spec,
  first) -> action` acts in one. With more (see `emulators`), that many games run at once in
  worker processes (the collector's), each with its own planner, and `act_fn(obs, goal_specs,
  first) -> actions [N]` acts in all N at once (obs: the collector's batch; first: bool [N], the
  games whose episode just began), so one batched network call serves N games; a game whose episode
  is over starts the next episode still to play. The figures depend on the seed and on N.

  An episode ends at `max_steps` or with every badge: tinymon's gyms (world data) and
  config.planner.min_species species (the offline planner's plan), or Pokémon Red's 8 badges (no
  world data: System 2 checks goals against the game's map names and explores by default).
  With `fixed_length` every episode plays all `max_steps` steps (the target ends none), so the
  returns of different policies cover the same number of steps; each episode's `steps_to_target`
  and `return_at_target` say when it first held the target (None: never) and what it had earned.
  """
  from dreamer_jax.planner import async_planner  # pylint: disable=g-import-not-at-top
  n = emulators(episodes, workers)
  if n > 1:
    return _play_parallel(config, act_fn, episodes, max_steps, state_path, desc, progress, n,
                          fixed_length)
  env = gb_env.GameBoyEnv.from_config(config.env, config.reward, max_episode_steps=max_steps,
                                      state_path=state_path or config.env.state_path or None)
  world, names, all_badges, min_species = _rules(config, env.game.name)
  out = []
  bar = tqdm.tqdm(total=episodes * max_steps, desc=desc, unit='step', disable=not progress,
                  mininterval=1.0)
  try:
    for _ in range(episodes):
      planner = async_planner.build_planner(config.planner, world, asynchronous=False,
                                            map_names=names)
      try:
        out.append(_episode(env, planner, act_fn, max_steps, bar, all_badges, min_species,
                            fixed_length))
      finally:
        planner.close()
  finally:
    bar.close()
    env.close()
  return out


def _play_parallel(config, act_fn, episodes, max_steps, state_path, desc, progress, n,
                   fixed_length=False):
  """`play` with n games at once in the collector's worker processes."""
  from dreamer_jax.envs import collector as collector_lib  # pylint: disable=g-import-not-at-top
  from dreamer_jax.planner import async_planner  # pylint: disable=g-import-not-at-top
  env_config = dict(config.env, max_episode_steps=int(max_steps),
                    state_path=state_path or config.env.state_path or '')
  world, names, all_badges, min_species = _rules(config, config.env.game)
  new_planner = lambda: async_planner.build_planner(config.planner, world, asynchronous=False,
                                                    map_names=names)
  idle = {'kind': 'explore', 'map': None, 'x': None, 'y': None}
  out = [None] * episodes
  bar = tqdm.tqdm(total=episodes * max_steps, desc=f'{desc} ({n} games at once)', unit='step',
                  disable=not progress, mininterval=1.0)
  games = collector_lib.Collector(collector_lib.env_factory(env_config, config.reward), n,
                                  replay=None, save_every=2**31 - 1, seed=int(config.seed))
  planners = [new_planner() for _ in range(n)]
  try:
    episode = list(range(n))        # The episode each game plays; None once there is none left.
    begun = n
    tallies = [_Tally(c['info']['state']) for c in games.current()]
    first = np.ones((n,), bool)
    while any(e is not None for e in episode):
      obs, current = games.observation(), games.current()
      specs = [planners[i].poll(c['info']['state'], c['frame']).goal_spec
               if episode[i] is not None else idle for i, c in enumerate(current)]
      actions = np.asarray(act_fn(obs, specs, first))
      first[:] = False
      games.step(actions)
      restart = []
      for i, c in enumerate(games.current()):
        if episode[i] is None:
          continue
        finished = offline.finished(c['info']['state'], all_badges, min_species)
        tallies[i].add(c['reward'], c['info']['state'], finished)
        bar.update()
        if not (c['is_last'] or (finished and not fixed_length)):
          continue
        out[episode[i]] = tallies[i].result()
        planners[i].close()
        episode[i] = begun if begun < episodes else None
        if episode[i] is not None:
          begun += 1
          planners[i] = new_planner()
          restart.append(i)
      if restart:
        games.reset(restart)
        current = games.current()
        for i in restart:
          tallies[i] = _Tally(current[i]['info']['state'])
          first[i] = True
  finally:
    bar.close()
    for planner in planners:
      planner.close()
    games.close()
  return out


_MENU_ITEMS = ('FIGHT', 'BALL', 'RUN', 'item 3+')


class MenuTally:
  """Counts what an act_fn does at the battle menu of a wild battle against a species not owned
  (the moment a catch is won or lost): `wrap(act_fn)` counts every such call, by badges held, the
  goal's kind, whether the lead out-levels the wild mon by 20 or more, the menu item under the
  cursor and the action taken. `counts()` -> [[count, description], ...], the most frequent first
  (a list, so that a JSON printed with sorted keys keeps that order)."""

  def __init__(self):
    from dreamer_jax.envs import features  # pylint: disable=g-import-not-at-top
    names = {n: i for i, n in enumerate(features.RAM_FEATURE_NAMES)}
    self._i = names
    self._badges = [names[f'badge_{b}'] for b in range(8)]
    self._cursor = names['menu_cursor_0']
    self._counts = {}

  def _add(self, ram, spec, action):
    from dreamer_jax.envs import emulator  # pylint: disable=g-import-not-at-top
    i = self._i
    if not (ram[i['battle_wild']] > 0 and ram[i['enemy_new']] > 0 and ram[i['battle_menu']] > 0):
      return
    margin = round(float(ram[i['level_0']]) * 100) - round(float(ram[i['enemy_level']]) * 100)
    item = _MENU_ITEMS[int(np.argmax(ram[self._cursor:self._cursor + 4]))]
    key = (f'{int(sum(ram[b] > 0 for b in self._badges))} badges, goal {spec["kind"]}, lead '
           f'{">=" if margin >= 20 else "<"} wild+20 levels, cursor on {item}: '
           f'{emulator.ACTIONS[int(action)]}')
    self._counts[key] = self._counts.get(key, 0) + 1

  def wrap(self, act_fn):
    def act(obs, spec, first):
      action = act_fn(obs, spec, first)
      ram = np.asarray(obs['ram'])
      if ram.ndim == 1:
        self._add(ram, spec, action)
      else:   # Games at once: one row each.
        for row, goal, a in zip(ram, spec, np.asarray(action)):
          self._add(row, goal, a)
      return action
    return act

  def counts(self):
    return [[n, key] for key, n in sorted(self._counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def random_act_fn(seed=0, batch_size=1):
  """`play`'s act_fn for the uniform-random floor (batched when batch_size > 1)."""
  rng = np.random.default_rng(seed)
  if batch_size == 1:
    return lambda obs, goal_spec, first: int(rng.integers(8))
  return lambda obs, goal_specs, first: rng.integers(8, size=len(goal_specs))


def summary(episodes):
  """The seed's target metrics over episodes: medians of badges and species, mean return; how many
  episodes held the target (every badge and the species asked for) and the median steps they took."""
  reached = [e['steps_to_target'] for e in episodes if e.get('steps_to_target') is not None]
  return dict(badges=statistics.median(e['badges'] for e in episodes),
              species_owned=statistics.median(e['species_owned'] for e in episodes),
              mean_return=round(float(np.mean([e['episode_return'] for e in episodes])), 3),
              reached_target=len(reached),
              steps_to_target=statistics.median(reached) if reached else None,
              episodes=episodes)


def actor_act_fn(wm, wm_params, actor, actor_params, goal_dim, map_names, greedy=False, seed=0,
                 timing=None, frames=None, batch_size=1):
  """`play`'s act_fn for an actor network: a Policy reset at each episode's first step.

  timing: optional {'calls': -1, 'seconds': 0.0}, accumulating the policy's time per call (the first
  call compiles and is not counted). frames: optional (list, limit): observed frames (game 0's) are
  appended while the list is shorter than the limit (for a GIF). batch_size: the games `play` runs
  at once (`emulators`); above 1 the act_fn is the batched one.
  """
  policy = Policy(wm, wm_params, actor, actor_params, goal_dim, map_names, greedy=greedy,
                  seed=seed, batch_size=batch_size)

  def act(obs, goal_spec, first):
    """One game (goal_spec a dict, first a bool) or, batch_size > 1, all (lists and arrays)."""
    if batch_size > 1:
      policy.is_first = policy.is_first | np.asarray(first, bool)   # Those games' carries restart.
    elif first:
      policy.reset()
    if frames is not None and len(frames[0]) < frames[1]:
      frames[0].append(np.asarray(obs['frame'][0] if batch_size > 1 else obs['frame']))
    began = time.perf_counter()
    action = policy(obs['frame'], obs['ram'], goal_spec)
    if timing is not None:
      timing['calls'] += 1
      if timing['calls'] > 0:
        timing['seconds'] += time.perf_counter() - began
    return action
  return act


def heldout_accuracy(workdir, replay_dir, batches=16, seed=0):
  """Action accuracy of the actor (and of the BC clone, if frozen) on a labelled replay's steps
  that training did not see -> {'actor': float, 'bc': float or absent, 'steps': labelled steps}."""
  import jax  # pylint: disable=g-import-not-at-top
  from dreamer_jax.agent import learner  # pylint: disable=g-import-not-at-top
  from dreamer_jax.envs.replay import Replay  # pylint: disable=g-import-not-at-top
  config, wm, wm_params, actor, _ = agent_train.load_agent(workdir)
  _, _, state = agent_train.load_agent_state(workdir, wm)
  replay = Replay(replay_dir)
  replay.require_labels()
  ac = config.agent
  evaluate = learner.make_bc_eval(wm, actor, ac)
  rng = np.random.default_rng(seed)
  scores = {'actor': [], 'bc': []}
  for i in range(batches):
    batch = agent_train.agent_batch(replay.sample(int(ac.batch_size), int(ac.sequence_length), rng))
    key = jax.random.PRNGKey(i)
    scores['actor'].append(float(evaluate(state, wm_params, batch, key)['bc_accuracy']))
    if agent_train.has_clone(state):
      scores['bc'].append(float(evaluate(dict(state, actor=state['clone']), wm_params, batch,
                                         key)['bc_accuracy']))
  return dict({k: round(float(np.mean(v)), 4) for k, v in scores.items() if v},
              steps=int(replay.labelled_steps()), replay=replay_dir)


def run(workdir, episodes=3, max_steps=20000, state_path=None, greedy=False, seed=0,
        progress=True, clone=True, workers=1, menu_stats=False, fixed_length=False):
  """Evaluates `workdir`'s agent (world model + actor) and a uniform-random floor on the real game.

  Returns:
    dict: the agent's summary at the top level (badges, species_owned, mean_return, episodes), the
    floor's under 'random', policy_hz (the actor loop's measured steps per second), and under 'bc'
    the frozen behaviour-cloning actor's summary where imagination training has begun (`clone`).
    With `menu_stats`, each policy's summary has 'new_species_menu': `MenuTally.counts()`.
    With `fixed_length`, every episode of every policy plays all `max_steps` steps (see `play`).
  """
  config, wm, wm_params, actor, actor_params = agent_train.load_agent(workdir)
  from dreamer_jax.planner import async_planner  # pylint: disable=g-import-not-at-top
  _, names = async_planner.game_world(config.env.game)
  timing = dict(calls=-1, seconds=0.0)   # Call -1 (the first) compiles: not a step's cost.
  n = emulators(episodes, workers)

  actor_fn = lambda params, timed: actor_act_fn(wm, wm_params, actor, params,
                                                int(config.agent.goal_dim), names, greedy, seed,
                                                timing if timed else None, batch_size=n)

  def games(act, desc):
    tally = MenuTally() if menu_stats else None
    out = summary(play(config, act if tally is None else tally.wrap(act), episodes, max_steps,
                       state_path, desc, progress, n, fixed_length))
    if tally is not None:
      out['new_species_menu'] = tally.counts()
    return out

  began = time.time()
  agent = games(actor_fn(actor_params, True), 'agent')
  if clone:
    _, _, state = agent_train.load_agent_state(workdir, wm)
    if agent_train.has_clone(state):
      agent['bc'] = games(actor_fn(state['clone'], False), 'bc clone')
  floor = games(random_act_fn(seed, n), 'random')
  # policy_hz: network calls per second, each acting in all n games at once.
  return dict(agent, random=floor, policy_hz=round(max(timing['calls'], 0) / max(timing['seconds'], 1e-9), 1),
              games_at_once=n, wall_seconds=round(time.time() - began, 1), workdir=workdir)

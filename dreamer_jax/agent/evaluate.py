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


def _episode(env, planner, act, max_steps, bar, all_badges, min_species=0):
  obs, info = env.reset()
  state, frame = info['state'], obs['frame']
  steps, ret, badge_steps, maps = 0, 0.0, [], {state['map_id']}
  badges = state['badges']
  for steps in range(1, max_steps + 1):
    plan = planner.poll(state, frame)
    obs, reward, _, truncated, info = env.step(act(obs, plan.goal_spec, steps == 1))
    state, frame = info['state'], obs['frame']
    ret += reward
    maps.add(state['map_id'])
    if state['badges'] > badges:
      badge_steps += [steps] * (state['badges'] - badges)
      badges = state['badges']
    bar.update()
    if truncated or offline.finished(state, all_badges, min_species):
      break
  return dict(badges=badges, species_owned=state['pokedex_owned'], maps_visited=len(maps),
              steps=steps, episode_return=round(ret, 3), steps_to_badges=badge_steps)


def play(config, act_fn, episodes, max_steps, state_path=None, desc='agent', progress=True):
  """Plays `episodes` episodes of the config's game with `act_fn(obs, goal_spec, first) -> action`
  and the config's planner; each from the start state (or `state_path`). Returns the episode dicts.

  An episode ends at `max_steps` or with every badge: tinymon's gyms (world data) and
  config.planner.min_species species (the offline planner's plan), or Pokémon Red's 8 badges (no
  world data: System 2 checks goals against the game's map names and explores by default).
  """
  from dreamer_jax.planner import async_planner  # pylint: disable=g-import-not-at-top
  env = gb_env.GameBoyEnv.from_config(config.env, config.reward, max_episode_steps=max_steps,
                                      state_path=state_path or config.env.state_path or None)
  world, names = async_planner.game_world(env.game.name)
  all_badges = len(world.gyms) if world is not None else RED_BADGES
  min_species = int(config.planner.get('min_species', 0)) if world is not None else 0
  out = []
  bar = tqdm.tqdm(total=episodes * max_steps, desc=desc, unit='step', disable=not progress,
                  mininterval=1.0)
  try:
    for _ in range(episodes):
      planner = async_planner.build_planner(config.planner, world, asynchronous=False,
                                            map_names=names)
      try:
        out.append(_episode(env, planner, act_fn, max_steps, bar, all_badges, min_species))
      finally:
        planner.close()
  finally:
    bar.close()
    env.close()
  return out


def summary(episodes):
  """The seed's target metrics over episodes: medians of badges and species, mean return."""
  return dict(badges=statistics.median(e['badges'] for e in episodes),
              species_owned=statistics.median(e['species_owned'] for e in episodes),
              mean_return=round(float(np.mean([e['episode_return'] for e in episodes])), 3),
              episodes=episodes)


def actor_act_fn(wm, wm_params, actor, actor_params, goal_dim, map_names, greedy=False, seed=0,
                 timing=None, frames=None):
  """`play`'s act_fn for an actor network: a Policy reset at each episode's first step.

  timing: optional {'calls': -1, 'seconds': 0.0}, accumulating the policy's time per call (the first
  call compiles and is not counted). frames: optional (list, limit): observed frames are appended
  while the list is shorter than the limit (for a GIF).
  """
  policy = Policy(wm, wm_params, actor, actor_params, goal_dim, map_names, greedy=greedy,
                  seed=seed)

  def act(obs, goal_spec, first):
    if first:
      policy.reset()
    if frames is not None and len(frames[0]) < frames[1]:
      frames[0].append(np.asarray(obs['frame']))
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
        progress=True, clone=True):
  """Evaluates `workdir`'s agent (world model + actor) and a uniform-random floor on the real game.

  Returns:
    dict: the agent's summary at the top level (badges, species_owned, mean_return, episodes), the
    floor's under 'random', policy_hz (the actor loop's measured steps per second), and under 'bc'
    the frozen behaviour-cloning actor's summary where imagination training has begun (`clone`).
  """
  config, wm, wm_params, actor, actor_params = agent_train.load_agent(workdir)
  from dreamer_jax.planner import async_planner  # pylint: disable=g-import-not-at-top
  _, names = async_planner.game_world(config.env.game)
  timing = dict(calls=-1, seconds=0.0)   # Call -1 (the first) compiles: not a step's cost.

  actor_fn = lambda params, timed: actor_act_fn(wm, wm_params, actor, params,
                                                int(config.agent.goal_dim), names, greedy, seed,
                                                timing if timed else None)

  began = time.time()
  agent = summary(play(config, actor_fn(actor_params, True), episodes, max_steps, state_path,
                       'agent', progress))
  if clone:
    _, _, state = agent_train.load_agent_state(workdir, wm)
    if agent_train.has_clone(state):
      agent['bc'] = summary(play(config, actor_fn(state['clone'], False), episodes, max_steps,
                                 state_path, 'bc clone', progress))
  rng = np.random.default_rng(seed)
  floor = summary(play(config, lambda o, g, f: int(rng.integers(8)), episodes, max_steps,
                       state_path, 'random', progress))
  return dict(agent, random=floor, policy_hz=round(max(timing['calls'], 0) / max(timing['seconds'], 1e-9), 1),
              wall_seconds=round(time.time() - began, 1), workdir=workdir)

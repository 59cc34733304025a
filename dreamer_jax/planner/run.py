"""System 2 outside training: one plan for the current screen, and the planner driving the scripted
expert's goal controller through tinymon (evidence that the planner's goals are the right ones).
"""

import collections
import time

from tqdm import tqdm

from dreamer_jax.envs import emulator as emulator_lib
from dreamer_jax.tinymon import expert
from dreamer_jax.envs import gb_env
from dreamer_jax.tinymon import world as tinymon_world
from dreamer_jax.errors import UserError
from dreamer_jax.planner import async_planner
from dreamer_jax.planner import offline


def _tinymon_env(config, rom_path, state_path, max_episode_steps=None):
  """The tinymon environment from the config, with the ROM and state overridden when given."""
  overrides = dict(game='tinymon', rom_path=rom_path or config.env.rom_path or None,
                   state_path=state_path or config.env.state_path or None)
  if max_episode_steps is not None:
    overrides['max_episode_steps'] = max_episode_steps
  env = gb_env.GameBoyEnv.from_config(config.env, config.reward, **overrides)
  if env.game.name != 'tinymon':
    env.close()
    raise UserError(f'the planner has world data for tinymon only, but {rom_path!r} is a '
                    f'{env.game.name} ROM; expected a tinymon ROM.')
  return env


def plan_screen(config, rom_path=None, state_path=None, backend=None, steps=0):
  """Boots the game, waits `steps` no-op steps and returns the planner's output for that screen.

  Args:
    config: the full config (env, reward and planner sections are read).
    rom_path: a tinymon ROM; None = config.env.rom_path or the committed ROM.
    state_path: a start state file; None = the game's default start.
    backend: overrides config.planner.backend.
    steps: no-op agent steps before planning.
  Returns:
    {"goal", "goal_spec", "goal_embedding", "rationale"}.
  """
  # The planner first: a missing key or a bad setting fails before the emulator starts.
  planner = async_planner.build_planner(config.planner, tinymon_world.load_world(), backend,
                                        asynchronous=False)
  env = None
  try:
    env = _tinymon_env(config, rom_path, state_path)
    obs, info = env.reset()
    for _ in range(steps):
      obs, _, _, _, info = env.step(emulator_lib.NOOP)
    return planner.plan_now(info['state'], obs['frame']).to_json()
  finally:
    planner.close()
    if env is not None:
      env.close()


def play(config, max_steps=20000, rom_path=None, state_path=None, backend='offline', badges=3,
         progress=True):
  """Plays with the planner as System 2 and the expert's GoalController as System 1.

  Each step: state -> planner.poll (judging the goal done with GoalController.done) -> goal_spec ->
  GoalController.act -> env.step, until `badges` badges and config.planner.min_species species, or
  `max_steps` steps.

  Returns:
    {"badges", "steps", "won", "seconds", "goals" (how many were set), "goal_kinds" {kind: count},
     "species_owned", "party_levels", "map_id", "last_goal"}.
  """
  world = tinymon_world.load_world()
  min_species = int(config.planner.get('min_species', 0))
  planner = async_planner.build_planner(config.planner, world, backend, asynchronous=True)
  controller = expert.GoalController(world)
  kinds = collections.Counter()
  start = time.perf_counter()
  steps = 0
  env = None
  try:
    env = _tinymon_env(config, rom_path, state_path, max_episode_steps=max_steps)
    obs, info = env.reset()
    state = info['state']
    memory = env.emulator.memory
    plan, goal_count = None, 0
    bar = tqdm(total=max_steps, desc='plan+expert', disable=not progress, mininterval=1.0)
    while steps < max_steps and not offline.finished(state, badges, min_species):
      done = controller.done(memory, plan.goal_spec) if plan is not None else None
      plan = planner.poll(state, obs['frame'], goal_done=done)
      if planner.goal_count != goal_count:
        goal_count = planner.goal_count
        kinds[plan.goal_spec['kind']] += 1
        # The controller keeps per-goal progress by goal_spec; a reached goal set again starts anew.
        controller.reset()
      obs, _, _, _, info = env.step(controller.act(memory, plan.goal_spec))
      state = info['state']
      steps += 1
      bar.update(1)
      if steps % 1000 == 0:
        bar.set_postfix(badges=state['badges'], goal=plan.goal_spec['kind'])
    bar.close()
  finally:
    planner.close()
    if env is not None:
      env.close()
  return {
      'badges': state['badges'], 'steps': steps,
      'won': offline.finished(state, badges, min_species),
      'seconds': round(time.perf_counter() - start, 2), 'goals': goal_count,
      'goal_kinds': dict(kinds), 'species_owned': state['pokedex_owned'],
      'party_levels': state['party_levels'], 'map_id': state['map_id'],
      'last_goal': plan.goal if plan is not None else '',
  }

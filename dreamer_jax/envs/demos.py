"""Demonstrations in the replay format: the scripted expert, a person at a PyBoy window, or random.

Every demonstration step is a `GameBoyEnv` step, so the frames, RAM features, rewards and episode
flags mean exactly what they mean in the agent's replay, and `replay.Replay(out).episodes()` reads
them back for behaviour cloning.

A human plays in a PyBoy SDL2 window at real-time speed: the keyboard drives the game directly
(arrows, A = a, B = s, START = Enter, PyBoy's keys), while the environment advances in its usual
24-frame steps with no button of its own. The action recorded for a step is the button held for the
most frames during it (read through the joypad register each frame), no-op if none or only SELECT
(not one of the 8 actions): the player's buttons sampled at the env's step rate. That action is also
the step's `expert_action` label (the person is the expert cloned), with the goal Pokémon Red's
offline System 2 would set ('battle' in a battle, else 'explore'). Closing the window
ends the recording; what was played is kept.
"""

import io
import warnings

import numpy as np
import tqdm

from dreamer_jax.envs import emulator as emulator_lib
from dreamer_jax.envs import features
from dreamer_jax.envs import gb_env
from dreamer_jax.envs import replay as replay_lib
from dreamer_jax.errors import UserError

POLICIES = ('expert', 'explore', 'planner', 'human', 'random')
_JOYPAD = 0xFF00          # P1: write 0x20 to read the directions, 0x10 for the buttons (0 = held).
_SELECT_DIRECTIONS, _SELECT_BUTTONS = 0x20, 0x10


def held_buttons(memory):
  """Which of the 7 action buttons (down, left, right, up, A, B, START) are held: bool [7].

  Reads the joypad register the way a game does, then restores it, so the game sees no difference.
  """
  saved = memory[_JOYPAD]
  memory[_JOYPAD] = _SELECT_DIRECTIONS
  directions = ~memory[_JOYPAD] & 0xF   # Bits: right, left, up, down.
  memory[_JOYPAD] = _SELECT_BUTTONS
  buttons = ~memory[_JOYPAD] & 0xF      # Bits: A, B, SELECT, START.
  memory[_JOYPAD] = saved
  return np.array([directions >> 3 & 1, directions >> 1 & 1, directions & 1, directions >> 2 & 1,
                   buttons & 1, buttons >> 1 & 1, buttons >> 3 & 1], bool)


class HumanPyBoy:
  """Stands in for the environment's headless PyBoy with one a person plays.

  Each `tick(count)` runs frame by frame (PyBoy paces real time per call, and the window should
  show every frame) and counts, per button, the frames it was held.
  """

  def __init__(self, pyboy):
    self._pyboy = pyboy
    self.held_frames = np.zeros(len(emulator_lib.ACTIONS) - 1, np.int64)
    self.quit = False

  def tick(self, count=1, render=True, sound=True):
    del render  # The window shows every frame.
    for _ in range(count):
      if self.quit or not self._pyboy.tick(1, True, sound):
        self.quit = True
        return False
      self.held_frames += held_buttons(self._pyboy.memory)
    return True

  def take_action(self):
    """The step's action: the button held longest (first on a tie), else no-op; resets the count."""
    held, self.held_frames = self.held_frames, np.zeros_like(self.held_frames)
    return int(np.argmax(held)) if held.any() else emulator_lib.NOOP

  def __getattr__(self, name):
    return getattr(self._pyboy, name)


def open_window(rom):
  """A PyBoy SDL2 window on `rom` (a `rom.RomInfo`) at real-time speed with keyboard input."""
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    from pyboy import PyBoy  # pylint: disable=g-import-not-at-top
    try:
      pyboy = PyBoy(io.BytesIO(rom.data), window='SDL2', sound_emulated=False, log_level='ERROR',
                    cgb=False)
    except Exception as e:  # SDL2 raises assorted errors without a display.
      raise UserError(f'could not open a PyBoy window ({type(e).__name__}: {e}); --policy human '
                      'needs a desktop session (a display).') from None
  pyboy.set_emulation_speed(1)
  return pyboy


def attach_human(env, pyboy):
  """Makes `env` step the game in `pyboy` (a person's window) instead of its headless emulator."""
  emulator = env.emulator
  emulator.pyboy.stop(save=False)
  pyboy.set_color_palette(emulator_lib.PALETTE)  # The env reads shades from the palette's red byte.
  emulator.pyboy = HumanPyBoy(pyboy)
  emulator.memory = pyboy.memory
  return emulator.pyboy


_BATTLE_WILD = features.RAM_FEATURE_NAMES.index('battle_wild')
_BATTLE_TRAINER = features.RAM_FEATURE_NAMES.index('battle_trainer')


def goal_fields(goal_spec, map_ids):
  """A goal_spec -> the replay's goal row (kind index, map id, x, y; −1 where absent)."""
  from dreamer_jax.planner.goals import GOAL_KINDS  # pylint: disable=g-import-not-at-top
  if goal_spec is None:
    return (-1, -1, -1, -1)
  name, x, y = goal_spec.get('map'), goal_spec.get('x'), goal_spec.get('y')
  return (GOAL_KINDS.index(goal_spec['kind']), -1 if name is None else map_ids[name],
          -1 if x is None else x, -1 if y is None else y)


class _Player:
  """Who plays: `play(obs)` chooses and takes one step's action and returns (action, the 5 results
  of env.step); `episode_over()` may end an episode early; `quit` ends the recording. Players
  that know what an expert would do set `label` (that action) and `goal` (the goal row) per step."""

  quit = False
  label = -1
  goal = (-1, -1, -1, -1)

  def begin_episode(self):
    pass

  def episode_over(self):
    return False


class _RandomPlayer(_Player):
  """Uniform random actions."""

  def __init__(self, env, seed):
    self._env, self._rng = env, np.random.default_rng(seed)

  def play(self, obs):
    del obs
    action = int(self._rng.integers(self._env.action_space.n))
    return action, self._env.step(action)


class _ExpertPlayer(_Player):
  """tinymon's scripted expert, fresh each episode; an episode ends when the expert has won.

  Episode i plays with expert seed `seed + i`: another deterministic playthrough each episode, so
  the demonstrations vary. With `epsilon` > 0 ('explore'), each step's action is replaced by a
  uniform random one with that probability: the expert still makes progress through the whole game
  (it re-reads the RAM every step), while the random steps bump into walls, open menus and wander
  off its paths, which is the coverage a world model needs beyond the expert's own routes.
  """

  def __init__(self, env, seed, epsilon=0.0):
    if env.game.name != 'tinymon':
      raise UserError(f'--policy expert, explore and planner play tinymon only, but the ROM is {env.game.name}; use '
                      '--policy human to record this game.')
    try:
      from dreamer_jax.tinymon import expert  # pylint: disable=g-import-not-at-top
      from dreamer_jax.tinymon import world as tinymon_world  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise UserError(f'the scripted expert is not available in this checkout ({e}); use --policy '
                      'random or human.') from None
    self._env, self._world, self._seed = env, tinymon_world.load_world(), seed
    self._expert_class = expert.ScriptedExpert
    self._expert = None
    self._epsilon, self._rng = epsilon, np.random.default_rng(seed)
    self._map_ids = {name: i for i, name in self._world.map_names.items()}

  def begin_episode(self):
    self._expert = self._expert_class(self._world, seed=self._seed)
    self._seed += 1

  def choose(self, obs):
    """The expert's action for this step and the goal it pursues."""
    del obs
    action = self._expert.act(self._env.emulator.memory)
    return action, self._expert.current_goal

  def play(self, obs):
    # Noise-injected imitation (DART): the executed action is sometimes random, the label never.
    self.label, goal_spec = self.choose(obs)
    self.goal = goal_fields(goal_spec, self._map_ids)
    action = self.label
    if self._epsilon and self._rng.random() < self._epsilon:
      action = int(self._rng.integers(self._env.action_space.n))
    return action, self._env.step(action)

  def episode_over(self):
    return self._expert.won(self._env.emulator.memory)


class _PlannerPlayer(_ExpertPlayer):
  """System 2 (the planner backend in `planner_config`, offline by default) setting goals for the
  expert's GoalController, as `experiments.plan --mode play` runs; the episode ends at 3 badges
  with planner_config.min_species species (the offline planner's plan done)."""

  def __init__(self, env, seed, epsilon, planner_config, badges=3, skip_catch=0.0):
    super().__init__(env, seed, epsilon)
    from dreamer_jax.planner import async_planner  # pylint: disable=g-import-not-at-top
    from dreamer_jax.tinymon import controller  # pylint: disable=g-import-not-at-top
    self._build = lambda: async_planner.build_planner(planner_config, self._world,
                                                      asynchronous=False)
    self._controller = controller.GoalController(self._world,
                                                 skip_catch=skip_catch, seed=seed)
    self._planner, self._plan, self._goal_count, self._badges = None, None, 0, badges
    self._min_species = int(planner_config.get('min_species', 0))

  def begin_episode(self):
    if self._planner is not None:
      self._planner.close()
    self._planner, self._plan, self._goal_count = self._build(), None, 0
    self._controller.new_episode()
    self._controller.reset()

  def choose(self, obs):
    memory = self._env.emulator.memory
    done = self._controller.done(memory, self._plan.goal_spec) if self._plan is not None else None
    self._plan = self._planner.poll(self._env.state(), obs['frame'], goal_done=done)
    if self._planner.goal_count != self._goal_count:
      self._goal_count = self._planner.goal_count
      self._controller.reset()   # Progress is kept per goal; a goal set again starts anew.
    return self._controller.act(memory, self._plan.goal_spec), self._plan.goal_spec

  def episode_over(self):
    from dreamer_jax.planner import offline  # pylint: disable=g-import-not-at-top
    return offline.finished(self._env.state(), self._badges, self._min_species)

  def close(self):
    if self._planner is not None:
      self._planner.close()


class _HumanPlayer(_Player):
  """A person at a PyBoy window; closing it ends the episode and the recording. The button they
  held is both the step's action and its `expert_action` label (behaviour cloning copies them).
  Each step's goal is the one System 2 sets on a game without world data (`ExplorePlanner`):
  'battle' while a battle is on, else 'explore'; behaviour cloning skips steps without a goal."""

  def __init__(self, env):
    self._env, self._human = env, attach_human(env, open_window(env.rom))

  @property
  def quit(self):
    return self._human.quit

  def play(self, obs):
    ram = obs['ram']
    in_battle = ram[_BATTLE_WILD] > 0.5 or ram[_BATTLE_TRAINER] > 0.5
    self.goal = goal_fields({'kind': 'battle' if in_battle else 'explore'}, {})
    result = self._env.step(emulator_lib.NOOP)
    self.label = self._human.take_action()
    return self.label, result

  def episode_over(self):
    return self._human.quit


def _step_record(obs, reward, terms, is_first, terminated, truncated):
  return dict(frame=obs['frame'], ram=obs['ram'], reward=reward, reward_terms=terms,
              is_first=is_first, is_terminal=terminated, is_last=terminated or truncated)


def record(policy, episodes, out, env_config=None, reward_config=None, max_steps=None, seed=0,
           chunk_size=256, progress=True, epsilon=0.25, capacity=None,
           planner_config=None, skip_catch=0.0):
  """Plays `episodes` episodes with `policy` and appends them to the replay in `out`.

  Args:
    policy: 'expert', 'explore' (the expert with random actions), 'planner', 'human' (labelled
      with the person's own buttons) or 'random'.
    episodes: how many episodes.
    out: the replay directory (created, or appended to).
    env_config, reward_config: `config.env` and `config.reward` (None: GameBoyEnv's defaults).
    max_steps: steps per episode (truncation); None keeps the env's max_episode_steps.
    seed: the random policy's seed; the expert's first episode seed (then seed + 1, ...).
    chunk_size: steps per replay chunk.
    capacity: the most steps the replay keeps (`config.replay.capacity`): beyond it its oldest
      chunks are evicted; None keeps everything.
    progress: show a tqdm bar over steps.
    epsilon: 'explore' and 'planner': the chance that a step's executed action is uniform random
      instead (the expert's own choice is still stored as the step's `expert_action` label).
    planner_config: 'planner' only: `config.planner` (its backend sets the goals).
    skip_catch: 'planner' only: the share of species, drawn anew each episode, that the controller
      catches under 'catch' goals alone (see `tinymon.controller.GoalController`).

  Returns:
    dict: episodes (finished), steps (written by this call, evicted ones included), directory.
  """
  if policy not in POLICIES:
    raise UserError(f'--policy {policy!r} is not one of {", ".join(POLICIES)}.')
  if not 0.0 <= epsilon <= 1.0:
    raise UserError(f'--epsilon is {epsilon}; expected a probability in [0, 1].')
  if not 0.0 <= skip_catch <= 1.0:
    raise UserError(f'config.dreamer.demo_skip_catch is {skip_catch}; expected a share in [0, 1].')
  if episodes < 1 or (max_steps is not None and max_steps < 1):
    raise UserError(f'--episodes ({episodes}) and --max_steps ({max_steps}) must be positive.')
  overrides = {} if max_steps is None else {'max_episode_steps': max_steps}
  if env_config is None:
    env = gb_env.GameBoyEnv(**overrides)
  else:
    env = gb_env.GameBoyEnv.from_config(env_config, reward_config, **overrides)
  replay = replay_lib.Replay(out, capacity=capacity, chunk_size=chunk_size)
  if policy == 'human':
    player = _HumanPlayer(env)
  elif policy == 'planner':
    if planner_config is None:
      raise ValueError("policy 'planner' needs planner_config (the config's planner section).")
    player = _PlannerPlayer(env, seed, epsilon, planner_config,
                            skip_catch=skip_catch)
  elif policy in ('expert', 'explore'):
    player = _ExpertPlayer(env, seed, epsilon if policy == 'explore' else 0.0)
  else:
    player = _RandomPlayer(env, seed)
  written, finished = 0, 0
  bar = tqdm.tqdm(total=episodes * env.max_episode_steps, unit='step', disable=not progress,
                  desc=f'{policy} demos')
  try:
    for _ in range(episodes):
      player.begin_episode()
      obs, info = env.reset()
      step = _step_record(obs, 0.0, info['reward_terms'], True, False, False)
      while not step['is_last']:
        action, (obs, reward, terminated, truncated, info) = player.play(obs)
        replay.add(dict(step, action=action, expert_action=player.label, goal=player.goal))
        written += 1
        bar.update()
        step = _step_record(obs, reward, info['reward_terms'], False, terminated,
                            truncated or player.episode_over())
      replay.add(dict(step, action=emulator_lib.NOOP))  # Nothing follows an episode's last step.
      written += 1
      replay.flush()  # Every finished episode is on disk.
      finished += 1
      if player.quit:
        break
  finally:
    bar.close()
    replay.flush()
    if isinstance(player, _PlannerPlayer):
      player.close()
    env.close()
  return dict(episodes=finished, steps=written, directory=replay.directory)

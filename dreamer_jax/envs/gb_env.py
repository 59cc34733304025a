"""The Game Boy environment: a gymnasium.Env over PyBoy for tinymon and Pokémon Red.

Observation (a `gymnasium.spaces.Dict`):
  frame: uint8 (144, 160), the 4 DMG shades 0..3 (0 the lightest). Downsampling is the model's job.
  ram:   float32 (RAM_FEATURES,), features in [0, 1] (`features.RAM_FEATURE_NAMES` gives the layout).
info: {'state': the System 2 state dict (see `state.state_dict`), 'reward_terms': {term: value},
  'frames': emulated frames this episode}.

Registered ids (on import): 'dreamer_jax/Tinymon-v0' and 'dreamer_jax/PokemonRed-v0' (pass
rom_path and state_path).
"""

import gymnasium as gym
from gymnasium import spaces
import numpy as np

from dreamer_jax.envs import emulator as emulator_lib
from dreamer_jax.envs import games
from dreamer_jax.envs import rewards
from dreamer_jax.envs import rom as rom_lib
from dreamer_jax.envs import start_states
from dreamer_jax.envs import state as state_lib
from dreamer_jax.envs.features import RAM_FEATURE_NAMES  # Re-exported: part of the env's interface.
from dreamer_jax.envs.features import RAM_FEATURES
from dreamer_jax.envs.features import decode_probe_targets
from dreamer_jax.envs.features import ram_features
from dreamer_jax.errors import UserError

class GameBoyEnv(gym.Env):
  """tinymon or Pokémon Red over PyBoy (no window, sound off), stepped in agent steps.

  Args:
    game: 'tinymon' or 'pokered'; picks the default ROM when `rom_path` is empty (the ROM's SHA-1
      decides the game).
    rom_path: a Game Boy ROM; None/'' for the game's default (tinymon's committed ROM).
    state_path: a start state file made by make_start_state; None/'' for the game's default.
    frames_per_step: emulated frames per step; press_frames: frames the button is held.
    max_episode_steps: steps after which an episode is truncated.
    reward_weights: {term: weight}, see `rewards`; None for the defaults.
    allow_unknown_rom: a game name whose RAM map an unknown ROM is read with (with a warning).
    render_mode: None or 'rgb_array' (the last frame as RGB).
  """

  metadata = {'render_modes': ['rgb_array'], 'render_fps': 60}

  def __init__(self, game='tinymon', rom_path=None, state_path=None, frames_per_step=24,
               press_frames=8, max_episode_steps=20000, reward_weights=None,
               allow_unknown_rom=None, render_mode=None):
    if not isinstance(max_episode_steps, int) or max_episode_steps < 1:
      raise UserError(f'max_episode_steps={max_episode_steps!r} must be a positive integer.')
    if render_mode not in (None, 'rgb_array'):
      raise UserError(f"render_mode={render_mode!r} is not supported; expected None or 'rgb_array'.")
    self.render_mode = render_mode
    self.max_episode_steps = max_episode_steps
    self.weights = rewards.reward_weights(reward_weights)
    self.rom, self.game = games.resolve(game, rom_path, allow_unknown_rom)
    self.map_names = self.game.map_names()
    self._start = start_states.start_state(self.rom, self.game, state_path)
    self.emulator = emulator_lib.Emulator(self.rom.path, frames_per_step=frames_per_step,
                                          press_frames=press_frames)
    self.metadata = dict(self.metadata, render_fps=60 / frames_per_step)
    self.action_space = spaces.Discrete(emulator_lib.NUM_ACTIONS)
    self.observation_space = spaces.Dict({
        'frame': spaces.Box(0, 3, (emulator_lib.SCREEN_H, emulator_lib.SCREEN_W), np.uint8),
        'ram': spaces.Box(0.0, 1.0, (RAM_FEATURES,), np.float32),
    })
    self.tracker = rewards.RewardTracker(self.weights)
    self.episode_steps = 0
    self._snap = None

  @classmethod
  def from_config(cls, env_config, reward_config=None, **overrides):
    """Builds the env from `config.env` and `config.reward` (ConfigDicts or dicts)."""
    kwargs = dict(
        game=env_config['game'], rom_path=env_config['rom_path'] or None,
        state_path=env_config['state_path'] or None,
        frames_per_step=env_config['frames_per_step'], press_frames=env_config['press_frames'],
        max_episode_steps=env_config['max_episode_steps'],
        allow_unknown_rom=env_config.get('allow_unknown_rom') or None,
        reward_weights=None if reward_config is None else dict(reward_config.items()))
    kwargs.update(overrides)
    return cls(**kwargs)

  def _observe(self):
    snap = state_lib.read_snapshot(self.emulator.memory, self.game)
    self._snap = snap
    return snap, {'frame': self.emulator.frame(), 'ram': ram_features(snap)}

  def _info(self, snap, terms):
    return {
        'state': state_lib.state_dict(snap, self.map_names, self.tracker.steps_without_progress),
        'reward_terms': terms,
        'frames': self.episode_steps * self.emulator.frames_per_step,
    }

  def reset(self, *, seed=None, options=None):
    """Loads the start state (or `options['state']`, bytes from `save_state`) and a new episode."""
    super().reset(seed=seed)
    state = (options or {}).get('state')
    payload = self._start if state is None else start_states.unwrap(state, self.rom.sha1)
    self.emulator.load_state(payload)
    snap, obs = self._observe()
    self.tracker.reset(snap)
    self.episode_steps = 0
    terms = {t: 0.0 for t in rewards.TERMS}
    return obs, self._info(snap, terms)

  def step(self, action):
    if self._snap is None:
      raise gym.error.ResetNeeded('call reset() before step().')
    self.emulator.step(int(action))
    snap, obs = self._observe()
    reward, terms = self.tracker.step(snap)
    self.episode_steps += 1
    truncated = self.episode_steps >= self.max_episode_steps
    return obs, float(reward), False, truncated, self._info(snap, terms)

  def render(self):
    if self.render_mode == 'rgb_array':
      return self.emulator.rgba()[:, :, :3]
    return None

  def save_state(self):
    """The emulator state wrapped with this ROM's SHA-1 (see `start_states.wrap`)."""
    return start_states.wrap(self.emulator.save_state(), self.rom.sha1)

  def load_state(self, data):
    """Loads bytes from `save_state`; the episode goes on, scored from the loaded state onwards."""
    self.emulator.load_state(start_states.unwrap(data, self.rom.sha1))
    snap = state_lib.read_snapshot(self.emulator.memory, self.game)
    if self._snap is None:
      self.tracker.reset(snap)
    else:
      self.tracker.rebase(snap)
    self._snap = snap

  def state(self):
    """The current System 2 state dict."""
    return state_lib.state_dict(state_lib.read_snapshot(self.emulator.memory, self.game), self.map_names,
                                self.tracker.steps_without_progress)

  def close(self):
    self.emulator.close()


def inspect_state(rom_path, state_path=None, steps=0, allow_unknown_rom=None):
  """The state dict of a ROM at a start state, after `steps` no-op steps: checks a ROM is read right.

  Without `state_path`, tinymon starts from its generated start state and other games from power-on.
  """
  rom = rom_lib.read_rom(rom_path)
  spec = games.identify(rom, allow_unknown_rom)
  emulator = emulator_lib.Emulator(rom.path)
  try:
    if state_path or spec.start == games.START_GENERATED:
      emulator.load_state(start_states.start_state(rom, spec, state_path))
    for _ in range(steps):
      emulator.step(emulator_lib.NOOP, render=False)
    return state_lib.read_state(emulator.memory, spec.map_names())
  finally:
    emulator.close()


gym.register(id='dreamer_jax/Tinymon-v0', entry_point='dreamer_jax.envs.gb_env:GameBoyEnv',
             kwargs={'game': 'tinymon'})
gym.register(id='dreamer_jax/PokemonRed-v0', entry_point='dreamer_jax.envs.gb_env:GameBoyEnv',
             kwargs={'game': 'pokered'})

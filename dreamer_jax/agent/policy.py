"""System 1 acting in the real game: frame + RAM -> world-model posterior -> actor -> action.

`Policy` keeps the recurrent carry between calls; each call is one jitted function at batch 1 (or
N emulators at once), so the network step is the only device work per agent step.
"""

import jax
import jax.numpy as jnp
import numpy as np

from dreamer_jax.agent import goals as goals_lib
from dreamer_jax.world_model import data as data_lib
from dreamer_jax.world_model import model as model_lib
from dreamer_jax.world_model.rssm import feature


def make_act(wm, actor, goal_dim):
  """Compiles `act(wm_params, actor_params, carry, prev_action, is_first, frame, ram, goal, key,
  greedy) -> (carry, action int32 [N], log-probs [N, A])` for N frames uint8 [N, 144, 160]."""

  def act(wm_params, actor_params, carry, prev_action, is_first, frame, ram, goal, key, greedy):
    obs_key, act_key = jax.random.split(key)
    small = data_lib.downsample(frame, wm.image_size)
    embed = wm.apply(wm_params, small, ram, method=model_lib.WorldModel.encode)
    carry, _, _ = wm.apply(wm_params, carry, embed, prev_action, is_first, obs_key, 1.0, greedy,
                           method=model_lib.WorldModel.obs_step)
    logp = actor.apply(actor_params, feature(carry), goals_lib.embed(goal, goal_dim))
    sampled = jax.random.categorical(act_key, logp, -1)
    action = jnp.where(greedy, jnp.argmax(logp, -1), sampled).astype(jnp.int32)
    return carry, action, logp

  return jax.jit(act, static_argnums=9)


class Policy:
  """The actor network driving N emulators; `reset` at every episode start.

  Args:
    wm, wm_params: the world model and its parameters; actor, actor_params: the actor.
    goal_dim: the goal embedding's width. map_names: {map id: name} of the game.
    greedy: the most likely action (and the posterior's most likely latent) instead of samples.
    seed: PRNG seed for sampling.
  """

  def __init__(self, wm, wm_params, actor, actor_params, goal_dim, map_names, greedy=False, seed=0,
               batch_size=1):
    self.wm, self.wm_params, self.actor_params = wm, wm_params, actor_params
    self.map_names, self.greedy, self.n = map_names, bool(greedy), batch_size
    self._act = make_act(wm, actor, goal_dim)
    self._key = jax.random.PRNGKey(seed)
    self.reset()

  def reset(self):
    self.carry = model_lib.initial_carry(self.wm, self.n)
    self.prev_action = np.zeros((self.n,), np.int32)
    self.is_first = np.ones((self.n,), bool)

  def __call__(self, frame, ram, goal_specs):
    """frame uint8 [N, 144, 160] (or [144, 160]), ram [N, R], goal_specs: N goal_spec dicts (or one)
    -> int actions [N] (or one int)."""
    single = np.ndim(frame) == 2
    if single:
      frame, ram, goal_specs = frame[None], np.asarray(ram)[None], [goal_specs]
    goal = goals_lib.encode_specs(goal_specs, self.map_names)
    self._key, key = jax.random.split(self._key)
    self.carry, action, _ = self._act(self.wm_params, self.actor_params, self.carry,
                                      self.prev_action, self.is_first, np.asarray(frame, np.uint8),
                                      np.asarray(ram, np.float32), goal, key, self.greedy)
    action = np.asarray(action)
    self.prev_action, self.is_first = action.astype(np.int32), np.zeros((self.n,), bool)
    return int(action[0]) if single else action

"""The networks behind the play window: the world model's posterior on the real game, System 1's
actor, the forecast under the actor's intended actions, and the dream (the prior alone).

Each is one jitted function at batch 1 over explicit carries; the session keeps the carries.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np

from dreamer_jax.agent import goals as goals_lib
from dreamer_jax.agent import train as agent_train
from dreamer_jax.errors import UserError
from dreamer_jax.world_model import data as data_lib
from dreamer_jax.world_model import evaluate as wm_evaluate
from dreamer_jax.world_model import heads as heads_lib
from dreamer_jax.world_model import model as model_lib
from dreamer_jax.world_model import train as wm_train
from dreamer_jax.world_model.rssm import feature

LATENTS = ('mode', 'sample')
# What the actor is given when System 2 has no goal (before the first plan, or a game the planner
# does not know): leave the current map.
EXPLORE = {'kind': 'explore', 'map': None, 'x': None, 'y': None}


def _shades(model, image):
  """The decoder's output -> uint8 shades 0..3 (its most likely shade, or the rounded mean)."""
  if model.image_loss == 'categorical':
    return jnp.argmax(image, -1).astype(jnp.uint8)
  return jnp.clip(jnp.round(image * 3), 0, 3).astype(jnp.uint8)


def _readout(model, params, carry):
  """A carry [1, ...] -> (frame uint8 [h, w], probes {map_id, x, y, ...} of the one state, reward)."""
  out = model.apply(params, feature(carry), method=model_lib.WorldModel.heads)
  probes = jax.tree_util.tree_map(lambda v: v[0], heads_lib.probe_decode(out['probes']))
  return _shades(model, out['image'])[0], probes, heads_lib.twohot_decode(out['reward'])[0]


class Brain:
  """The world model (and the actor, when the workdir has one) at batch 1.

  Args:
    wm, wm_params: the world model. actor, actor_params: System 1's actor, or None.
    goal_dim: the goal embedding's width. map_names: {map id: name} of the game being played.
    latent: 'mode' (the most likely latent at every step: the model's single best guess) or
      'sample' for the posterior, the forecast and the dream.
    greedy: the actor's most likely action instead of a sample.
  """

  def __init__(self, wm, wm_params, actor=None, actor_params=None, goal_dim=64, map_names=None,
               latent='mode', greedy=False, seed=0):
    if latent not in LATENTS:
      raise UserError(f'--latent is {latent!r}; expected one of {", ".join(LATENTS)}.')
    self.wm, self.params = wm, wm_params
    self.actor, self.actor_params = actor, actor_params
    self.goal_dim, self.map_names = int(goal_dim), dict(map_names or {})
    self.mode, self.greedy = latent == 'mode', bool(greedy)
    self._key = jax.random.PRNGKey(seed)
    mode = self.mode

    def observe(params, carry, prev_action, is_first, frame, ram, key):
      small = data_lib.downsample(frame[None], wm.image_size)
      embed = wm.apply(params, small, ram[None], method=model_lib.WorldModel.encode)
      carry, _, _ = wm.apply(params, carry, embed, prev_action[None], is_first[None], key, 1.0,
                             mode, method=model_lib.WorldModel.obs_step)
      return carry

    def policy(actor_params, carry, goal_vec):
      return actor.apply(actor_params, feature(carry), goal_vec)[0]

    def act(actor_params, carry, goal_vec, key):
      logp = policy(actor_params, carry, goal_vec)
      return jnp.where(greedy, jnp.argmax(logp), jax.random.categorical(key, logp)).astype(jnp.int32)

    def forecast(params, actor_params, carry, last_action, goal_vec, key, steps):
      # With an actor, each imagined step takes its most likely action (what it intends to do);
      # without one, the last executed action is held.
      def step(carry, k):
        if actor is None:
          action = last_action
        else:
          action = jnp.argmax(policy(actor_params, carry, goal_vec)).astype(jnp.int32)
        carry, _ = wm.apply(params, carry, action[None], k, 1.0, mode,
                            method=model_lib.WorldModel.img_step)
        return carry, (feature(carry)[0], action)
      _, (feats, actions) = jax.lax.scan(step, carry, jax.random.split(key, steps))
      out = wm.apply(params, feats, method=model_lib.WorldModel.heads)
      return _shades(wm, out['image']), actions

    def dream(params, carry, action, key):
      carry, _ = wm.apply(params, carry, action[None], key, 1.0, mode,
                          method=model_lib.WorldModel.img_step)
      return (carry,) + _readout(wm, params, carry)

    self._observe = jax.jit(observe)
    self._act = jax.jit(act) if actor is not None else None
    self._forecast = jax.jit(forecast, static_argnums=6)
    self._dream = jax.jit(dream)
    self._readout = jax.jit(lambda params, carry: _readout(wm, params, carry))

  @property
  def has_actor(self):
    return self.actor is not None

  def _next_key(self):
    self._key, key = jax.random.split(self._key)
    return key

  def initial(self):
    return model_lib.initial_carry(self.wm, 1)

  def goal_vector(self, goal_spec):
    """A goal_spec (or None: `EXPLORE`) -> float32 [1, goal_dim]."""
    spec = dict(goal_spec or EXPLORE)
    if spec.get('map') is not None and spec['map'] not in self.map_names.values():
      spec = EXPLORE     # A map this game does not have cannot be embedded; the actor explores.
    return goals_lib.embed(goals_lib.encode_specs([spec], self.map_names), self.goal_dim)

  def observe(self, carry, prev_action, is_first, frame, ram):
    """The posterior after one real step: frame uint8 [144, 160], ram [R], the action into it."""
    return self._observe(self.params, carry, jnp.asarray(prev_action, jnp.int32),
                         jnp.asarray(is_first, bool), np.asarray(frame, np.uint8),
                         np.asarray(ram, np.float32), self._next_key())

  def observe_context(self, steps):
    """A fresh posterior from (frame, ram, action into it) steps, oldest first (the dream's start)."""
    carry = self.initial()
    for i, (frame, ram, action) in enumerate(steps):
      carry = self.observe(carry, action, i == 0, frame, ram)
    return carry

  def act(self, carry, goal_vec):
    """System 1's action from a carry (the real posterior or the dream's state)."""
    return int(self._act(self.actor_params, carry, goal_vec, self._next_key()))

  def forecast(self, carry, last_action, goal_vec, steps):
    """The frames imagined for the next `steps` steps -> (uint8 [steps, h, w], actions int [steps])."""
    frames, actions = self._forecast(self.params, self.actor_params, carry,
                                     jnp.asarray(last_action, jnp.int32), goal_vec,
                                     self._next_key(), int(steps))
    return np.asarray(frames), np.asarray(actions)

  def dream(self, carry, action):
    """One prior step -> (carry, frame uint8 [h, w], probes, imagined reward)."""
    carry, frame, probes, reward = self._dream(self.params, carry, jnp.asarray(action, jnp.int32),
                                               self._next_key())
    return carry, np.asarray(frame), jax.device_get(probes), float(reward)

  def readout(self, carry):
    """What the model makes of a state -> (frame uint8 [h, w], probes, imagined reward)."""
    frame, probes, reward = self._readout(self.params, carry)
    return np.asarray(frame), jax.device_get(probes), float(reward)


def _has_agent(workdir):
  agent_dir = os.path.join(workdir, 'agent')
  if not os.path.isdir(os.path.join(agent_dir, 'checkpoints')):
    return False
  ckpt = wm_train.Checkpoints(agent_dir)
  try:
    return ckpt.latest_step() is not None
  finally:
    ckpt.close()


def load_networks(workdir):
  """`workdir`'s world model and, if it has one, System 1's actor -> (config, wm, wm_params, actor,
  actor_params); actor and actor_params are None for a workdir without an agent checkpoint. The
  config is the agent's when there is one (it holds the world model's), else the world model's.

  A workdir without a world-model checkpoint is a UserError.
  """
  check_workdir(workdir)
  if _has_agent(workdir):
    return agent_train.load_agent(workdir)
  config, wm, wm_params, _, _ = wm_evaluate.load_trained(workdir)
  return config, wm, wm_params, None, None


def check_workdir(workdir):
  """UserError unless `workdir` has a world-model checkpoint directory (cheap: checked first)."""
  path = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(path):
    # Checked before orbax is asked: its manager would create the directory.
    raise UserError(f'no world-model checkpoint in {workdir} ({path} does not exist); expected a '
                    'workdir written by experiments.train_world_model.')

"""The actor and the critic: MLPs on [world-model feature, goal embedding].

Both are Flax Linen modules used as pure functions. The actor's output is log-probabilities with a
uniform mix (DreamerV3's unimix), so no action's probability falls below unimix / A and the policy
gradient's log-probabilities stay finite. The critic is a scalar regressor ('mse') or a symlog
two-hot distribution over fixed bins ('twohot', DreamerV3), decoded by `critic_value`.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from dreamer_jax.world_model import heads as heads_lib
from dreamer_jax.world_model.networks import MLP
from dreamer_jax.world_model.rssm import mix_logits

CRITIC_KINDS = ('mse', 'twohot')


class Actor(nn.Module):
  """feat [..., F], goal [..., G] -> action log-probabilities [..., A] (unimix mixed)."""
  layers: int
  units: int
  num_actions: int
  unimix: float = 0.01

  @nn.compact
  def __call__(self, feat, goal):
    x = MLP(self.layers, self.units)(jnp.concatenate([feat, goal], -1))
    return mix_logits(nn.Dense(self.num_actions)(x), self.unimix)


class Critic(nn.Module):
  """feat [..., F], goal [..., G] -> value [...] ('mse') or bin logits [..., bins] ('twohot').

  The two-hot output layer starts at zero, so the first value estimates are exactly 0 (DreamerV3).
  """
  layers: int
  units: int
  kind: str = 'mse'
  bins: int = 255

  @nn.compact
  def __call__(self, feat, goal):
    x = MLP(self.layers, self.units)(jnp.concatenate([feat, goal], -1))
    if self.kind == 'twohot':
      return nn.Dense(self.bins, kernel_init=nn.initializers.zeros)(x)
    return nn.Dense(1)(x)[..., 0]


def critic_value(out, kind):
  """The critic's output -> its value estimate [...] (the two-hot expectation for 'twohot')."""
  return heads_lib.twohot_decode(out) if kind == 'twohot' else out


def critic_loss(out, target, kind):
  """Per-element loss [...] of critic outputs against value targets [...] (no gradient into them)."""
  target = jax.lax.stop_gradient(target)
  if kind == 'twohot':
    return heads_lib.twohot_loss(out, target)
  return 0.5 * jnp.square(out - target)


def entropy(logp):
  """Entropy [...] of log-probabilities [..., A]."""
  return -jnp.sum(jnp.exp(logp) * logp, -1)


def log_prob(logp, action):
  """logp [..., A], int action [...] -> log pi(action) [...] (one-hot product; see heads.cross_entropy)."""
  return jnp.sum(jax.nn.one_hot(action, logp.shape[-1], dtype=logp.dtype) * logp, -1)

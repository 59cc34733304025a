"""Prediction heads: reward (symlog two-hot), continue, and the RAM probes; their losses and decoders.

The probes read game quantities out of the model state (map id, x, y, battle kind, dialog, badges,
party HP), which gives imagined rewards and goals their meaning and makes drift measurable.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from dreamer_jax.world_model.networks import MLP
from dreamer_jax.world_model.networks import symexp
from dreamer_jax.world_model.networks import symlog

SYMLOG_RANGE = 20.0
# Coordinates and map ids are bytes in RAM; classes beat regression for reading them back exactly.
BYTE_CLASSES = 256
BATTLE_KINDS = 3     # none, wild, trainer (`features.decode_probe_targets` order).
NUM_BADGES = 8


def twohot_bins(num_bins):
  """Bin centres in symlog space: evenly spaced over [-20, 20] -> [num_bins]."""
  return jnp.linspace(-SYMLOG_RANGE, SYMLOG_RANGE, num_bins)


def twohot_encode(x, num_bins):
  """x [...] -> weights [..., num_bins] on the two bins around symlog(x) (clipped to the range)."""
  y = jnp.clip(symlog(x), -SYMLOG_RANGE, SYMLOG_RANGE)
  pos = (y + SYMLOG_RANGE) / (2 * SYMLOG_RANGE / (num_bins - 1))
  lo = jnp.clip(jnp.floor(pos), 0, num_bins - 2)
  above = (pos - lo)[..., None]
  lo = lo.astype(jnp.int32)
  return jax.nn.one_hot(lo, num_bins) * (1 - above) + jax.nn.one_hot(lo + 1, num_bins) * above


def twohot_decode(logits):
  """logits [..., N] -> the expected value, symexp(sum p_i * bin_i) [...]."""
  return symexp(jnp.sum(jax.nn.softmax(logits, -1) * twohot_bins(logits.shape[-1]), -1))


def twohot_loss(logits, x):
  """Cross-entropy between the two-hot encoding of x [...] and logits [..., N] -> [...]."""
  return -jnp.sum(twohot_encode(x, logits.shape[-1]) * jax.nn.log_softmax(logits, -1), -1)


class RewardHead(nn.Module):
  """feat [..., F] -> reward logits [..., bins]; the output layer starts at zero (DreamerV3), so the
  first predictions are 0 and the early loss does not push large rewards into the model."""
  layers: int
  units: int
  bins: int

  @nn.compact
  def __call__(self, feat):
    return nn.Dense(self.bins, kernel_init=nn.initializers.zeros)(MLP(self.layers, self.units)(feat))


class ContHead(nn.Module):
  """feat [..., F] -> continue logit [...] (1 = the episode goes on)."""
  layers: int
  units: int

  @nn.compact
  def __call__(self, feat):
    return nn.Dense(1)(MLP(self.layers, self.units)(feat))[..., 0]


class ProbeHead(nn.Module):
  """feat [..., F] -> dict of probe outputs: map_id, x, y [..., 256] and in_battle [..., 3] logits;
  dialog_open [...] and badge_bits [..., 8] Bernoulli logits; party_hp_frac [...] (a value)."""
  layers: int
  units: int

  @nn.compact
  def __call__(self, feat):
    x = MLP(self.layers, self.units)(feat)
    return dict(
        map_id=nn.Dense(BYTE_CLASSES)(x),
        x=nn.Dense(BYTE_CLASSES)(x),
        y=nn.Dense(BYTE_CLASSES)(x),
        in_battle=nn.Dense(BATTLE_KINDS)(x),
        dialog_open=nn.Dense(1)(x)[..., 0],
        badge_bits=nn.Dense(NUM_BADGES)(x),
        party_hp_frac=nn.Dense(1)(x)[..., 0],
    )


def cross_entropy(logits, labels):
  """-log softmax(logits)[labels]: logits [..., K], int labels [...] -> [...].

  Written with a one-hot product: the integer-indexing form's gradient is a scatter that XLA:CPU
  spent ~16 s constant-folding at compile time for the image decoder.
  """
  onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
  return -jnp.sum(onehot * jax.nn.log_softmax(logits, -1), -1)


def probe_loss(outputs, targets):
  """Summed probe losses [...] from `ProbeHead` outputs and `features.decode_probe_targets` targets."""
  ce = cross_entropy
  bce = lambda logits, y: optax.sigmoid_binary_cross_entropy(logits, y.astype(jnp.float32))
  return (ce(outputs['map_id'], targets['map_id'])
          + ce(outputs['x'], targets['x'])
          + ce(outputs['y'], targets['y'])
          + ce(outputs['in_battle'], targets['in_battle'])
          + bce(outputs['dialog_open'], targets['dialog_open'])
          + bce(outputs['badge_bits'], targets['badge_bits']).sum(-1)
          + jnp.square(outputs['party_hp_frac'] - targets['party_hp_frac']))


def probe_decode(outputs):
  """`ProbeHead` outputs -> the most likely game quantities, in `decode_probe_targets`' format."""
  return dict(
      map_id=jnp.argmax(outputs['map_id'], -1).astype(jnp.int32),
      x=jnp.argmax(outputs['x'], -1).astype(jnp.int32),
      y=jnp.argmax(outputs['y'], -1).astype(jnp.int32),
      in_battle=jnp.argmax(outputs['in_battle'], -1).astype(jnp.int32),
      dialog_open=outputs['dialog_open'] > 0,
      badge_bits=outputs['badge_bits'] > 0,
      party_hp_frac=outputs['party_hp_frac'],
  )

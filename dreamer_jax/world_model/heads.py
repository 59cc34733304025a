"""Prediction heads: reward (symlog two-hot), continue, and the RAM probes; their losses and decoders.

The probes read game quantities out of the model state (map id, x, y, battle kind, dialog, badges,
party HP), which gives imagined rewards and goals their meaning and makes drift measurable.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from dreamer_jax.world_model.networks import MLP
from dreamer_jax.world_model.networks import dense
from dreamer_jax.world_model.networks import symexp

SYMLOG_RANGE = 20.0
# Coordinates and map ids are bytes in RAM; classes beat regression for reading them back exactly.
BYTE_CLASSES = 256
BATTLE_KINDS = 3     # none, wild, trainer (`features.decode_probe_targets` order).
NUM_BADGES = 8
DEX_CLASSES = 152    # Species owned, 0..151 (the Pokédex count, `features.DEX_OWNED`).


def twohot_bins(num_bins):
  """Bin centres in raw units: symexp of points evenly spaced over [-20, 20] -> [num_bins].

  The bins are symexp-spaced (fine near 0, coarse for large values) and the two-hot weights and
  the expectation are taken in raw units (DreamerV3's current form). Weighting in symlog space and
  decoding as symexp(E[symlog]) instead biases sparse values to zero: a +10 reward predicted with
  probability 0.1 decoded to 0.27, where its expectation is 1.0.
  """
  points = jnp.linspace(-SYMLOG_RANGE, SYMLOG_RANGE, num_bins)
  # Exactly antisymmetric (linspace's float32 rounding is not), so mirrored bins cancel exactly.
  return symexp((points - points[::-1]) / 2)


def twohot_encode(x, num_bins):
  """x [...] -> weights [..., num_bins] on the two bins around x (clipped to the outer bins),
  linear in raw units, so that sum(weights * bins) == x."""
  bins = twohot_bins(num_bins)
  x = jnp.clip(x, bins[0], bins[-1])
  hi = jnp.clip(jnp.searchsorted(bins, x, side='right'), 1, num_bins - 1)
  lo = hi - 1
  above = ((x - bins[lo]) / (bins[hi] - bins[lo]))[..., None]
  return jax.nn.one_hot(lo, num_bins) * (1 - above) + jax.nn.one_hot(hi, num_bins) * above


def twohot_decode(logits):
  """logits [..., N] -> the expected value sum(p_i * bin_i) [...] in raw units.

  Bins far from zero are ~1e8, so each bin is added to its mirror image first: a symmetric
  distribution then sums to exactly 0 rather than to float32 rounding noise of the large bins.
  """
  n = logits.shape[-1]
  probs = jax.nn.softmax(logits, -1)
  weighted = probs * twohot_bins(n)
  half = n // 2
  middle = weighted[..., half] if n % 2 else 0.0
  pairs = weighted[..., :half][..., ::-1] + weighted[..., n - half:]
  return middle + pairs.sum(-1)


def twohot_loss(logits, x):
  """Cross-entropy between the two-hot encoding of x [...] and logits [..., N] -> [...]."""
  return -jnp.sum(twohot_encode(x, logits.shape[-1]) * jax.nn.log_softmax(logits, -1), -1)


class RewardHead(nn.Module):
  """feat [..., F] -> reward logits [..., bins]; the output layer starts at zero (DreamerV3), so the
  first predictions are 0 and the early loss does not push large rewards into the model."""
  layers: int
  units: int
  bins: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, feat):
    x = MLP(self.layers, self.units, self.dtype)(feat)
    return dense(self.bins, self.dtype, kernel_init=nn.initializers.zeros)(x)


class ContHead(nn.Module):
  """feat [..., F] -> continue logit [...] (1 = the episode goes on)."""
  layers: int
  units: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, feat):
    x = MLP(self.layers, self.units, self.dtype)(feat)
    return dense(1, self.dtype)(x)[..., 0]


class ProbeHead(nn.Module):
  """feat [..., F] -> dict of probe outputs: map_id, x, y [..., 256] and in_battle [..., 3] logits;
  dialog_open [...] and badge_bits [..., 8] Bernoulli logits; party_hp_frac [...] (a value); with
  `dex`, dex_owned [..., 152] logits (species owned: what a catch changes, so that imagination can
  pay for catches)."""
  layers: int
  units: int
  dex: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, feat):
    x = MLP(self.layers, self.units, self.dtype)(feat)
    layer = lambda n: dense(n, self.dtype)(x)
    out = dict(
        map_id=layer(BYTE_CLASSES),
        x=layer(BYTE_CLASSES),
        y=layer(BYTE_CLASSES),
        in_battle=layer(BATTLE_KINDS),
        dialog_open=layer(1)[..., 0],
        badge_bits=layer(NUM_BADGES),
        party_hp_frac=layer(1)[..., 0],
    )
    if self.dex:   # Last, so that the other layers keep their names (older checkpoints load).
      out['dex_owned'] = layer(DEX_CLASSES)
    return out


def dex_expected(outputs):
  """The expected species count E[dex_owned] [...] of `ProbeHead` outputs made with `dex`."""
  probs = jax.nn.softmax(outputs['dex_owned'], -1)
  return jnp.sum(probs * jnp.arange(probs.shape[-1], dtype=probs.dtype), -1)


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
  dex = (ce(outputs['dex_owned'], targets['dex_owned'])
         if 'dex_owned' in outputs and 'dex_owned' in targets else 0.0)
  return (dex + ce(outputs['map_id'], targets['map_id'])
          + ce(outputs['x'], targets['x'])
          + ce(outputs['y'], targets['y'])
          + ce(outputs['in_battle'], targets['in_battle'])
          + bce(outputs['dialog_open'], targets['dialog_open'])
          + bce(outputs['badge_bits'], targets['badge_bits']).sum(-1)
          + jnp.square(outputs['party_hp_frac'] - targets['party_hp_frac']))


def probe_decode(outputs):
  """`ProbeHead` outputs -> the most likely game quantities, in `decode_probe_targets`' format."""
  dex = ({'dex_owned': jnp.argmax(outputs['dex_owned'], -1).astype(jnp.int32)}
         if 'dex_owned' in outputs else {})
  return dict(
      **dex,
      map_id=jnp.argmax(outputs['map_id'], -1).astype(jnp.int32),
      x=jnp.argmax(outputs['x'], -1).astype(jnp.int32),
      y=jnp.argmax(outputs['y'], -1).astype(jnp.int32),
      in_battle=jnp.argmax(outputs['in_battle'], -1).astype(jnp.int32),
      dialog_open=outputs['dialog_open'] > 0,
      badge_bits=outputs['badge_bits'] > 0,
      party_hp_frac=outputs['party_hp_frac'],
  )

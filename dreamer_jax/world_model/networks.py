"""Building blocks of the world model: MLP, normalised GRU cell, patch encoder and decoder.

Speed note. On XLA:CPU a `nn.Conv` with kernel 4 / stride 2 over 1024 frames of 72x80 took ~10x
longer (forward + backward) than the same stack written as matrix products. So the image networks use
convolutions whose kernel equals their stride (2x2 patches): space-to-depth followed by a `Dense`
over channels (encoder), and a `Dense` to 4x the channels followed by depth-to-space (decoder). Every
op is then a large matmul, which XLA:CPU runs near its peak. Game Boy graphics sit on an 8x8 tile
grid, so non-overlapping patches lose little; the flattened last stage mixes the whole screen.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


def space_to_depth(x):
  """[N, H, W, C] -> [N, H/2, W/2, 4C]; odd H or W is zero-padded by one row/column first."""
  n, h, w, c = x.shape
  x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
  h2, w2 = (h + 1) // 2, (w + 1) // 2
  x = x.reshape(n, h2, 2, w2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h2, w2, 4 * c)


def depth_to_space(x):
  """[N, H, W, 4C] -> [N, 2H, 2W, C] (the inverse of `space_to_depth` without padding)."""
  n, h, w, c4 = x.shape
  c = c4 // 4
  x = x.reshape(n, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, 2 * h, 2 * w, c)


def stage_shapes(image_size):
  """Spatial sizes [(H, W), ...] from the image down to the last stage (both sides <= 6).

  (72, 80) -> [(72, 80), (36, 40), (18, 20), (9, 10), (5, 5)]: four 2x2 stages.
  """
  shapes = [tuple(image_size)]
  while max(shapes[-1]) > 6:
    h, w = shapes[-1]
    shapes.append(((h + 1) // 2, (w + 1) // 2))
  return shapes


def stage_depths(num_stages, depth):
  """Channel counts per stage: doubling, ending at 8x `depth` (the first stages stay at `depth`)."""
  return [depth * 2 ** max(0, i - (num_stages - 4)) for i in range(num_stages)]


class Norm(nn.Module):
  """LayerNorm over the last axis (per pixel over channels for feature maps)."""

  @nn.compact
  def __call__(self, x):
    return nn.LayerNorm(epsilon=1e-3)(x)


class MLP(nn.Module):
  """`layers` x (Dense -> LayerNorm -> SiLU). [..., D] -> [..., units]."""
  layers: int
  units: int

  @nn.compact
  def __call__(self, x):
    for _ in range(self.layers):
      x = jax.nn.silu(Norm()(nn.Dense(self.units, use_bias=False)(x)))
    return x


class GRUCell(nn.Module):
  """DreamerV3's GRU: one Dense over [x, h], LayerNorm, update gate biased towards keeping h.

  x [B, I], h [B, D] -> new h [B, D].
  """
  units: int

  @nn.compact
  def __call__(self, x, h):
    parts = Norm()(nn.Dense(3 * self.units, use_bias=False)(jnp.concatenate([x, h], -1)))
    reset, cand, update = jnp.split(parts, 3, -1)
    reset = jax.nn.sigmoid(reset)
    cand = jnp.tanh(reset * cand)
    # The -1 makes the initial update gate ~0.27 so the state is carried by default.
    update = jax.nn.sigmoid(update - 1.0)
    return update * cand + (1.0 - update) * h


class Encoder(nn.Module):
  """Frame (+ RAM features) -> embedding.

  frame: float [N, H, W, C] (one-hot shades); ram: float [N, R] or None. Returns [N, E].
  """
  depth: int
  mlp_layers: int
  mlp_units: int

  @nn.compact
  def __call__(self, frame, ram=None):
    shapes = stage_shapes(frame.shape[1:3])
    x = frame
    for d in stage_depths(len(shapes) - 1, self.depth):
      x = jax.nn.silu(Norm()(nn.Dense(d, use_bias=False)(space_to_depth(x))))
    parts = [x.reshape(x.shape[0], -1)]
    if ram is not None:
      parts.append(MLP(self.mlp_layers, self.mlp_units)(symlog(ram)))
    return jnp.concatenate(parts, -1)


class Decoder(nn.Module):
  """Feature [N, F] -> per-pixel outputs [N, H, W, channels] (logits over shades, or a mean)."""
  image_size: tuple
  depth: int
  channels: int

  @nn.compact
  def __call__(self, feat):
    shapes = stage_shapes(self.image_size)
    depths = stage_depths(len(shapes) - 1, self.depth)
    h, w = shapes[-1]
    x = nn.Dense(h * w * depths[-1])(feat).reshape(-1, h, w, depths[-1])
    x = jax.nn.silu(Norm()(x))
    outs = depths[-2::-1] + [self.channels]
    for i, (d, (h, w)) in enumerate(zip(outs, shapes[-2::-1])):
      x = depth_to_space(nn.Dense(4 * d, use_bias=i == len(outs) - 1)(x))[:, :h, :w]
      if i < len(outs) - 1:
        x = jax.nn.silu(Norm()(x))
    return x


def symlog(x):
  return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def symexp(x):
  return jnp.sign(x) * jnp.expm1(jnp.abs(x))


def num_params(params):
  """Total number of scalars in a parameter pytree."""
  return sum(math.prod(p.shape) for p in jax.tree_util.tree_leaves(params))

"""Building blocks of the world model: MLP, normalised GRU cell, patch encoder and decoder.

Speed note. On XLA:CPU a `nn.Conv` with kernel 4 / stride 2 over 1024 frames of 72x80 took ~10x
longer (forward + backward) than the same stack written as matrix products. So the image networks use
convolutions whose kernel equals their stride (2x2 patches): space-to-depth followed by a `Dense`
over channels (encoder), and a `Dense` to 4x the channels followed by depth-to-space (decoder). Every
op is then a large matmul, which XLA:CPU runs near its peak. Game Boy graphics sit on an 8x8 tile
grid, so non-overlapping patches lose little; the flattened last stage mixes the whole screen.

Precision. Every module takes `dtype`, the dtype of its matrix products' operands: float32 (the
default), or bfloat16, whose products accumulate and return float32 (`matmul`). Parameters,
activations, LayerNorm and the recurrent state stay float32 whatever `dtype` is, so checkpoints do
not depend on it. On XLA:CPU with AVX512-BF16 this form of product runs ~1.8x faster than float32
(bfloat16 outputs, or the transposed products of a backward pass, run slower than float32 there),
so the agent uses it for the frozen world model's forward passes (`agent.compute_dtype`).
"""

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dreamer_jax.errors import UserError


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


COMPUTE_DTYPES = ('float32', 'bfloat16')


def compute_dtype(name, field):
  """The jnp dtype for a config's compute dtype name; a bad name raises UserError naming `field`."""
  if name not in COMPUTE_DTYPES:
    raise UserError(f'{field} is {name!r}; expected one of {COMPUTE_DTYPES}.')
  return jnp.dtype(name)


def matmul(dtype):
  """A `dot_general` for `nn.Dense` whose operands are cast to `dtype`, accumulated in float32."""
  if jnp.dtype(dtype) == jnp.float32:
    return jax.lax.dot_general

  def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    del preferred_element_type
    return jax.lax.dot_general(lhs.astype(dtype), rhs.astype(dtype), dimension_numbers, precision,
                               preferred_element_type=jnp.float32)
  return dot_general


def dense(units, dtype=jnp.float32, **kwargs):
  """`nn.Dense` with float32 parameters and outputs, its product in `dtype` (see `matmul`)."""
  return nn.Dense(units, dot_general=matmul(dtype), **kwargs)


class Norm(nn.Module):
  """LayerNorm over the last axis (per pixel over channels for feature maps)."""

  @nn.compact
  def __call__(self, x):
    return nn.LayerNorm(epsilon=1e-3)(x)


class MLP(nn.Module):
  """`layers` x (Dense -> LayerNorm -> SiLU). [..., D] -> [..., units] (in `dtype`)."""
  layers: int
  units: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    for _ in range(self.layers):
      x = jax.nn.silu(Norm()(dense(self.units, self.dtype, use_bias=False)(x)))
    return x


class GRUCell(nn.Module):
  """DreamerV3's GRU: one Dense over [x, h], LayerNorm, update gate biased towards keeping h.

  x [B, I], h [B, D] -> new h [B, D].
  """
  units: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, h):
    xh = jnp.concatenate([x, h], -1)
    parts = Norm()(dense(3 * self.units, self.dtype, use_bias=False)(xh))
    reset, cand, update = jnp.split(parts, 3, -1)
    reset = jax.nn.sigmoid(reset)
    cand = jnp.tanh(reset * cand)
    # The -1 makes the initial update gate ~0.27 so the state is carried by default.
    update = jax.nn.sigmoid(update - 1.0)
    return update * cand + (1.0 - update) * h


class Encoder(nn.Module):
  """Frame (+ RAM features) -> embedding.

  frame: int [N, H, W], pixel shades in [0, shades); ram: float [N, R] or None. Returns [N, E].

  The first stage maps each 2x2 patch of one-hot shades through Dense -> LayerNorm -> SiLU. A patch
  of 4 pixels has only shades^4 (256) possible values, so that stage is computed once per possible
  patch and gathered by each patch's code: the same function and parameters as the per-patch form,
  ~7x faster on XLA:CPU, where the first stage (1,440 patches of 16 channels a frame) had taken
  more time than the other stages together.
  """
  depth: int
  mlp_layers: int
  mlp_units: int
  shades: int = 4
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, frame, ram=None):
    shapes = stage_shapes(frame.shape[1:3])
    depths = stage_depths(len(shapes) - 1, self.depth)
    first = nn.Sequential([dense(depths[0], self.dtype, use_bias=False), Norm(), jax.nn.silu])
    h, w = frame.shape[1:3]
    if h % 2 or w % 2:   # Padded patches have no code: the per-patch form.
      x = first(space_to_depth(jax.nn.one_hot(frame, self.shades, dtype=jnp.float32)))
    else:
      x = first(patch_onehots(self.shades))[patch_codes(frame, self.shades)]
    for d in depths[1:]:
      x = jax.nn.silu(Norm()(dense(d, self.dtype, use_bias=False)(space_to_depth(x))))
    parts = [x.reshape(x.shape[0], -1)]
    if ram is not None:
      parts.append(MLP(self.mlp_layers, self.mlp_units, self.dtype)(symlog(ram)))
    return jnp.concatenate(parts, -1)


def patch_codes(frame, shades):
  """int [N, H, W] -> [N, H/2, W/2]: each 2x2 patch as one number, sum_p shade_p * shades^p over its
  pixels p in `space_to_depth`'s order (row-major within the patch)."""
  n, h, w = frame.shape
  x = frame.astype(jnp.int32).reshape(n, h // 2, 2, w // 2, 2).transpose(0, 1, 3, 2, 4)
  weights = shades ** jnp.arange(4, dtype=jnp.int32)
  return jnp.sum(x.reshape(n, h // 2, w // 2, 4) * weights, -1)


def patch_onehots(shades):
  """[shades^4, 4 * shades]: row c is `space_to_depth` of the one-hot patch whose code is c."""
  codes = jnp.arange(shades ** 4)
  digits = (codes[:, None] // shades ** jnp.arange(4)) % shades
  return jax.nn.one_hot(digits, shades, dtype=jnp.float32).reshape(shades ** 4, 4 * shades)


class Decoder(nn.Module):
  """Feature [N, F] -> per-pixel outputs [N, H, W, channels] (logits over shades, or a mean)."""
  image_size: tuple
  depth: int
  channels: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, feat):
    shapes = stage_shapes(self.image_size)
    depths = stage_depths(len(shapes) - 1, self.depth)
    h, w = shapes[-1]
    x = dense(h * w * depths[-1], self.dtype)(feat).reshape(-1, h, w, depths[-1])
    x = jax.nn.silu(Norm()(x))
    outs = depths[-2::-1] + [self.channels]
    for i, (d, (h, w)) in enumerate(zip(outs, shapes[-2::-1])):
      x = depth_to_space(dense(4 * d, self.dtype, use_bias=i == len(outs) - 1)(x))[:, :h, :w]
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

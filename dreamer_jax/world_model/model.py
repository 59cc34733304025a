"""The world model as one Flax module, built from the config, and the sequence functions over [B, T].

`WorldModel` is used as a pure function: `model.apply(params, ..., method=...)`. `observe` and
`imagine` scan the RSSM's one-step functions over time; every function takes and returns a carry.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dreamer_jax.envs.emulator import NUM_ACTIONS
from dreamer_jax.errors import UserError
from dreamer_jax.world_model import rssm as rssm_lib
from dreamer_jax.world_model.heads import ContHead
from dreamer_jax.world_model.heads import ProbeHead
from dreamer_jax.world_model.heads import RewardHead
from dreamer_jax.world_model.networks import Decoder
from dreamer_jax.world_model.networks import Encoder

SHADES = 4
# RAM features that hold a byte as k/255 (map id, x, y: `features.RAM_FEATURE_NAMES`). As raw inputs
# neighbouring positions differ by 1/255; one-hot they are as distinct as the probes need them.
BYTE_FEATURES = (0, 1, 2)
IMAGE_LOSSES = ('categorical', 'mse')
IMAGE_SIZES = ((72, 80), (144, 160))


class WorldModel(nn.Module):
  """Encoder + RSSM + image decoder + reward, continue and RAM-probe heads (sizes in `from_config`)."""
  image_size: tuple = (72, 80)
  use_ram: bool = True
  image_loss: str = 'categorical'
  cnn_depth: int = 32
  mlp_layers: int = 2
  mlp_units: int = 512
  deter: int = 512
  stoch: int = 32
  classes: int = 32
  unimix: float = 0.01
  latent_grad: str = 'straight_through'
  reward_bins: int = 255
  num_actions: int = NUM_ACTIONS
  # The RAM features the model was trained on (0 = all it is given): a model trained before the
  # vector grew reads the prefix it knows (`features` only ever appends).
  ram_size: int = 0
  # A species-owned probe (what imagination pays a catch by); False for models trained without one.
  dex_probe: bool = False
  # The dtype of the matrix products (parameters stay float32): `model.clone(dtype=jnp.bfloat16)`
  # is the same model with the same parameters in mixed precision (what the agent imagines with).
  dtype: Any = jnp.float32

  def setup(self):
    dt = self.dtype
    self.encoder = Encoder(self.cnn_depth, self.mlp_layers, self.mlp_units, SHADES, dt)
    self.rssm = rssm_lib.RSSM(self.deter, self.stoch, self.classes, self.mlp_units,
                              self.num_actions, self.unimix, self.latent_grad, dt)
    channels = SHADES if self.image_loss == 'categorical' else 1
    self.decoder = Decoder(tuple(self.image_size), self.cnn_depth, channels, dt)
    self.reward_head = RewardHead(self.mlp_layers, self.mlp_units, self.reward_bins, dt)
    self.cont_head = ContHead(self.mlp_layers, self.mlp_units, dt)
    self.probe_head = ProbeHead(self.mlp_layers, self.mlp_units, self.dex_probe, dt)

  def encode(self, frame, ram):
    """frame uint8 [N, H, W] (shades, model resolution), ram float [N, R] -> embedding [N, E]."""
    if not self.use_ram:
      return self.encoder(frame, None)
    if self.ram_size:
      ram = ram[:, :self.ram_size]
    codes = jnp.round(ram[:, BYTE_FEATURES] * 255.0).astype(jnp.int32)
    ram = jnp.concatenate([ram, jax.nn.one_hot(codes, 256).reshape(ram.shape[0], -1)], -1)
    return self.encoder(frame, ram)

  def heads(self, feat):
    """feat [N, F] -> dict: image [N, H, W, 4] logits (or [N, H, W] mean for 'mse'), reward [N, bins]
    logits, cont [N] logit, probes (see `ProbeHead`)."""
    image = self.decoder(feat)
    if self.image_loss == 'mse':
      image = image[..., 0]
    return dict(image=image, reward=self.reward_head(feat), cont=self.cont_head(feat),
                probes=self.probe_head(feat))

  def scalar_heads(self, feat):
    """`heads` without the image decoder (what imagination needs): reward logits, cont, probes."""
    return dict(reward=self.reward_head(feat), cont=self.cont_head(feat),
                probes=self.probe_head(feat))

  def probes(self, feat):
    """feat [N, F] -> the RAM-probe outputs alone (see `ProbeHead`)."""
    return self.probe_head(feat)

  def obs_step(self, carry, embed, action, is_first, key, temp, mode=False):
    return self.rssm.obs_step(carry, embed, action, is_first, key, temp, mode)

  def img_step(self, carry, action, key, temp, mode=False):
    return self.rssm.img_step(carry, action, key, temp, mode)

  def __call__(self, frame, ram, action, is_first, key):
    """Touches every parameter once (for `init`); frame [N, H, W], ram [N, R], action/is_first [N]."""
    carry = self.rssm.initial(frame.shape[0])
    carry, _, _ = self.obs_step(carry, self.encode(frame, ram), action, is_first, key, 1.0)
    return self.heads(rssm_lib.feature(carry))


def from_config(wm):
  """The `WorldModel` for a config's `world_model` section; a bad value raises UserError."""
  size = tuple(wm.image_size)
  if size not in IMAGE_SIZES:
    raise UserError(f'world_model.image_size is {size}; expected one of {IMAGE_SIZES}.')
  if wm.image_loss not in IMAGE_LOSSES:
    raise UserError(f'world_model.image_loss is {wm.image_loss!r}; expected one of {IMAGE_LOSSES}.')
  if wm.latent_grad not in rssm_lib.LATENT_GRADS:
    raise UserError(f'world_model.latent_grad is {wm.latent_grad!r}; '
                    f'expected one of {rssm_lib.LATENT_GRADS}.')
  if not 0.0 <= wm.unimix < 1.0:
    raise UserError(f'world_model.unimix is {wm.unimix}; expected a value in [0, 1).')
  for name in ('cnn_depth', 'mlp_layers', 'mlp_units', 'deter', 'stoch', 'classes'):
    if wm[name] < 1:
      raise UserError(f'world_model.{name} is {wm[name]}; expected a positive integer.')
  if wm.reward_bins < 3:
    raise UserError(f'world_model.reward_bins is {wm.reward_bins}; expected at least 3.')
  return WorldModel(
      image_size=size, use_ram=wm.use_ram, image_loss=wm.image_loss, cnn_depth=wm.cnn_depth,
      mlp_layers=wm.mlp_layers, mlp_units=wm.mlp_units, deter=wm.deter, stoch=wm.stoch,
      classes=wm.classes, unimix=wm.unimix, latent_grad=wm.latent_grad,
      reward_bins=wm.reward_bins, dex_probe=bool(wm.get('dex_probe', False)))


def init_params(model, key, ram_size):
  """Fresh parameters for `model` given the RAM feature count R."""
  h, w = model.image_size
  frame = jnp.zeros((1, h, w), jnp.uint8)
  ram = jnp.zeros((1, ram_size), jnp.float32)
  zeros = jnp.zeros((1,), jnp.int32)
  # Compiled: op-by-op initialisation dispatches thousands of small ops and is ~10x slower.
  @jax.jit
  def init(key):
    init_key, sample_key = jax.random.split(key)
    return model.init(init_key, frame, ram, zeros, zeros.astype(bool), sample_key)
  return init(key)


def initial_carry(model, batch_size):
  """The start-of-episode carry {deter [B, D], stoch [B, S, K]} (zeros)."""
  return dict(deter=jnp.zeros((batch_size, model.deter), jnp.float32),
              stoch=jnp.zeros((batch_size, model.stoch, model.classes), jnp.float32))


def observe(model, params, embed, action, is_first, carry, key, temp=1.0, unroll=1, mode=False):
  """Posterior over a sequence.

  Args:
    embed: [B, T, E]; action: int [B, T], the action taken into each step (0 at episode starts);
    is_first: bool [B, T]; carry: the state before step 0; key: PRNG key; temp: Gumbel temperature;
    mode: take the posterior's most likely latent at every step instead of sampling it.

  Returns:
    (last carry, states {deter [B, T, D], stoch [B, T, S, K]}, post log-probs [B, T, S, K],
     prior log-probs [B, T, S, K]).
  """
  b, t = action.shape
  if embed.shape[:2] != (b, t) or is_first.shape != (b, t):
    raise ValueError(f'observe: embed {embed.shape}, action {action.shape}, is_first '
                     f'{is_first.shape} must share [B, T]')

  def step(carry, inputs):
    e, a, f, k = inputs
    carry, post, prior = model.apply(params, carry, e, a, f, k, temp, mode,
                                     method=WorldModel.obs_step)
    return carry, (carry, post, prior)

  keys = jax.random.split(key, t)
  swap = lambda x: jnp.swapaxes(x, 0, 1)
  carry, (states, post, prior) = jax.lax.scan(
      step, carry, (swap(embed), swap(action), swap(is_first), keys), unroll=unroll)
  return carry, jax.tree_util.tree_map(swap, states), swap(post), swap(prior)


def imagine(model, params, carry, action, key, temp=1.0, unroll=1, mode=False):
  """Prior rollout from `carry` with the given actions int [B, H] ->
  (last carry, states {deter [B, H, D], stoch [B, H, S, K]}, prior log-probs [B, H, S, K]).

  mode=True follows each step's most likely latent instead of sampling (see `RSSM.img_step`).
  """
  def step(carry, inputs):
    a, k = inputs
    carry, prior = model.apply(params, carry, a, k, temp, mode, method=WorldModel.img_step)
    return carry, (carry, prior)

  keys = jax.random.split(key, action.shape[1])
  swap = lambda x: jnp.swapaxes(x, 0, 1)
  carry, (states, prior) = jax.lax.scan(step, carry, (swap(action), keys), unroll=unroll)
  return carry, jax.tree_util.tree_map(swap, states), swap(prior)

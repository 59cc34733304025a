"""The world-model loss: image, reward, continue and RAM-probe prediction + balanced KL with free bits."""

import jax
import jax.numpy as jnp
import optax

from dreamer_jax.world_model import data as data_lib
from dreamer_jax.world_model import heads as heads_lib
from dreamer_jax.world_model import model as model_lib
from dreamer_jax.world_model import rssm as rssm_lib
from dreamer_jax.world_model.rssm import feature


def categorical_kl(lhs_logp, rhs_logp):
  """KL(lhs || rhs) of S independent categoricals given as log-probs [..., S, K] -> [...]."""
  return jnp.sum(jnp.exp(lhs_logp) * (lhs_logp - rhs_logp), axis=(-2, -1))


def kl_balance(post, prior, free_nats, dyn_scale, rep_scale):
  """DreamerV3's balanced KL with free bits, per step.

  dyn = KL(sg(post) || prior) trains the prior towards the posterior; rep = KL(post || sg(prior))
  keeps the posterior predictable. Each is clamped below at `free_nats` (no gradient while below).

  Args:
    post, prior: log-probs [..., S, K].

  Returns:
    (loss [...], dict of the unclamped dyn and rep and the clamped dyn_clamped and rep_clamped [...];
     loss = dyn_scale * dyn_clamped + rep_scale * rep_clamped).
  """
  sg = jax.lax.stop_gradient
  dyn = categorical_kl(sg(post), prior)
  rep = categorical_kl(post, sg(prior))
  dyn_clamped, rep_clamped = jnp.maximum(dyn, free_nats), jnp.maximum(rep, free_nats)
  loss = dyn_scale * dyn_clamped + rep_scale * rep_clamped
  return loss, dict(dyn=dyn, rep=rep, dyn_clamped=dyn_clamped, rep_clamped=rep_clamped)


def image_loss(pred, target, kind):
  """Summed over pixels -> [N]. pred [N, H, W, 4] logits ('categorical') or [N, H, W] ('mse');
  target uint8 shades [N, H, W]."""
  if kind == 'categorical':
    return heads_lib.cross_entropy(pred, target).sum((-2, -1))
  return jnp.square(pred - target.astype(jnp.float32) / 3.0).sum((-2, -1))


def prior_probe_loss(model, params, deter, prior, targets, is_first, key, temp):
  """The RAM probes read from the one-step *prior* state, against the true targets -> [N].

  Args:
    deter [N, D] and prior log-probs [N, S, K] of N steps; targets: the probe targets, each [N, ...];
    is_first bool [N]; key: PRNG key for the prior sample; temp: Gumbel temperature.

  The prior state is what imagination runs on: the same h as the posterior and a latent sampled
  from the prior (straight-through). The heads are trained on posterior states, so nothing else asks
  the prior's latent to carry the game quantities in the form the probes read; this term does,
  which is what keeps imagined positions, maps and battles readable over long rollouts. Steps at an
  episode start (whose prior saw no history) are left out.
  """
  latent = rssm_lib.sample_latent(prior, key, model.latent_grad, temp)
  probes = model.apply(params, feature(dict(deter=deter, stoch=latent)),
                       method=model_lib.WorldModel.probes)
  loss = heads_lib.probe_loss(probes, targets)
  return loss * (1.0 - is_first.astype(loss.dtype))


def loss_fn(model, params, batch, key, temp, hp, unroll=1):
  """The scalar world-model loss for a prepared batch (`data.prepare_batch`, as jnp arrays).

  Args:
    model: a `WorldModel`; hp: dict with kl_dyn, kl_rep, free_nats and scales {image, reward, cont,
      ram_probe, and optionally prior_probe} (plain floats, or scalar arrays); a plain 0 (or no)
      prior_probe leaves that term out; temp: Gumbel temperature (a traced scalar).

  Returns:
    (loss, (metrics dict of scalars, states {deter [B, T, D], stoch [B, T, S, K]})). The metrics
    hold every part of the loss: loss = kl_dyn * kl_dyn_clamped + kl_rep * kl_rep_clamped
    + sum over the scales of scale * <name>_loss.
  """
  b, t = batch['action'].shape
  frame = data_lib.downsample(batch['frame'], model.image_size)
  flat = lambda x: x.reshape((b * t,) + x.shape[2:])
  embed = model.apply(params, flat(frame), flat(batch['ram']), method=model_lib.WorldModel.encode)
  carry = model_lib.initial_carry(model, b)
  _, states, post, prior = model_lib.observe(
      model, params, embed.reshape(b, t, -1), batch['action'], batch['is_first'], carry, key, temp,
      unroll)
  out = model.apply(params, flat(feature(states)), method=model_lib.WorldModel.heads)
  scales = hp['scales']
  probe_targets = jax.tree_util.tree_map(flat, batch['probes'])
  terms = dict(
      image=image_loss(out['image'], flat(frame), model.image_loss),
      reward=heads_lib.twohot_loss(out['reward'], flat(batch['reward'])),
      cont=optax.sigmoid_binary_cross_entropy(out['cont'], flat(batch['cont'])),
      ram_probe=heads_lib.probe_loss(out['probes'], probe_targets),
  )
  # A plain 0 skips the term's second pass of the probe head. An array scale may be traced (scales
  # varied under one compiled function) and cannot be compared with 0, so it keeps the term.
  prior_probe_scale = scales.get('prior_probe', 0.0)
  if not isinstance(prior_probe_scale, (int, float)) or prior_probe_scale:
    terms['prior_probe'] = prior_probe_loss(
        model, params, flat(states['deter']), flat(prior), probe_targets, flat(batch['is_first']),
        jax.random.fold_in(key, 1), temp)
  kl, kl_terms = kl_balance(post, prior, hp['free_nats'], hp['kl_dyn'], hp['kl_rep'])
  loss = kl.mean() + sum(scales[k] * v.mean() for k, v in terms.items())
  metrics = {f'{k}_loss': v.mean() for k, v in terms.items()}
  metrics.update({f'kl_{k}': v.mean() for k, v in kl_terms.items()}, loss=loss)
  return loss, (metrics, states)

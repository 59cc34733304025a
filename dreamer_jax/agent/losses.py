"""Actor objectives (DreamerV3 REINFORCE, PPO clip, GRPO), behaviour cloning, and the KL to the clone.

Every actor loss takes per-decision tensors [N, H] and a weight [N, H] (the continue product from
`returns.trajectory_weight`) and returns a scalar to minimise; an entropy bonus enters all three
with the same sign (it is subtracted from the loss, so a higher entropy lowers it).
"""

import jax
import jax.numpy as jnp

sg = jax.lax.stop_gradient
ACTOR_LOSSES = ('reinforce', 'ppo', 'grpo')


def weighted_mean(x, weight):
  return jnp.sum(x * weight) / jnp.maximum(jnp.sum(weight), 1e-8)


def reinforce_loss(logp_a, adv, ent, weight, ent_coef):
  """DreamerV3: −w [log π(a|s) sg(A) + η H[π]] with A = (R − v) / scale."""
  return -weighted_mean(logp_a * sg(adv) + ent_coef * ent, weight)


def ppo_loss(logp_a, old_logp_a, adv, ent, weight, clip, ent_coef):
  """PPO's clipped surrogate: −w [min(ρ A, clip(ρ, 1 − ε, 1 + ε) A) + η H[π]], ρ = π / π_old.

  Returns (loss, fraction of decisions whose ratio was clipped).
  """
  ratio = jnp.exp(logp_a - sg(old_logp_a))
  adv = sg(adv)
  surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * adv)
  clipped = (jnp.abs(ratio - 1.0) > clip).astype(jnp.float32)
  return -weighted_mean(surrogate + ent_coef * ent, weight), weighted_mean(clipped, weight)


def grpo_advantages(returns, group_size, eps=1e-6):
  """Group-relative advantages: G rollouts per start state, each scored by its return from the
  start, normalised within its group; every decision of a rollout shares its rollout's advantage.

  Args:
    returns: λ-returns [N, H] with N = S * G, the G rollouts of start state i at rows i*G..i*G+G-1;
      R_0 already bootstraps from the critic at H, which a 15-step horizon needs.
  Returns:
    advantages [N, H].
  """
  n, h = returns.shape
  if n % group_size:
    raise ValueError(f'grpo_advantages: {n} rollouts are not a multiple of the group size '
                     f'{group_size}')
  r0 = returns[:, 0].reshape(n // group_size, group_size)
  adv = (r0 - r0.mean(1, keepdims=True)) / (r0.std(1, keepdims=True) + eps)
  return jnp.broadcast_to(adv.reshape(n, 1), (n, h))


def bc_loss(logp, label, mask):
  """Cross-entropy of actor log-probs [N, A] against expert labels int [N], where mask [N] (bool)
  -> (loss, accuracy of the argmax on the masked steps)."""
  m = mask.astype(jnp.float32)
  onehot = jax.nn.one_hot(label, logp.shape[-1], dtype=logp.dtype)
  nll = -jnp.sum(onehot * logp, -1)
  correct = (jnp.argmax(logp, -1) == label).astype(jnp.float32)
  return weighted_mean(nll, m), weighted_mean(correct, m)


def kl_to_prior(logp, prior_logp):
  """KL(π || π_prior) [...] of log-probs [..., A]: keeps the actor near the frozen clone (Dreamer 4
  uses this reverse KL beside the advantage term)."""
  return jnp.sum(jnp.exp(logp) * (logp - sg(prior_logp)), -1)

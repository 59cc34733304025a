"""Imagination: the actor drives the world model's prior for H steps, in one `lax.scan`.

Only the RSSM's prior step and the reward, continue and probe heads run here; the image decoder
never does (it costs ~25x the reward head). Everything the rollout returns is stop-gradient: the
actor-critic losses recompute the actor's log-probabilities from the stored features, so no
actor-critic gradient can reach the world model.
"""

import jax
import jax.numpy as jnp

from dreamer_jax.agent import networks
from dreamer_jax.world_model import heads as heads_lib
from dreamer_jax.world_model import model as model_lib
from dreamer_jax.world_model import rssm as rssm_lib


def rollout(wm, wm_params, actor, actor_params, start, goal_vec, key, horizon, temp=1.0):
  """Imagines `horizon` steps from `start` under the actor.

  Args:
    wm: a `WorldModel`; actor: an `Actor`; start: a carry {deter [N, D], stoch [N, S, K]};
    goal_vec: float32 [N, G] (held fixed over the rollout); key: PRNG key.

  Returns:
    dict: feat [N, H+1, F] (s_0..s_H), action int32 [N, H], logp [N, H] (log π_old(a_t|s_t)),
    entropy [N, H]; all stop-gradient.
  """
  sg = jax.lax.stop_gradient
  start = jax.tree_util.tree_map(sg, start)
  wm_params = sg(wm_params)

  def step(carry, k):
    act_key, img_key = jax.random.split(k)
    feat = rssm_lib.feature(carry)
    logp = actor.apply(actor_params, feat, goal_vec)
    action = jax.random.categorical(act_key, logp, -1)
    carry, _ = wm.apply(wm_params, carry, action, img_key, temp,
                        method=model_lib.WorldModel.img_step)
    return carry, (feat, action, networks.log_prob(logp, action), networks.entropy(logp))

  last, (feats, actions, logps, ents) = jax.lax.scan(step, start, jax.random.split(key, horizon))
  swap = lambda x: jnp.swapaxes(x, 0, 1)
  feat = jnp.concatenate([swap(feats), rssm_lib.feature(last)[:, None]], 1)
  return sg(dict(feat=feat, action=swap(actions).astype(jnp.int32), logp=swap(logps),
                 entropy=swap(ents)))


def predict(wm, wm_params, feat):
  """The reward, continue and probe heads on features [N, T, F] (no decoder) ->
  (reward [N, T] in raw units, continue probability [N, T], probe outputs [N, T, ...])."""
  out = wm.apply(jax.lax.stop_gradient(wm_params), feat, method=model_lib.WorldModel.scalar_heads)
  return heads_lib.twohot_decode(out['reward']), jax.nn.sigmoid(out['cont']), out['probes']

"""λ-returns over imagined trajectories and DreamerV3's percentile return scale.

An imagined trajectory has states s_0..s_H (s_0 the start), actions a_0..a_{H-1}, and for t = 1..H the
predicted reward r_t and continue probability c_t of arriving at s_t. With values v_0..v_H:

  R_t = r_{t+1} + γ c_{t+1} [(1 − λ) v_{t+1} + λ R_{t+1}],   R_H = v_H,

computed for t = 0..H-1 as one reverse `lax.scan`.
"""

import jax
import jax.numpy as jnp


def lambda_returns(reward, cont, value, gamma, lam):
  """reward, cont [B, H] (of arriving at s_1..s_H), value [B, H+1] (of s_0..s_H) -> R [B, H]."""
  b, h = reward.shape
  if cont.shape != (b, h) or value.shape != (b, h + 1):
    raise ValueError(f'lambda_returns: reward {reward.shape}, cont {cont.shape} must be [B, H] and '
                     f'value {value.shape} [B, H+1]')
  disc = gamma * cont

  def step(next_return, inputs):
    r, d, v = inputs
    ret = r + d * ((1.0 - lam) * v + lam * next_return)
    return ret, ret

  swap = lambda x: jnp.swapaxes(x, 0, 1)
  _, rets = jax.lax.scan(step, value[:, -1], (swap(reward), swap(disc), swap(value[:, 1:])),
                         reverse=True)
  return swap(rets)


def trajectory_weight(cont):
  """How much each start-to-t step counts: 1 at t = 0, then the product of continues c_1..c_t.
  cont [B, H] -> weights [B, H] for the decisions at s_0..s_{H-1} (no gradient)."""
  ones = jnp.ones_like(cont[:, :1])
  return jax.lax.stop_gradient(jnp.cumprod(jnp.concatenate([ones, cont[:, :-1]], 1), 1))


def init_scale():
  """The percentile tracker's state: EMAs of the 5th and 95th return percentiles."""
  return dict(lo=jnp.zeros((), jnp.float32), hi=jnp.zeros((), jnp.float32))


def update_scale(state, returns, rate=0.01, lo_pct=5.0, hi_pct=95.0):
  """One EMA step of the return percentiles -> (new state, scale = max(1, hi − lo))."""
  lo = jnp.percentile(returns, lo_pct)
  hi = jnp.percentile(returns, hi_pct)
  state = dict(lo=(1 - rate) * state['lo'] + rate * lo, hi=(1 - rate) * state['hi'] + rate * hi)
  return state, jnp.maximum(1.0, state['hi'] - state['lo'])

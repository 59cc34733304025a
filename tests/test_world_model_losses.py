"""World-model losses: the total and its scaled parts, two-hot, cross-entropy, probe and image terms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import v3
from dreamer_jax.world_model import data
from dreamer_jax.world_model import heads
from dreamer_jax.world_model import losses
from dreamer_jax.world_model import model as model_lib

RAM = 39
SCALES = ('image', 'reward', 'cont', 'ram_probe', 'prior_probe')
# Distinct values, so a scale applied to the wrong part changes the total. image's is small because
# its part is ~8,000 nats (5,760 pixels at ~ln 4): total differences then keep float32 precision.
BASE = dict(kl_dyn=0.5, kl_rep=0.1, free_nats=0.0, image=1e-3, reward=2.0, cont=3.0,
            ram_probe=0.5, prior_probe=0.25)
# The metric that holds each hyper-parameter's part of the loss.
PART = dict(kl_dyn='kl_dyn_clamped', kl_rep='kl_rep_clamped',
            **{k: f'{k}_loss' for k in SCALES})


def _batch(b, t):
  return jax.tree_util.tree_map(jnp.asarray, data.prepare_batch(
      data.synthetic_batch(np.random.default_rng(0), b, t, ram_size=RAM)))


@pytest.fixture(scope='module')
def small():
  model = model_lib.from_config(v3.get_config('small').world_model)
  return model, model_lib.init_params(model, jax.random.PRNGKey(0), RAM)


@pytest.fixture(scope='module')
def total(small):
  """The ':small' model's loss and metrics on a fixed key, as a compiled function of the
  hyper-parameter values (BASE with `changes`), the parameters and a [2, 4] batch (by default the
  fixture's): one compile serves them all."""
  model, params = small
  default_batch = _batch(2, 4)

  @jax.jit
  def run(params, batch, values):
    hp = dict(kl_dyn=values['kl_dyn'], kl_rep=values['kl_rep'], free_nats=values['free_nats'],
              scales={k: values[k] for k in SCALES})
    loss, (metrics, _) = losses.loss_fn(model, params, batch, jax.random.PRNGKey(3), 1.0, hp)
    return loss, metrics

  def call(params=params, batch=default_batch, **changes):
    values = {k: jnp.float32(v) for k, v in dict(BASE, **changes).items()}
    loss, metrics = run(params, batch, values)
    return float(loss), {k: float(v) for k, v in metrics.items()}
  return call


def test_loss_is_the_sum_of_its_scaled_parts(total):
  loss, metrics = total()
  parts = {k: metrics[PART[k]] for k in PART}
  assert all(v > 1e-3 for v in parts.values()), parts   # Every part counts, so none goes unseen.
  # free_nats = 0: the clamp leaves the KLs as they are.
  assert metrics['kl_dyn_clamped'] == pytest.approx(metrics['kl_dyn'], rel=1e-6)
  assert metrics['kl_rep_clamped'] == pytest.approx(metrics['kl_rep'], rel=1e-6)
  # The reward head's output layer starts at zero: uniform over 255 bins, ln 255 = 5.5413 nats
  # whatever the reward.
  assert metrics['reward_loss'] == pytest.approx(np.log(255), rel=1e-5)
  expected = sum(BASE[k] * parts[k] for k in PART)
  assert loss == pytest.approx(expected, rel=1e-5)
  assert metrics['loss'] == loss


@pytest.mark.parametrize('name', tuple(PART))
def test_loss_follows_each_scale(total, name):
  # The loss is linear in every scale: one more unit of a scale adds exactly its part.
  loss, metrics = total()
  bumped, _ = total(**{name: BASE[name] + 1.0})
  assert bumped - loss == pytest.approx(metrics[PART[name]], rel=1e-3, abs=1e-4)


def test_free_nats_clamp_the_kl_inside_the_loss(total):
  loss, metrics = total()
  clamped_loss, clamped = total(free_nats=100.0)
  # Both KLs (well under 100 nats for an untrained model) count as 100 nats:
  # the KL part becomes (0.5 + 0.1) * 100 = 60; the unclamped metrics are unchanged.
  assert clamped['kl_dyn_clamped'] == clamped['kl_rep_clamped'] == 100.0
  assert clamped['kl_dyn'] == pytest.approx(metrics['kl_dyn'], rel=1e-6)
  kl_part = 0.5 * metrics['kl_dyn'] + 0.1 * metrics['kl_rep']
  assert clamped_loss == pytest.approx(loss - kl_part + 60.0, rel=1e-5)


def test_each_part_scores_the_batch_s_own_targets(small, total):
  # Every head made constant: the output layers' kernels 0, their biases chosen below, so each part
  # is worked out from the targets alone. The [2, 4] synthetic batch: every frame 5,696 pixels of
  # shade 0 and one 8x8 square of shade 3; map 3, not in battle, no dialog, no badges, full HP.
  _, params = small
  log = lambda p: jnp.log(jnp.asarray(p, jnp.float32))
  # Image: shades (1/2, 1/6, 1/6, 1/6), on each of the 2x2 pixels the last layer's 16 outputs make:
  # 5696 ln 2 + 64 ln 6 = 3948.1666 + 114.6726 per frame.
  image = log(np.tile([1 / 2, 1 / 6, 1 / 6, 1 / 6], 4))
  # Reward: 1/2 on bin 127 (symlog 0), 1/4 on bin 254 (symlog 20, where rewards of e^20 - 1 and
  # more clip), 1/(4 * 253) on each other bin. Rewards: 6 of the 8 steps 0 (-ln 1/2), 2 of them
  # 1e9 (-ln 1/4): (6 + 2 * 2) ln 2 / 8 = 1.25 ln 2.
  reward = np.full(255, 1 / (4 * 253))
  reward[127], reward[254] = 1 / 2, 1 / 4
  # Continue: logit ln 3 (p = 3/4). Flags: 6 steps 1 (-ln 3/4), 2 steps 0 (-ln 1/4).
  # Probes: map_id 1/2 on map 3 (ln 2); x and y uniform (ln 256 each); in_battle (1/2, 1/4, 1/4)
  # (ln 2 for 'none'); dialog logit -ln 3 (p(open) = 1/4: -ln 3/4 = 0.287682); badges logits 0
  # (8 ln 2); party_hp_frac 0.5 ((0.5 - 1)^2 = 0.25); species owned uniform over 0..151 (ln 152):
  # 26 ln 2 + 0.287682 + 0.25 + ln 152 = 23.583412.
  map_id = np.full(256, 1 / (2 * 255))
  map_id[3] = 1 / 2
  biases = {('decoder', 'Dense_4'): image, ('reward_head', 'Dense_0'): log(reward),
            ('cont_head', 'Dense_0'): log([3.0]),
            ('probe_head', 'Dense_0'): log(map_id), ('probe_head', 'Dense_1'): jnp.zeros(256),
            ('probe_head', 'Dense_2'): jnp.zeros(256),
            ('probe_head', 'Dense_3'): log([1 / 2, 1 / 4, 1 / 4]),
            ('probe_head', 'Dense_4'): log([1 / 3]), ('probe_head', 'Dense_5'): jnp.zeros(8),
            ('probe_head', 'Dense_6'): jnp.full((1,), 0.5),
            ('probe_head', 'Dense_7'): jnp.zeros(152)}

  def constant(path, x):
    layer = tuple(p.key for p in path[1:3])
    if layer not in biases:
      return x
    return jnp.zeros_like(x) if path[3].key == 'kernel' else biases[layer]
  params = jax.tree_util.tree_map_with_path(constant, params)
  batch = dict(_batch(2, 4), reward=jnp.array([[0, 1e9, 0, 0], [0, 0, 0, 1e9]]),
               cont=jnp.array([[1.0, 1, 0, 1], [1, 0, 1, 1]]))
  _, metrics = total(params, batch)
  ln2 = np.log(2)
  assert metrics['image_loss'] == pytest.approx(5696 * ln2 + 64 * np.log(6), rel=1e-5)
  assert metrics['reward_loss'] == pytest.approx(1.25 * ln2, rel=1e-5)
  assert metrics['cont_loss'] == pytest.approx((6 * -np.log(0.75) + 2 * np.log(4)) / 8, rel=1e-5)
  probe = 26 * ln2 - np.log(0.75) + 0.25 + np.log(152)
  assert metrics['ram_probe_loss'] == pytest.approx(probe, rel=1e-5)
  # The prior probes read the same constant head, but not at the 2 episode starts of the 8 steps.
  assert metrics['prior_probe_loss'] == pytest.approx(6 / 8 * probe, rel=1e-5)


def test_kl_dyn_trains_the_prior_and_kl_rep_the_posterior(small):
  # The two KLs are equal in value, KL(sg(post) || prior) = KL(post || sg(prior)); only where their
  # gradients go tells kl_dyn from kl_rep. Every step is an episode start, so no prior sees an
  # earlier posterior sample, and the other parts have scale 0: kl_dyn alone moves the prior's
  # output layer and not the posterior's, kl_rep the reverse. (From the reset carry the prior's
  # input is 0, so of its output layer only the bias moves.)
  model, params = small
  batch = dict(_batch(2, 2), is_first=jnp.ones((2, 2), bool))
  scales = dict(image=0.0, reward=0.0, cont=0.0, ram_probe=0.0)
  grad = jax.jit(jax.grad(lambda p, dyn, rep: losses.loss_fn(
      model, p, batch, jax.random.PRNGKey(3), 1.0,
      dict(kl_dyn=dyn, kl_rep=rep, free_nats=0.0, scales=scales))[0]))
  moved = lambda g, layer: sum(float(np.abs(x).sum())
                              for x in jax.tree_util.tree_leaves(g['params']['rssm'][layer]))
  by_dyn, by_rep = grad(params, 1.0, 0.0), grad(params, 0.0, 1.0)
  assert moved(by_dyn, 'prior_out') > 0 and moved(by_dyn, 'post_out') == 0
  assert moved(by_rep, 'post_out') > 0 and moved(by_rep, 'prior_out') == 0


@pytest.mark.parametrize('bins', [5, 255])
def test_twohot_loss_of_uniform_logits_is_ln_bins(bins):
  # Uniform probabilities 1/K on every bin: the cross-entropy is ln K whatever the target
  # (ln 5 = 1.6094, ln 255 = 5.5413). The logits are 7, not 0: only log-probabilities give ln K.
  x = jnp.array([-1e6, -3.0, 0.0, 0.5, 147.0, 1e9])
  loss = heads.twohot_loss(jnp.full((6, bins), 7.0), x)
  np.testing.assert_allclose(loss, np.full(6, np.log(bins)), rtol=1e-6)


def test_twohot_split_by_hand():
  # Five bins: symexp(-20, -10, 0, 10, 20) = (-B, -b, 0, b, B) with b = e^10 - 1 = 22025.466,
  # B = e^20 - 1. x = b / 4 lies a quarter of the way from 0 to b: weights 0.75 on 0, 0.25 on b.
  # x = -(b + (B - b) / 4) lies a quarter of the way from -b to -B: 0.75 on -b, 0.25 on -B.
  b, big = np.expm1(10.0), np.expm1(20.0)
  x = jnp.array([b / 4, -(b + (big - b) / 4)])
  np.testing.assert_allclose(heads.twohot_encode(x, 5), [[0, 0, 0.75, 0.25, 0],
                                                          [0.25, 0.75, 0, 0, 0]], atol=1e-5)
  # Probabilities (0.1, 0.1, 0.4, 0.2, 0.2), given as unnormalised logits (+3):
  # -(0.75 ln 0.4 + 0.25 ln 0.2) = 0.75 * 0.9162907 + 0.25 * 1.6094379 = 1.0895775.
  logits = jnp.log(jnp.array([0.1, 0.1, 0.4, 0.2, 0.2])) + 3.0
  np.testing.assert_allclose(heads.twohot_loss(logits, x[0]), 1.0895775, rtol=1e-5)
  # The expectation in raw units: -0.1 B - 0.1 b + 0 + 0.2 b + 0.2 B = 0.1 (B + b).
  np.testing.assert_allclose(heads.twohot_decode(logits), 0.1 * (big + b), rtol=1e-5)


def test_twohot_decode_is_unbiased_for_sparse_rewards():
  # A +10 reward with probability 0.1 and 0 otherwise has expectation 1.0 (the symlog-space
  # decode gave symexp(0.1 * symlog(10)) = 0.27). Zero logits (a fresh head) decode to exactly 0.
  probs = 0.1 * heads.twohot_encode(jnp.array(10.0), 255) + 0.9 * heads.twohot_encode(
      jnp.array(0.0), 255)
  assert float(heads.twohot_decode(jnp.log(probs))) == pytest.approx(1.0, rel=1e-4)
  assert float(heads.twohot_decode(jnp.zeros(255))) == 0.0


def test_cross_entropy_by_hand():
  # Probabilities (0.2, 0.3, 0.5) as unnormalised logits (+1): -ln 0.5 = 0.6931, -ln 0.2 = 1.6094.
  logits = jnp.log(jnp.array([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]])) + 1.0
  np.testing.assert_allclose(heads.cross_entropy(logits, jnp.array([2, 0])),
                             [np.log(2), np.log(5)], rtol=1e-6)


def test_probe_loss_counts_every_probe():
  # Two steps. Step 0: all outputs 0. The class probes are then uniform: ln 256 each for map_id, x
  # and y (3 * 8 ln 2), ln 3 for in_battle; every Bernoulli (dialog and 8 badges) is at 1/2: 9 ln 2;
  # party_hp_frac: (0 - 0.5)^2 = 0.25. Sum 33 ln 2 + ln 3 + 0.25 = 22.873857 + 1.098612 + 0.25.
  # Step 1: the same but dialog_open's logit is ln 3 (p = 3/4, target open: -ln 0.75 = 0.287682)
  # and party_hp_frac is 0.2 ((0.2 - 0.5)^2 = 0.09): 32 ln 2 + ln 3 + 0.287682 + 0.09.
  zeros = lambda *shape: jnp.zeros((2,) + shape)
  outputs = dict(map_id=zeros(256), x=zeros(256), y=zeros(256), in_battle=zeros(3),
                 dialog_open=jnp.array([0.0, np.log(3)]), badge_bits=zeros(8),
                 party_hp_frac=jnp.array([0.0, 0.2]))
  targets = dict(map_id=jnp.array([3, 3]), x=jnp.array([5, 6]), y=jnp.array([7, 0]),
                 in_battle=jnp.array([2, 0]), dialog_open=jnp.array([True, True]),
                 badge_bits=jnp.array([[True, False] * 4] * 2), party_hp_frac=jnp.array([0.5, 0.5]))
  ln2, ln3 = np.log(2), np.log(3)
  expected = [33 * ln2 + ln3 + 0.25, 32 * ln2 + ln3 - np.log(0.75) + 0.09]
  np.testing.assert_allclose(heads.probe_loss(outputs, targets), expected, rtol=1e-6)


def test_image_loss_by_hand():
  # Categorical: uniform logits over 4 shades cost ln 4 per pixel; 2x2 pixels: 4 ln 4 = 5.5452.
  target = jnp.array([[[0, 3], [1, 2]]], jnp.uint8)
  np.testing.assert_allclose(losses.image_loss(jnp.zeros((1, 2, 2, 4)), target, 'categorical'),
                             [4 * np.log(4)], rtol=1e-6)
  # mse against shades / 3 (0, 1, 1/3, 2/3): (0 - 0)^2 + (1 - 1)^2 + (0 - 1/3)^2 + (1 - 2/3)^2 = 2/9.
  pred = jnp.array([[[0.0, 1.0], [0.0, 1.0]]])
  np.testing.assert_allclose(losses.image_loss(pred, target, 'mse'), [2 / 9], rtol=1e-6)

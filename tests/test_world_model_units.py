"""World model units: shapes, two-hot, symlog, KL balancing and free bits, latent gradients, data;
the RSSM's episode resets, inputs, unimix, feature layout and most likely latents."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import v3
from dreamer_jax.errors import UserError
from dreamer_jax.world_model import data
from dreamer_jax.world_model import heads
from dreamer_jax.world_model import losses
from dreamer_jax.world_model import model as model_lib
from dreamer_jax.world_model import networks
from dreamer_jax.world_model import rssm
from dreamer_jax.world_model.evaluate import model_size

RAM = 39


@pytest.fixture(scope='module')
def small():
  wm = v3.get_config('small').world_model
  model = model_lib.from_config(wm)
  return wm, model, model_lib.init_params(model, jax.random.PRNGKey(0), RAM)


def test_sequence_and_head_shapes(small):
  wm, model, params = small
  b, t, h = 3, 5, 4
  batch = data.prepare_batch(data.synthetic_batch(np.random.default_rng(0), b, t, ram_size=RAM))
  frame = data.downsample(batch['frame'], wm.image_size)
  assert frame.shape == (b, t, 72, 80)
  embed = model.apply(params, frame.reshape(b * t, 72, 80), batch['ram'].reshape(b * t, RAM),
                      method=model_lib.WorldModel.encode).reshape(b, t, -1)
  carry = model_lib.initial_carry(model, b)
  last, states, post, prior = model_lib.observe(
      model, params, embed, batch['action'], batch['is_first'], carry, jax.random.PRNGKey(1))
  assert states['deter'].shape == (b, t, wm.deter)
  assert states['stoch'].shape == post.shape == prior.shape == (b, t, wm.stoch, wm.classes)
  np.testing.assert_allclose(np.exp(post).sum(-1), 1.0, rtol=1e-5)
  _, imagined, _ = model_lib.imagine(model, params, last, jnp.zeros((b, h), jnp.int32),
                                     jax.random.PRNGKey(2))
  feat = rssm.feature(imagined)
  assert feat.shape == (b, h, wm.deter + wm.stoch * wm.classes)
  out = model.apply(params, feat.reshape(b * h, -1), method=model_lib.WorldModel.heads)
  assert out['image'].shape == (b * h, 72, 80, 4)
  assert out['reward'].shape == (b * h, wm.reward_bins)
  assert out['cont'].shape == (b * h,)
  assert out['probes']['x'].shape == (b * h, 256)
  assert out['probes']['badge_bits'].shape == (b * h, 8)


def test_a_model_trained_on_a_shorter_ram_layout_reads_its_prefix(small):
  # The RAM vector only grows at its end: a model that knows R features, given today's longer
  # vector, encodes exactly what it encoded before; without ram_size the longer vector is a misfit.
  _, model, params = small
  rng = np.random.default_rng(0)
  frame = rng.integers(0, 4, (2, 72, 80)).astype(np.uint8)
  ram = rng.random((2, RAM + 6)).astype(np.float32)
  encode = lambda m, r: m.apply(params, frame, r, method=model_lib.WorldModel.encode)
  np.testing.assert_array_equal(encode(model.clone(ram_size=RAM), ram), encode(model, ram[:, :RAM]))
  with pytest.raises(Exception):
    encode(model, ram)


def test_default_model_feature_width_and_size():
  wm = v3.get_config().world_model
  model = model_lib.from_config(wm)
  params = jax.eval_shape(lambda: model_lib.init_params(model, jax.random.PRNGKey(0), RAM))
  assert wm.deter + wm.stoch * wm.classes == 1536  # The actor's input width.
  assert model_size(params)['megabytes_f32'] < 200


def test_full_resolution_and_mse_decoder_shapes():
  wm = v3.get_config('small').world_model
  wm.image_size, wm.image_loss, wm.use_ram = (144, 160), 'mse', False
  model = model_lib.from_config(wm)
  params = model_lib.init_params(model, jax.random.PRNGKey(0), RAM)
  out = model.apply(params, jnp.zeros((2, model.deter + model.stoch * model.classes)),
                    method=model_lib.WorldModel.heads)
  assert out['image'].shape == (2, 144, 160)


def test_bad_config_value_is_a_user_error():
  wm = v3.get_config('small').world_model
  wm.latent_grad = 'reinforce'
  with pytest.raises(UserError, match='latent_grad'):
    model_lib.from_config(wm)


def test_symlog_inverts():
  x = jnp.array([-1e6, -42.0, -1.0, 0.0, 1e-3, 3.5, 1e8])
  np.testing.assert_allclose(networks.symexp(networks.symlog(x)), x, rtol=1e-5)


def test_twohot_round_trip():
  x = jnp.array([-2500.0, -3.25, -0.1, 0.0, 0.7, 12.0, 3e5])
  weights = heads.twohot_encode(x, 255)
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
  assert int((weights > 0).sum(-1).max()) <= 2
  np.testing.assert_allclose(heads.twohot_decode(jnp.log(weights)), x, rtol=1e-3, atol=1e-5)


def test_kl_balancing_matches_hand_computation():
  # One categorical of 2 classes: post (0.5, 0.5), prior (0.25, 0.75).
  # KL(post || prior) = 0.5 ln(0.5 / 0.25) + 0.5 ln(0.5 / 0.75) = 0.5 ln(4 / 3) = 0.1438410.
  post = jnp.log(jnp.array([[0.5, 0.5]]))
  prior = jnp.log(jnp.array([[0.25, 0.75]]))
  kl = 0.5 * np.log(4 / 3)
  loss, terms = losses.kl_balance(post, prior, free_nats=0.0, dyn_scale=0.5, rep_scale=0.1)
  np.testing.assert_allclose(terms['dyn'], kl, rtol=1e-6)
  np.testing.assert_allclose(loss, 0.6 * kl, rtol=1e-6)
  # dyn trains only the prior, rep only the posterior.
  grad_post, grad_prior = jax.grad(
      lambda q, p: losses.kl_balance(q, p, 0.0, 1.0, 0.0)[0], argnums=(0, 1))(post, prior)
  assert not np.any(grad_post) and np.any(grad_prior)
  grad_post, grad_prior = jax.grad(
      lambda q, p: losses.kl_balance(q, p, 0.0, 0.0, 1.0)[0], argnums=(0, 1))(post, prior)
  assert np.any(grad_post) and not np.any(grad_prior)


def test_free_bits_clamp_the_loss_and_stop_its_gradient():
  post = jnp.log(jnp.array([[0.5, 0.5]]))
  prior = jnp.log(jnp.array([[0.25, 0.75]]))
  loss_fn = lambda q, p: losses.kl_balance(q, p, free_nats=1.0, dyn_scale=0.5, rep_scale=0.1)[0]
  np.testing.assert_allclose(loss_fn(post, prior), 0.6 * 1.0, rtol=1e-6)
  grads = jax.grad(loss_fn, argnums=(0, 1))(post, prior)
  assert not any(np.any(g) for g in grads)
  far = jnp.log(jnp.array([[0.01, 0.99]]))  # KL(post || far) = 0.5 ln(0.5/0.01) + ... > 1 nat.
  assert float(loss_fn(post, far)) > 0.6


@pytest.mark.parametrize('latent_grad', rssm.LATENT_GRADS)
def test_latent_samples_are_one_hot_with_gradients(latent_grad):
  logits = jax.random.normal(jax.random.PRNGKey(0), (4, 32, 32))
  weights = jax.random.normal(jax.random.PRNGKey(1), (4, 32, 32))
  sample = rssm.sample_latent(logits, jax.random.PRNGKey(2), latent_grad, 0.7)
  np.testing.assert_allclose(sample.sum(-1), 1.0, rtol=1e-5)
  assert set(np.unique(np.round(np.asarray(sample), 5))) <= {0.0, 1.0}
  grad = jax.grad(lambda l: jnp.sum(
      rssm.sample_latent(l, jax.random.PRNGKey(2), latent_grad, 0.7) * weights))(logits)
  assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_gumbel_temperature_anneals_linearly_then_holds():
  temp = lambda s: float(rssm.gumbel_temperature(s, 1.0, 0.5, 100))
  assert temp(0) == 1.0 and temp(50) == pytest.approx(0.75) and temp(100) == temp(10**6) == 0.5


def test_downsample_keeps_the_darkest_shade():
  frame = np.zeros((1, 144, 160), np.uint8)
  frame[0, 1, 3] = 3   # a 1-pixel dark dot survives...
  frame[0, 10, 10:12] = 1
  out = np.asarray(data.downsample(frame, (72, 80)))
  assert out.shape == (1, 72, 80) and out[0, 0, 1] == 3 and out[0, 5, 5] == 1
  assert out.sum() == 4


def test_actions_are_shifted_into_the_next_step():
  action = np.array([[5, 6, 7, 1]])
  is_first = np.array([[True, False, True, False]])
  np.testing.assert_array_equal(data.action_into(action, is_first), [[0, 5, 0, 7]])


def test_mode_rollouts_are_the_model_s_best_guess(small):
  _, model, params = small
  carry = model_lib.initial_carry(model, 2)
  action = jnp.array([[1, 2, 3], [0, 4, 5]], jnp.int32)
  run = lambda seed, mode: model_lib.imagine(model, params, carry, action,
                                             jax.random.PRNGKey(seed), mode=mode)
  (_, a, prior), (_, b, _) = run(0, True), run(1, True)
  np.testing.assert_array_equal(a['stoch'], b['stoch'])     # No sampling: the key does not matter.
  np.testing.assert_array_equal(a['stoch'], jax.nn.one_hot(jnp.argmax(prior, -1), model.classes))
  sampled = [run(seed, False)[1]['stoch'] for seed in (0, 1)]
  assert np.any(sampled[0] != sampled[1])
  embed = model.apply(params, jnp.ones((6, 72, 80), jnp.uint8), jnp.zeros((6, RAM)),
                      method=model_lib.WorldModel.encode).reshape(2, 3, -1)
  first = jnp.array([[True, False, False]] * 2)
  seen = lambda seed: model_lib.observe(model, params, embed, action, first, carry,
                                        jax.random.PRNGKey(seed), mode=True)[1]['stoch']
  np.testing.assert_array_equal(seen(0), seen(1))


def test_prior_probe_loss_skips_episode_starts_and_trains_the_prior(small):
  wm, model, params = small
  batch = jax.tree_util.tree_map(jnp.asarray, data.prepare_batch(
      data.synthetic_batch(np.random.default_rng(0), 2, 6, ram_size=RAM)))
  hp = lambda scale: dict(kl_dyn=0.5, kl_rep=0.1, free_nats=1.0,
                          scales=dict(image=1.0, reward=1.0, cont=1.0, ram_probe=1.0,
                                      prior_probe=scale))
  key = jax.random.PRNGKey(3)
  _, (metrics, states) = losses.loss_fn(model, params, batch, key, 1.0, hp(1.0))
  assert float(metrics['prior_probe_loss']) > 0
  _, (off, _) = losses.loss_fn(model, params, batch, key, 1.0, hp(0.0))
  assert 'prior_probe_loss' not in off
  carry = model_lib.initial_carry(model, 2)
  embed = model.apply(params, data.downsample(batch['frame'], wm.image_size).reshape(12, 72, 80),
                      batch['ram'].reshape(12, RAM), method=model_lib.WorldModel.encode)
  _, states, _, prior = model_lib.observe(model, params, embed.reshape(2, 6, -1), batch['action'],
                                          batch['is_first'], carry, key)
  flat = lambda x: x.reshape((12,) + x.shape[2:])
  per_step = losses.prior_probe_loss(
      model, params, flat(states['deter']), flat(prior),
      jax.tree_util.tree_map(flat, batch['probes']), flat(batch['is_first']), key, 1.0).reshape(2, 6)
  assert np.all(per_step[:, 0] == 0) and np.all(per_step[:, 1:] > 0)
  grads = jax.grad(lambda p: losses.loss_fn(model, p, batch, key, 1.0, hp(1.0))[0])(params)
  grads_off = jax.grad(lambda p: losses.loss_fn(model, p, batch, key, 1.0, hp(0.0))[0])(params)
  prior_out = lambda g: g['params']['rssm']['prior_out']['kernel']
  assert not np.allclose(prior_out(grads), prior_out(grads_off))


def _embed_width(model, params):
  shape = jax.eval_shape(lambda p: model.apply(p, jnp.zeros((1, 72, 80), jnp.uint8),
                                               jnp.zeros((1, RAM)),
                                               method=model_lib.WorldModel.encode), params)
  return shape.shape[-1]


def test_episode_start_resets_the_carry_and_the_action_into_it(small):
  # A new episode at step k = 3 of 6: from k on, observing the whole sequence must give exactly what
  # observing its suffix from the initial carry gives, whatever came before k and whatever action
  # is recorded into step k (5 here, 0 in the suffix). Most likely latents: no sampling.
  _, model, params = small
  b, t, k = 2, 6, 3
  embed = jax.random.normal(jax.random.PRNGKey(0), (b, t, _embed_width(model, params)))
  action = jnp.array([[1, 2, 3, 5, 4, 1], [3, 3, 1, 5, 2, 2]], jnp.int32)
  is_first = jnp.zeros((b, t), bool).at[:, 0].set(True).at[:, k].set(True)
  observe = lambda e, a, f: model_lib.observe(model, params, e, a, f, model_lib.initial_carry(
      model, b), jax.random.PRNGKey(1), mode=True)[1:]
  states, post, prior = observe(embed, action, is_first)
  suffix_states, suffix_post, suffix_prior = observe(
      embed[:, k:], action[:, k:].at[:, 0].set(0), is_first[:, k:])
  for name in ('deter', 'stoch'):
    np.testing.assert_allclose(states[name][:, k:], suffix_states[name], atol=1e-6, err_msg=name)
  np.testing.assert_allclose(post[:, k:], suffix_post, atol=1e-5)
  np.testing.assert_allclose(prior[:, k:], suffix_prior, atol=1e-5)
  # Without the episode start the history does reach step k (so the comparison above is not idle).
  carried, _, _ = observe(embed, action, is_first.at[:, k].set(False))
  assert not np.allclose(carried['deter'][:, k], states['deter'][:, k], atol=1e-3)


def test_prior_reads_the_action_and_latent_and_the_posterior_the_frame(small):
  # h' = GRU(MLP(s, a), h); the prior is read from h', the posterior from (h', embed). Changing one
  # input at a time (a mid-episode step, most likely latents) must move exactly what depends on it.
  _, model, params = small
  b = 2
  carry = dict(deter=jax.random.normal(jax.random.PRNGKey(0), (b, model.deter)),
               stoch=jax.nn.one_hot(jax.random.randint(jax.random.PRNGKey(1), (b, model.stoch), 0,
                                                       model.classes), model.classes))
  embed = jax.random.normal(jax.random.PRNGKey(2), (b, _embed_width(model, params)))
  action = jnp.array([1, 4], jnp.int32)

  def step(carry, embed, action):
    new, post, prior = model.apply(params, carry, embed, action, jnp.zeros(b, bool),
                                   jax.random.PRNGKey(3), 1.0, True,
                                   method=model_lib.WorldModel.obs_step)
    return dict(deter=new['deter'], post=post, prior=prior)

  base = step(carry, embed, action)
  moved = lambda out: {k for k in base if not np.allclose(out[k], base[k], atol=1e-5)}
  assert moved(step(carry, -embed, action)) == {'post'}
  assert moved(step(carry, embed, action + 1)) == {'deter', 'post', 'prior'}
  assert moved(step(dict(carry, stoch=carry['stoch'][::-1]), embed, action)) == {
      'deter', 'post', 'prior'}
  assert moved(step(dict(carry, deter=-carry['deter']), embed, action)) == {'deter', 'post', 'prior'}


def test_unimix_floors_every_latent_probability(small):
  # (1 - u) softmax + u / K with logits (0, ln 3), u = 0.2: 0.8 (1/4, 3/4) + 0.1 = (0.3, 0.7).
  np.testing.assert_allclose(np.exp(rssm.mix_logits(jnp.array([0.0, np.log(3)]), 0.2)),
                             [0.3, 0.7], rtol=1e-6)
  # In the model: with its latent logits blown up 1000x the softmax alone puts ~0 on most classes;
  # the mix keeps each at least unimix / K = 0.01 / 8 = 0.00125, in the prior and the posterior.
  wm, model, params = small
  latent_layer = lambda path: any(getattr(p, 'key', None) in ('prior_out', 'post_out') for p in path)
  scaled = jax.tree_util.tree_map_with_path(
      lambda path, x: 1000.0 * x if latent_layer(path) else x, params)
  embed = jax.random.normal(jax.random.PRNGKey(0), (2, 3, _embed_width(model, params)))
  _, _, post, prior = model_lib.observe(
      model, scaled, embed, jnp.ones((2, 3), jnp.int32), jnp.array([[True, False, False]] * 2),
      model_lib.initial_carry(model, 2), jax.random.PRNGKey(1))
  floor = wm.unimix / wm.classes
  for logp in (post, prior):
    probs = np.exp(np.asarray(logp))
    assert probs.min() >= floor * (1 - 1e-4) and probs.min() < 2 * floor


def test_feature_is_deter_then_flattened_stoch():
  # Trained heads and actors are tied to this layout: h first, then the S one-hot rows of K in turn.
  carry = dict(deter=jnp.array([[1.0, 2.0]]), stoch=jnp.array([[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]]))
  np.testing.assert_array_equal(rssm.feature(carry), [[1.0, 2.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0]])


def test_mode_latent_takes_each_categorical_s_most_likely_class():
  # Two categoricals of three classes: the argmax of each row, one-hot.
  logits = jnp.log(jnp.array([[[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]]]))
  np.testing.assert_array_equal(rssm.mode_latent(logits), [[[0, 1, 0], [1, 0, 0]]])



def test_categorical_samples_follow_the_probabilities():
  probs = jnp.array([[0.0, 0.1, 0.6, 0.3], [1.0, 0.0, 0.0, 0.0]])
  idx = np.asarray(rssm.categorical(jax.random.PRNGKey(0), jnp.broadcast_to(probs, (20_000, 2, 4))))
  freq = np.stack([np.bincount(idx[:, i], minlength=4) / len(idx) for i in range(2)])
  np.testing.assert_allclose(freq, probs, atol=0.012)   # ~4 standard errors at n = 20,000.
  assert idx.min() >= 0 and idx.max() < 4


@pytest.mark.parametrize('size', [(72, 80), (144, 160)])
def test_the_gathered_first_encoder_stage_is_the_per_patch_one(size):
  """The encoder's first stage is gathered by patch code; it must equal Dense -> LayerNorm -> SiLU on
  each 2x2 patch of one-hot shades, with the same parameters, forward and in its gradients."""
  enc = networks.Encoder(8, 1, 16)
  frame = jnp.asarray(np.random.default_rng(0).integers(0, 4, (2,) + size), jnp.int32)
  params = enc.init(jax.random.PRNGKey(0), frame)
  p = params['params']

  def per_patch(params):
    p = params['params']
    x = jax.nn.one_hot(frame, 4)
    for i in range(len(networks.stage_shapes(size)) - 1):
      x = networks.space_to_depth(x) @ p[f'Dense_{i}']['kernel']
      ln = p[f'Norm_{i}']['LayerNorm_0']
      mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
      x = jax.nn.silu((x - mean) / jnp.sqrt(var + 1e-3) * ln['scale'] + ln['bias'])
    return x.reshape(x.shape[0], -1)

  np.testing.assert_allclose(enc.apply(params, frame), per_patch(params), rtol=1e-4, atol=1e-5)
  weights = jax.random.normal(jax.random.PRNGKey(1), per_patch(params).shape)
  grad = lambda f: jax.grad(lambda q: jnp.sum(f(q) * weights))(params)
  ours = jax.tree_util.tree_leaves(grad(lambda q: enc.apply(q, frame)))
  for a, b in zip(ours, jax.tree_util.tree_leaves(grad(per_patch))):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
  assert p['Dense_0']['kernel'].shape == (16, 8)   # The parameter tree of the per-patch form.


def test_bfloat16_products_keep_the_model_s_parameters_and_outputs(small):
  """`clone(dtype=bfloat16)` runs the same parameters with bfloat16 operands and float32 results:
  its prior step and heads agree with float32 to bfloat16 rounding."""
  _, model, params = small
  half = model.clone(dtype=jnp.bfloat16)
  carry = model_lib.initial_carry(model, 3)
  action, key = jnp.array([0, 1, 2]), jax.random.PRNGKey(1)
  for m in (model, half):
    carry_m, prior = m.apply(params, carry, action, key, 1.0, True, method=model_lib.WorldModel.img_step)
    out = m.apply(params, rssm.feature(carry_m), method=model_lib.WorldModel.scalar_heads)
    assert carry_m['deter'].dtype == prior.dtype == out['reward'].dtype == jnp.float32
    if m is model:
      ref = (carry_m['deter'], prior, out['probes']['map_id'])
  np.testing.assert_allclose(carry_m['deter'], ref[0], atol=0.03)
  np.testing.assert_allclose(jnp.exp(prior), jnp.exp(ref[1]), atol=0.02)
  np.testing.assert_allclose(out['probes']['map_id'], ref[2], atol=0.05)
  with pytest.raises(UserError, match='agent.compute_dtype'):
    networks.compute_dtype('float16', 'agent.compute_dtype')

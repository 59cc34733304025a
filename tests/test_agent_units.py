"""System 1's pieces against hand-worked values: returns, actor objectives, goals, imagination."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import v3
from dreamer_jax.agent import goals as goals_lib
from dreamer_jax.agent import imagine
from dreamer_jax.agent import learner
from dreamer_jax.agent import losses
from dreamer_jax.agent import networks
from dreamer_jax.agent import returns
from dreamer_jax.planner import goals as planner_goals
from dreamer_jax.world_model import model as model_lib
from dreamer_jax.world_model.rssm import feature


def test_lambda_returns_by_hand():
  # γ = 1, λ = 0.5; rewards r_1 = 1, r_2 = 2; continues c_1 = 1, c_2 = 0.5; values v = 0, 4, 8.
  # R_2 = v_2 = 8; R_1 = 2 + 0.5 (0.5·8 + 0.5·8) = 6; R_0 = 1 + 1 (0.5·4 + 0.5·6) = 6.
  r = returns.lambda_returns(jnp.array([[1.0, 2.0]]), jnp.array([[1.0, 0.5]]),
                             jnp.array([[0.0, 4.0, 8.0]]), gamma=1.0, lam=0.5)
  np.testing.assert_allclose(r, [[6.0, 6.0]])
  # γ = 0.9, λ = 1, c_1 = 0 (the episode ends at s_1): R_0 = r_1 whatever follows; R_1 = 2 + 0.9·8.
  r = returns.lambda_returns(jnp.array([[1.0, 2.0]]), jnp.array([[0.0, 1.0]]),
                             jnp.array([[0.0, 4.0, 8.0]]), gamma=0.9, lam=1.0)
  np.testing.assert_allclose(r, [[1.0, 9.2]], rtol=1e-6)
  # λ = 0: one-step targets r_{t+1} + γ c v_{t+1}: 1 + 0.5·4 = 3 and 2 + 0.5·8 = 6.
  r = returns.lambda_returns(jnp.array([[1.0, 2.0]]), jnp.ones((1, 2)),
                             jnp.array([[0.0, 4.0, 8.0]]), gamma=0.5, lam=0.0)
  np.testing.assert_allclose(r, [[3.0, 6.0]])
  with pytest.raises(ValueError, match=r'\[B, H\+1\]'):
    returns.lambda_returns(jnp.ones((1, 2)), jnp.ones((1, 2)), jnp.ones((1, 2)), 0.99, 0.95)


def test_trajectory_weight_is_the_continue_product_before_each_decision():
  # Decisions at s_0, s_1, s_2 count 1, c_1, c_1·c_2.
  w = returns.trajectory_weight(jnp.array([[1.0, 0.5, 0.2]]))
  np.testing.assert_allclose(w, [[1.0, 1.0, 0.5]])


def test_percentile_scale_by_hand():
  rets = jnp.arange(101.0)          # 5th percentile 5, 95th 95.
  state, scale = returns.update_scale(returns.init_scale(), rets, rate=1.0)
  assert float(state['lo']) == pytest.approx(5.0) and float(state['hi']) == pytest.approx(95.0)
  assert float(scale) == pytest.approx(90.0)
  # EMA rate 0.01 from 0: lo 0.05, hi 0.95, a range of 0.9 -> the floor of 1.
  _, scale = returns.update_scale(returns.init_scale(), rets, rate=0.01)
  assert float(scale) == 1.0


def test_ppo_clipped_objective_by_hand():
  # ratios 1.5, 0.5, 0.5 with advantages +1, -1, +1 and ε = 0.2:
  # min(1.5, 1.2) = 1.2; min(-0.5, -0.8) = -0.8; min(0.5, 0.8) = 0.5 -> mean 0.3, loss -0.3.
  new = jnp.log(jnp.array([[1.5, 0.5, 0.5]]))
  old = jnp.zeros((1, 3))
  adv = jnp.array([[1.0, -1.0, 1.0]])
  loss, clipped = losses.ppo_loss(new, old, adv, jnp.zeros((1, 3)), jnp.ones((1, 3)), 0.2, 0.0)
  assert float(loss) == pytest.approx(-0.3, abs=1e-6)
  assert float(clipped) == pytest.approx(1.0)    # All three ratios are outside [0.8, 1.2].
  # Weights: only the first decision counts -> -1.2.
  loss, _ = losses.ppo_loss(new, old, adv, jnp.zeros((1, 3)), jnp.array([[1.0, 0, 0]]), 0.2, 0.0)
  assert float(loss) == pytest.approx(-1.2, abs=1e-6)


def test_grpo_group_advantages_by_hand():
  # Two start states, groups of 2: R_0 = (1, 3) -> mean 2, std 1 -> (-1, +1); (5, 5) -> (0, 0).
  rets = jnp.array([[1.0, 9.0], [3.0, 9.0], [5.0, 0.0], [5.0, 1.0]])
  adv = losses.grpo_advantages(rets, 2)
  np.testing.assert_allclose(adv, [[-1, -1], [1, 1], [0, 0], [0, 0]], atol=1e-5)
  with pytest.raises(ValueError, match='group size'):
    losses.grpo_advantages(rets, 3)


def test_reinforce_by_hand_and_entropy_bonus_sign():
  # −mean(log π · A): log π = log 0.5 = −0.693 with A = 2 -> 1.386.
  logp_a = jnp.log(jnp.full((1, 2), 0.5))
  loss = losses.reinforce_loss(logp_a, jnp.full((1, 2), 2.0), jnp.zeros((1, 2)), jnp.ones((1, 2)),
                               0.0)
  assert float(loss) == pytest.approx(-2 * np.log(0.5), rel=1e-6)
  # With no advantage, the bonus makes a uniform policy cost less than a peaked one.
  uniform = jnp.log(jnp.full((1, 1, 4), 0.25))
  peaked = jnp.log(jnp.array([[[0.97, 0.01, 0.01, 0.01]]]))
  cost = lambda logp: float(losses.reinforce_loss(
      networks.log_prob(logp, jnp.zeros((1, 1), jnp.int32)), jnp.zeros((1, 1)),
      networks.entropy(logp), jnp.ones((1, 1)), 0.1))
  assert cost(uniform) < cost(peaked)
  assert float(networks.entropy(uniform)[0, 0]) == pytest.approx(np.log(4), rel=1e-6)


def test_bc_loss_masks_and_counts_accuracy():
  logp = jnp.log(jnp.array([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]]))
  loss, acc = losses.bc_loss(logp, jnp.array([0, 0, 1]), jnp.array([True, True, False]))
  # Masked steps 0 and 1: −(log 0.7 + log 0.2) / 2; argmax right on step 0 only.
  assert float(loss) == pytest.approx(-(np.log(0.7) + np.log(0.2)) / 2, rel=1e-6)
  assert float(acc) == 0.5


def test_kl_to_clone_is_zero_on_itself_and_positive_elsewhere():
  p = jnp.log(jnp.array([0.5, 0.25, 0.25]))
  q = jnp.log(jnp.array([0.25, 0.5, 0.25]))
  assert float(losses.kl_to_prior(p, p)) == pytest.approx(0.0, abs=1e-7)
  # 0.5 ln 2 + 0.25 ln 0.5 = 0.25 ln 2.
  assert float(losses.kl_to_prior(p, q)) == pytest.approx(0.25 * np.log(2), rel=1e-6)


@pytest.mark.parametrize('spec', [
    {'kind': 'navigate', 'map': 'Town', 'x': 3, 'y': 7},
    {'kind': 'heal', 'map': None, 'x': None, 'y': None},
    {'kind': 'talk', 'map': 'Gym', 'x': 12, 'y': 0},
    {'kind': 'explore', 'map': 'Far', 'x': None, 'y': None},
])
def test_goal_embedding_matches_the_planners(spec):
  names = {0: 'Town', 5: 'Gym', 70: 'Far'}   # 70 wraps past the 45 one-hot slots of dim 64.
  arrays = goals_lib.encode_specs([spec], names)
  np.testing.assert_allclose(goals_lib.embed(arrays, 64)[0],
                             planner_goals.goal_embedding(spec, names, 64), atol=1e-6)
  assert goals_lib.decode_spec(arrays, 0, names) == spec


def _probes(map_id, x, y, battle=0, dialog=False, hp=1.0, t=1, owned=None):
  """Probe outputs [1, t, ...] that read exactly these values (large logits); `owned` adds the
  species probe."""
  big = lambda i, k: jnp.tile(100.0 * jax.nn.one_hot(jnp.array(i), k), (1, t, 1))
  out = dict(map_id=big(map_id, 256), x=big(x, 256), y=big(y, 256), in_battle=big(battle, 3),
             dialog_open=jnp.full((1, t), 100.0 if dialog else -100.0),
             badge_bits=jnp.full((1, t, 8), -100.0), party_hp_frac=jnp.full((1, t), hp))
  if owned is not None:
    out['dex_owned'] = big(owned, 152)
  return out


def _cat(*probes):
  return jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, 1), *probes)


def test_navigate_goal_reward_reaches_and_shapes():
  goal = goals_lib.encode_specs([{'kind': 'navigate', 'map': 'A', 'x': 4, 'y': 4}], {3: 'A'})
  goal = {k: jnp.asarray(v) for k, v in goal.items()}
  # s_0 at (0, 4): 4 cells away; s_1 at (3, 4): 1 away; s_2 on the goal.
  traj = _cat(_probes(3, 0, 4), _probes(3, 3, 4), _probes(3, 4, 4))
  reached, potential = goals_lib.progress(traj, goal)
  np.testing.assert_allclose(reached, [[0, 0, 1]], atol=1e-6)
  np.testing.assert_allclose(potential, [[12 / 16, 15 / 16, 1.0]], atol=1e-6)
  r = goals_lib.goal_reward(traj, goal, reach_scale=1.0, shape_scale=1.0, gamma=1.0)
  np.testing.assert_allclose(r, [[3 / 16, 1 + 1 / 16]], atol=1e-6)
  # On another map: not reached, no potential.
  reached, potential = goals_lib.progress(_probes(9, 4, 4), goal)
  assert float(reached[0, 0]) < 1e-6 and float(potential[0, 0]) < 1e-6


def test_other_goal_kinds_read_their_probes():
  names = {3: 'A', 4: 'B'}
  enc = lambda spec: {k: jnp.asarray(v) for k, v in goals_lib.encode_specs([spec], names).items()}
  none = dict(map=None, x=None, y=None)
  reached = lambda spec, probes: float(goals_lib.progress(probes, enc(spec))[0][0, -1])
  assert reached(dict(none, kind='battle'), _probes(3, 1, 1, battle=1)) > 0.99
  assert reached(dict(none, kind='battle'), _probes(3, 1, 1, battle=0)) < 0.01
  assert reached(dict(none, kind='catch'), _probes(3, 1, 1, battle=1)) > 0.99
  assert reached(dict(none, kind='heal'), _probes(3, 1, 1, hp=1.0)) > 0.99
  assert reached(dict(none, kind='heal'), _probes(3, 1, 1, hp=0.5)) < 0.01
  assert reached(dict(kind='talk', map='A', x=1, y=1), _probes(3, 1, 2, dialog=True)) > 0.99
  assert reached(dict(kind='talk', map='A', x=1, y=1), _probes(3, 1, 2, dialog=False)) < 0.01
  explore = dict(none, kind='explore')
  assert float(goals_lib.progress(_cat(_probes(3, 0, 0), _probes(4, 0, 0)), enc(explore))[0][0, 1]) > 0.99
  assert float(goals_lib.progress(_cat(_probes(3, 0, 0), _probes(3, 5, 0)), enc(explore))[0][0, 1]) < 0.01


def test_catch_pays_for_a_new_species_not_for_staying_in_a_wild_battle():
  """With the species probe, a catch goal is reached when the count rises above s_0's; a wild
  battle alone is half the potential, and leaving it without a catch takes that back."""
  goal = {k: jnp.asarray(v) for k, v in goals_lib.encode_specs(
      [dict(kind='catch', map=None, x=None, y=None)], {3: 'A'}).items()}
  # s_0 walking (2 owned), s_1 in a wild battle, s_2 still in it, s_3 caught (3 owned, battle over).
  caught = _cat(_probes(3, 1, 1, owned=2), _probes(3, 1, 1, battle=1, owned=2),
                _probes(3, 1, 1, battle=1, owned=2), _probes(3, 1, 1, owned=3))
  reached, potential = goals_lib.progress(caught, goal)
  np.testing.assert_allclose(reached, [[0, 0, 0, 1]], atol=1e-5)
  np.testing.assert_allclose(potential, [[0, 0.5, 0.5, 1]], atol=1e-5)
  r = goals_lib.goal_reward(caught, goal, reach_scale=1.0, shape_scale=1.0, gamma=1.0)
  np.testing.assert_allclose(r, [[0.5, 0, 1.5]], atol=1e-5)
  # The same battle left by running: no catch, and the half paid on entering is taken back.
  ran = _cat(*[_probes(3, 1, 1, battle=b, owned=2) for b in (0, 1, 1, 0)])
  r_ran = goals_lib.goal_reward(ran, goal, reach_scale=1.0, shape_scale=1.0, gamma=1.0)
  np.testing.assert_allclose(r_ran, [[0.5, 0, -0.5]], atol=1e-5)
  # The species reward: scale per species on the step the count rises, never negative.
  np.testing.assert_allclose(goals_lib.species_reward(caught, 2.0), [[0, 0, 2.0]], atol=1e-5)
  fell = _cat(_probes(3, 1, 1, owned=3), _probes(3, 1, 1, owned=2))
  np.testing.assert_allclose(goals_lib.species_reward(fell, 2.0), [[0]], atol=1e-6)
  # A world model without the species probe: no species reward, catch as "in a wild battle".
  old = _cat(_probes(3, 1, 1), _probes(3, 1, 1, battle=1))
  np.testing.assert_allclose(goals_lib.species_reward(old, 2.0), [[0]])
  assert float(goals_lib.progress(old, goal)[0][0, 1]) > 0.99


def test_species_probe_reads_the_pokedex_count_and_is_trained():
  """decode_probe_targets gives the count from the RAM vector; the probe loss counts it."""
  from dreamer_jax.envs import features
  from dreamer_jax.world_model import heads as heads_lib
  ram = np.zeros((2, features.RAM_FEATURES), np.float32)
  ram[1, features.DEX_OWNED] = 11 / 151
  targets = features.decode_probe_targets(ram)
  assert targets['dex_owned'].tolist() == [0, 11]
  with_dex = _cat(_probes(0, 0, 0, owned=0), _probes(0, 0, 0, owned=0))
  targets = {k: jnp.asarray(v)[None] for k, v in targets.items()}
  targets['party_hp_frac'] = jnp.ones((1, 2))
  loss = heads_lib.probe_loss(with_dex, targets)
  assert float(loss[0, 0]) < 1e-3 and float(loss[0, 1]) > 50   # The second reads 0, not 11.
  without = {k: v for k, v in with_dex.items() if k != 'dex_owned'}
  assert float(heads_lib.probe_loss(without, targets)[0, 1]) < 1e-3


@pytest.fixture(scope='module')
def small():
  config = v3.get_config('small')
  wm = model_lib.from_config(config.world_model)
  wm_params = model_lib.init_params(wm, jax.random.PRNGKey(0), 39)
  ac = config.agent
  actor, critic = learner.networks_from_config(ac, wm.num_actions)
  feat_dim = wm.deter + wm.stoch * wm.classes
  state = learner.create_state(actor, critic, ac, feat_dim, jax.random.PRNGKey(1))
  return wm, wm_params, actor, critic, ac, state


def test_imagination_shapes_and_actions_feed_the_prior(small):
  wm, wm_params, actor, _, ac, state = small
  n, h = 3, 5
  start = model_lib.initial_carry(wm, n)
  start = dict(start, deter=jax.random.normal(jax.random.PRNGKey(2), start['deter'].shape))
  goal = jnp.zeros((n, ac.goal_dim))
  traj = imagine.rollout(wm, wm_params, actor, state['actor'], start, goal, jax.random.PRNGKey(3), h)
  f = wm.deter + wm.stoch * wm.classes
  assert traj['feat'].shape == (n, h + 1, f)
  assert traj['action'].shape == traj['logp'].shape == traj['entropy'].shape == (n, h)
  np.testing.assert_allclose(traj['feat'][:, 0], feature(start), atol=1e-6)
  # h_1 is a deterministic function of (s_0, a_0): the sampled action must be what the prior took.
  carry, _ = wm.apply(wm_params, start, traj['action'][:, 0], jax.random.PRNGKey(9), 1.0,
                      method=model_lib.WorldModel.img_step)
  np.testing.assert_allclose(traj['feat'][:, 1, :wm.deter], carry['deter'], atol=1e-5)
  other = (traj['action'][:, 0] + 1) % wm.num_actions
  carry, _ = wm.apply(wm_params, start, other, jax.random.PRNGKey(9), 1.0,
                      method=model_lib.WorldModel.img_step)
  assert not np.allclose(traj['feat'][:, 1, :wm.deter], carry['deter'], atol=1e-5)
  # log-probabilities are those of the actor at each imagined state.
  logp = actor.apply(state['actor'], traj['feat'][:, :-1], goal[:, None].repeat(h, 1))
  np.testing.assert_allclose(traj['logp'], networks.log_prob(logp, traj['action']), atol=1e-5)


def test_no_world_model_gradient_from_the_actor_critic_losses(small):
  wm, wm_params, actor, critic, ac, state = small
  n = 4
  goal = {k: jnp.asarray(v) for k, v in goals_lib.encode_specs(
      [{'kind': 'navigate', 'map': 'A', 'x': 1, 'y': 1}] * n, {3: 'A'}).items()}
  goal_vec = goals_lib.embed(goal, ac.goal_dim)

  def total(wm_params):
    start = model_lib.initial_carry(wm, n)
    traj = imagine.rollout(wm, wm_params, actor, state['actor'], start, goal_vec,
                           jax.random.PRNGKey(0), 4)
    reward, cont, _ = learner.imagined_rewards(wm, wm_params, traj, goal, ac)
    value = critic.apply(state['critic'], traj['feat'], goal_vec[:, None].repeat(5, 1))
    rets = returns.lambda_returns(reward, cont, value, ac.gamma, ac.lam)
    logp = actor.apply(state['actor'], traj['feat'][:, :-1], goal_vec[:, None].repeat(4, 1))
    return (losses.reinforce_loss(networks.log_prob(logp, traj['action']), rets,
                                  networks.entropy(logp), returns.trajectory_weight(cont), 0.1)
            + jnp.mean(jnp.square(value[:, :-1] - rets)))

  grads = jax.grad(total)(wm_params)
  assert max(float(jnp.abs(g).max()) for g in jax.tree_util.tree_leaves(grads)) == 0.0


def test_bad_agent_config_values_are_user_errors():
  from dreamer_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  ac = v3.get_config('small').agent
  ac.actor_loss = 'a2c'
  with pytest.raises(UserError, match="agent.actor_loss is 'a2c'"):
    learner.check_config(ac)
  ac = v3.get_config('small').agent
  ac.gamma = 1.5
  with pytest.raises(UserError, match='agent.gamma'):
    learner.check_config(ac)


def test_start_goals_relabel_unrecorded_steps_with_tiles_reached_later():
  # Row 0 recorded no goal (kind −1); row 1 pursued heal (kind 3). The player walks x = 0..7.
  b, t = 2, 8
  x = jnp.tile(jnp.arange(t), (b, 1))
  batch = dict(action=jnp.zeros((b, t), jnp.int32),
               probes=dict(map_id=jnp.full((b, t), 3), x=x, y=jnp.zeros((b, t), jnp.int32)),
               goal=dict(kind=jnp.array([[-1] * t, [3] * t]), map=jnp.full((b, t), -1),
                         x=jnp.full((b, t), -1), y=jnp.full((b, t), -1)))
  seen = set()
  for seed in range(10):
    goal = learner.start_goals(batch, jax.random.PRNGKey(seed), hindsight_rate=0.0, max_ahead=3)
    kind, gx = np.asarray(goal['kind']).reshape(b, t), np.asarray(goal['x']).reshape(b, t)
    # Unrecorded steps always get a navigate goal to a tile 1..3 steps ahead (the last: itself).
    assert (kind[0] == goals_lib.KIND['navigate']).all()
    ahead = gx[0] - np.arange(t)
    assert ((1 <= ahead[:-1]) & (ahead[:-1] <= 3)).all() and gx[0, -1] == t - 1
    assert (np.asarray(goal['map']).reshape(b, t)[0] == 3).all()
    seen |= set(ahead[:-1].tolist())
    # Recorded goals stay at rate 0...
    assert (kind[1] == 3).all() and (gx[1] == -1).all()
  assert seen == {1, 2, 3}
  # ...and are all relabelled at rate 1.
  goal = learner.start_goals(batch, jax.random.PRNGKey(0), hindsight_rate=1.0, max_ahead=3)
  assert (np.asarray(goal['kind']) == goals_lib.KIND['navigate']).all()

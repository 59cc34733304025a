"""System 1's learner: behaviour cloning on labelled real sequences and the actor-critic update in
imagination, each compiled as one pure function of an explicit train state.

Agent state (a pytree): {actor, critic, slow_critic, clone (the frozen BC actor, for the KL term),
actor_opt, critic_opt, scale (return percentiles), step, key}. World-model parameters are an input
of every step and never an output: nothing here trains the world model.

Batches are `world_model.data.prepare_batch` dicts plus `goal` {kind, map, x, y} int32 [B, T] (the
goal active at each step; kind −1 where none was recorded) and `label` int32 [B, T] (the expert's
action from each step; −1 where there is none).
"""


import jax
import jax.numpy as jnp
import optax

from dreamer_jax.agent import goals as goals_lib
from dreamer_jax.agent import imagine
from dreamer_jax.agent import losses
from dreamer_jax.agent import networks
from dreamer_jax.agent import returns as returns_lib
from dreamer_jax.errors import UserError
from dreamer_jax.world_model import data as data_lib
from dreamer_jax.world_model import model as model_lib
from dreamer_jax.world_model import networks as wm_networks
from dreamer_jax.world_model import train as wm_train
from dreamer_jax.world_model.rssm import feature

sg = jax.lax.stop_gradient


def check_config(ac):
  """Raises UserError naming the first bad value of an `agent` config section."""
  if ac.actor_loss not in losses.ACTOR_LOSSES:
    raise UserError(f'agent.actor_loss is {ac.actor_loss!r}; expected one of {losses.ACTOR_LOSSES}.')
  if ac.critic not in networks.CRITIC_KINDS:
    raise UserError(f'agent.critic is {ac.critic!r}; expected one of {networks.CRITIC_KINDS}.')
  for name in ('horizon', 'layers', 'units', 'ppo_epochs', 'grpo_group'):
    if int(ac[name]) < 1:
      raise UserError(f'agent.{name} is {ac[name]}; expected a positive integer.')
  for name in ('gamma', 'lam'):
    if not 0.0 < ac[name] <= 1.0:
      raise UserError(f'agent.{name} is {ac[name]}; expected a value in (0, 1].')
  for name in ('actor_lr', 'critic_lr', 'bc_lr'):
    if ac[name] <= 0:
      raise UserError(f'agent.{name} is {ac[name]}; expected a positive learning rate.')
  compute_dtype(ac)


def compute_dtype(ac):
  """The dtype of the frozen world model's products in the agent's updates (agent.compute_dtype;
  float32 for configs saved before the field existed)."""
  return wm_networks.compute_dtype(ac.get('compute_dtype', 'float32'), 'agent.compute_dtype')


def networks_from_config(ac, num_actions):
  check_config(ac)
  actor = networks.Actor(int(ac.layers), int(ac.units), num_actions, float(ac.unimix))
  critic = networks.Critic(int(ac.layers), int(ac.units), ac.critic, int(ac.critic_bins))
  return actor, critic


def in_compute_dtype(wm, ac):
  """The world model with its products' operands in agent.compute_dtype (`networks.matmul`): the
  same parameters, for the forward passes the agent's updates run through the frozen model
  (posterior starts, the prior's steps, the heads). Actor and critic, which are trained, stay
  float32 (the backward pass's transposed products run slower in bfloat16 on XLA:CPU)."""
  return wm.clone(dtype=compute_dtype(ac))


def _adam(lr, ac):
  return optax.chain(optax.clip_by_global_norm(ac.grad_clip), optax.adam(lr, eps=ac.eps))


def optimizers(ac):
  """(BC actor optimiser, imagination actor optimiser, critic optimiser)."""
  return _adam(ac.bc_lr, ac), _adam(ac.actor_lr, ac), _adam(ac.critic_lr, ac)


def create_state(actor, critic, ac, feat_dim, key):
  """A fresh agent state for features of width `feat_dim` and goals of `ac.goal_dim`."""
  actor_key, critic_key, key = jax.random.split(key, 3)
  feat = jnp.zeros((1, feat_dim), jnp.float32)
  goal = jnp.zeros((1, int(ac.goal_dim)), jnp.float32)
  actor_params = actor.init(actor_key, feat, goal)
  critic_params = critic.init(critic_key, feat, goal)
  _, actor_opt, critic_opt = optimizers(ac)
  copy = lambda tree: jax.tree_util.tree_map(jnp.copy, tree)  # Donated buffers must not alias.
  return dict(actor=actor_params, critic=critic_params, slow_critic=copy(critic_params),
              clone=copy(actor_params), actor_opt=actor_opt.init(actor_params),
              critic_opt=critic_opt.init(critic_params), scale=returns_lib.init_scale(),
              step=jnp.zeros((), jnp.int32), key=key)


def start_bc(state, ac):
  """Fresh actor optimiser state for cloning (its own learning rate)."""
  bc_opt, _, _ = optimizers(ac)
  return dict(state, actor_opt=bc_opt.init(state['actor']))


def finish_bc(state, ac):
  """After cloning: the clone is frozen as the KL anchor and the actor's optimiser starts afresh."""
  _, actor_opt, _ = optimizers(ac)
  clone = jax.tree_util.tree_map(jnp.copy, state['actor'])
  return dict(state, clone=clone, actor_opt=actor_opt.init(state['actor']))


def posterior(wm, wm_params, batch, key):
  """Encodes a prepared batch with the (frozen) world model -> states {deter [B, T, D], stoch}."""
  b, t = batch['action'].shape
  frame = data_lib.downsample(batch['frame'], wm.image_size)
  flat = lambda x: x.reshape((b * t,) + x.shape[2:])
  embed = wm.apply(wm_params, flat(frame), flat(batch['ram']), method=model_lib.WorldModel.encode)
  _, states, _, _ = model_lib.observe(wm, wm_params, embed.reshape(b, t, -1), batch['action'],
                                      batch['is_first'], model_lib.initial_carry(wm, b), key)
  return sg(states)


def bc_mask(batch):
  """Steps that carry a label to clone: a recorded expert action, and not an episode's last step
  (nothing is taken from it)."""
  return (batch['label'] >= 0) & ~batch['is_last'] & (batch['goal']['kind'] >= 0)


def _bc_inputs(wm, wm_params, batch, key, dim):
  """Flat [B * T] cloning inputs: posterior features, goal vectors, labels (0 where none) and the
  mask of steps that count (`bc_mask`); unlabelled rows embed as kind 0 and are masked out."""
  b, t = batch['action'].shape
  feat = feature(posterior(wm, wm_params, batch, key)).reshape(b * t, -1)
  goal = {f: v.reshape(-1) for f, v in batch['goal'].items()}
  goal_vec = goals_lib.embed(dict(goal, kind=jnp.maximum(goal['kind'], 0)), dim)
  return feat, goal_vec, jnp.maximum(batch['label'].reshape(-1), 0), bc_mask(batch).reshape(-1)


def make_bc_step(wm, actor, ac, mesh=None):
  """Compiles `step(state, wm_params, batch) -> (state, metrics)`: one cross-entropy update of the
  actor towards the expert's labels on posterior states of real sequences. With `mesh` the batch
  is split over its devices (`world_model.train.shard_batch`), the rest replicated."""
  bc_opt, _, _ = optimizers(ac)
  dim = int(ac.goal_dim)
  wm = in_compute_dtype(wm, ac)

  def step(state, wm_params, batch):
    key, post_key = jax.random.split(state['key'])
    feat, goal_vec, label, mask = _bc_inputs(wm, wm_params, batch, post_key, dim)

    def loss_fn(params):
      logp = actor.apply(params, feat, goal_vec)
      return losses.bc_loss(logp, label, mask)

    (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(state['actor'])
    updates, opt = bc_opt.update(grads, state['actor_opt'], state['actor'])
    state = dict(state, actor=optax.apply_updates(state['actor'], updates), actor_opt=opt, key=key,
                 step=state['step'] + 1)
    return state, dict(bc_loss=loss, bc_accuracy=acc, labelled=mask.mean())

  return wm_train.jit_data_parallel(step, mesh, num_args=3)


def make_bc_eval(wm, actor, ac):
  """Compiles `evaluate(state, wm_params, batch, key) -> {bc_loss, bc_accuracy}` (no update)."""
  dim = int(ac.goal_dim)
  wm = in_compute_dtype(wm, ac)

  def evaluate(state, wm_params, batch, key):
    feat, goal_vec, label, mask = _bc_inputs(wm, wm_params, batch, key, dim)
    loss, acc = losses.bc_loss(actor.apply(state['actor'], feat, goal_vec), label, mask)
    return dict(bc_loss=loss, bc_accuracy=acc)

  return jax.jit(evaluate)


def start_goals(batch, key, hindsight_rate, max_ahead=16):
  """The goal of each start state [B * T]: the recorded one, or, where none was recorded and with
  probability `hindsight_rate` otherwise, a navigate goal to the tile the real sequence reaches
  1..max_ahead steps later (hindsight relabelling, clipped to the window)."""
  b, t = batch['action'].shape
  ahead_key, pick_key = jax.random.split(key)
  ahead = jax.random.randint(ahead_key, (b, t), 1, max_ahead + 1)
  later = jnp.minimum(jnp.arange(t)[None, :] + ahead, t - 1)
  probes = batch['probes']
  target = {k: jnp.take_along_axis(probes[k], later, 1).reshape(-1) for k in ('map_id', 'x', 'y')}
  goal = {f: v.reshape(-1) for f, v in batch['goal'].items()}
  drawn = jax.random.uniform(pick_key, goal['kind'].shape) < hindsight_rate
  pick = (goal['kind'] < 0) | drawn
  return goals_lib.hindsight(goal, target, pick)


def imagined_rewards(wm, wm_params, traj, goal, ac):
  """(rewards [N, H], continues [N, H]) of arriving at s_1..s_H of an imagined trajectory, and the
  probe outputs [N, H+1, ...] of s_0..s_H.

  The world model's reward head contributes only what it was trained on (the history-free terms,
  `world_model.reward_terms`), scaled by agent.task_reward; new species come from the species
  probe (agent.species_reward per species), the goal reward from the probes.
  """
  reward, cont, probes = imagine.predict(wm, wm_params, traj['feat'])
  goal_r = goals_lib.goal_reward(probes, goal, ac.goal_reach, ac.goal_shape, ac.gamma)
  species_r = goals_lib.species_reward(probes, float(ac.get('species_reward', 0.0)))
  return ac.task_reward * reward[:, 1:] + species_r + goal_r, cont[:, 1:], probes


def make_imagine_step(wm, actor, critic, ac, update_actor=True, mesh=None):
  """Compiles `step(state, wm_params, batch) -> (state, metrics)`: start states from the posterior
  of a real batch (every [B, T] position), H imagined steps under the actor, λ-returns, one actor
  update (REINFORCE, PPO epochs or GRPO) and one critic update. With update_actor=False only the
  critic learns (its warm-up on the cloned policy's returns). With `mesh` the real batch, hence the
  start states, is split over its devices, the rest replicated."""
  _, actor_opt, critic_opt = optimizers(ac)
  dim, horizon, kind = int(ac.goal_dim), int(ac.horizon), ac.critic
  group = int(ac.grpo_group) if ac.actor_loss == 'grpo' else 1
  wm = in_compute_dtype(wm, ac)

  def values(params, feat, goal_vec):
    return critic.apply(params, feat, goal_vec[:, None].repeat(feat.shape[1], 1))

  def step(state, wm_params, batch):
    key, post_key, goal_key, img_key = jax.random.split(state['key'], 4)
    states = posterior(wm, wm_params, batch, post_key)
    start = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), states)
    goal = start_goals(batch, goal_key, ac.hindsight)
    if group > 1:   # G rollouts of every start state, adjacent rows.
      start = jax.tree_util.tree_map(lambda x: jnp.repeat(x, group, 0), start)
      goal = {f: jnp.repeat(v, group, 0) for f, v in goal.items()}
    goal_vec = goals_lib.embed(goal, dim)
    traj = imagine.rollout(wm, wm_params, actor, state['actor'], start, goal_vec, img_key, horizon)
    reward, cont, probes = imagined_rewards(wm, wm_params, traj, goal, ac)
    # One critic forward pass serves both the returns and the critic's gradient (its vjp).
    critic_out, critic_vjp = jax.vjp(lambda p: values(p, traj['feat'], goal_vec), state['critic'])
    value = networks.critic_value(critic_out, kind)
    rets = sg(returns_lib.lambda_returns(reward, cont, value, ac.gamma, ac.lam))
    weight = returns_lib.trajectory_weight(cont)
    scale_state, scale = returns_lib.update_scale(state['scale'], rets)
    if ac.actor_loss == 'grpo':
      adv = losses.grpo_advantages(rets, group)
    else:
      adv = (rets - value[:, :-1]) / scale
    feat_in = traj['feat'][:, :-1]
    goal_in = goal_vec[:, None].repeat(horizon, 1)
    use_kl = float(ac.bc_kl) > 0   # Static: no clone forward pass when the KL term is off.
    clone_logp = actor.apply(state['clone'], feat_in, goal_in) if use_kl else None

    def actor_loss(params):
      logp = actor.apply(params, feat_in, goal_in)
      logp_a = networks.log_prob(logp, traj['action'])
      ent = networks.entropy(logp)
      if ac.actor_loss == 'reinforce':
        loss, clipped = losses.reinforce_loss(logp_a, adv, ent, weight, ac.ent_coef), 0.0
      else:
        loss, clipped = losses.ppo_loss(logp_a, traj['logp'], adv, ent, weight, ac.ppo_clip,
                                        ac.ent_coef)
      kl = (losses.weighted_mean(losses.kl_to_prior(logp, clone_logp), weight) if use_kl
            else jnp.zeros(()))
      return loss + ac.bc_kl * kl, dict(actor_loss=loss, clipped=clipped, kl_to_clone=kl,
                                        entropy=losses.weighted_mean(ent, weight))

    def actor_epoch(carry, _):
      params, opt = carry
      grads, m = jax.grad(actor_loss, has_aux=True)(params)
      updates, opt = actor_opt.update(grads, opt, params)
      return (optax.apply_updates(params, updates), opt), m

    epochs = int(ac.ppo_epochs) if ac.actor_loss == 'ppo' else 1
    if update_actor:
      (actor_params, opt), m = jax.lax.scan(actor_epoch, (state['actor'], state['actor_opt']),
                                            None, length=epochs)
      actor_metrics = jax.tree_util.tree_map(lambda x: x[-1], m)
    else:
      actor_params, opt = state['actor'], state['actor_opt']
      actor_metrics = actor_loss(actor_params)[1]

    slow = networks.critic_value(values(state['slow_critic'], feat_in, goal_vec), kind)

    def critic_loss(out):   # Of the outputs at s_0..s_H; s_H only bootstraps the returns.
      out = out[:, :-1]
      fit = losses.weighted_mean(networks.critic_loss(out, rets, kind), weight)
      reg = losses.weighted_mean(networks.critic_loss(out, slow, kind), weight)
      return fit + ac.slow_critic_scale * reg, fit

    (_, fit), out_grad = jax.value_and_grad(critic_loss, has_aux=True)(critic_out)
    grads, = critic_vjp(out_grad)
    updates, copt = critic_opt.update(grads, state['critic_opt'], state['critic'])
    critic_params = optax.apply_updates(state['critic'], updates)
    rate = ac.slow_critic_rate
    slow_params = jax.tree_util.tree_map(lambda s, c: (1 - rate) * s + rate * c,
                                         state['slow_critic'], critic_params)
    state = dict(state, actor=actor_params, actor_opt=opt, critic=critic_params, critic_opt=copt,
                 slow_critic=slow_params, scale=scale_state, key=key, step=state['step'] + 1)
    reached, _ = goals_lib.progress(probes, goal)
    metrics = dict(actor_metrics, critic_loss=fit, return_mean=rets.mean(), reward_mean=reward.mean(),
                   value_mean=value.mean(), return_scale=scale, goal_reached=reached[:, -1].mean())
    return state, metrics

  return wm_train.jit_data_parallel(step, mesh, num_args=3)

"""System 1's speed: `python -m experiments.benchmark --suite agent [--quick] --json`.

Figures for the config handed in (the entry point's default is configs/v3.py; with --quick its
':small' preset):
  policy_hz               the System 1 step (frame -> encoder -> posterior -> actor -> action) at batch 1
  imagined_steps_per_s    one full actor-critic update (posterior starts of a B x T batch, H
                          imagined steps, returns, actor and critic updates) in imagined steps/s
  agent_update_s          one full agent update at B x T: world model + actor-critic
Targets on a 2-core CPU at the default sizes: >= 200 Hz, >= 10,000 steps/s, <= 12 s. The update
includes encoding the B x T real frames to posterior start states and the reward, continue and probe
heads on every imagined state, not the prior's steps alone. The frozen world model's products run
in agent.compute_dtype (bfloat16 by default; `--config.agent.compute_dtype=float32` for the
float32 figure).
"""

import os

import jax
import numpy as np

from dreamer_jax.agent import learner
from dreamer_jax.agent.policy import Policy
from dreamer_jax.envs.emulator import NUM_ACTIONS
from dreamer_jax.envs.features import RAM_FEATURES
from dreamer_jax.world_model import data as data_lib
from dreamer_jax.world_model import model as model_lib
from dreamer_jax.world_model import train as wm_train
from dreamer_jax.world_model.benchmark import median_seconds

RAM_SIZE = RAM_FEATURES


def agent_batch(rng, b, t):
  """A synthetic batch (`data.synthetic_batch`) with navigate goals and labels, in `learner`'s format."""
  batch = data_lib.prepare_batch(data_lib.synthetic_batch(rng, b, t, ram_size=RAM_SIZE))
  zeros = np.zeros((b, t), np.int32)
  batch.update(goal=dict(kind=zeros, map=zeros + 3, x=zeros + 1, y=zeros + 1),
               label=zeros, is_last=np.zeros((b, t), bool))
  return batch


def run(config, quick=False):
  """Runs the suite; returns a flat dict of figures."""
  wm_config, ac = config.world_model, config.agent
  repeats = 2 if quick else 5
  b, t = int(ac.batch_size), int(ac.sequence_length)
  model = model_lib.from_config(wm_config)
  optimizer = wm_train.make_optimizer(wm_config)
  wm_state = wm_train.create_state(model, optimizer, jax.random.PRNGKey(0), RAM_SIZE)
  actor, critic = learner.networks_from_config(ac, NUM_ACTIONS)
  feat_dim = model.deter + model.stoch * model.classes
  state = learner.create_state(actor, critic, ac, feat_dim, jax.random.PRNGKey(1))
  rng = np.random.default_rng(0)
  batch = agent_batch(rng, b, t)
  results = dict(batch=b, sequence_length=t, horizon=int(ac.horizon), actor_loss=ac.actor_loss,
                 compute_dtype=ac.get('compute_dtype', 'float32'),
                 feature_width=feat_dim, load_average=round(os.getloadavg()[0], 2),
                 device=str(jax.devices()[0].device_kind))

  # System 1 step at batch 1.
  policy = Policy(model, wm_state['params'], actor, state['actor'], int(ac.goal_dim), {3: 'M'})
  frame, ram = batch['frame'][0, 0], batch['ram'][0, 0]
  goal = {'kind': 'navigate', 'map': 'M', 'x': 1, 'y': 1}
  policy(frame, ram, goal)
  calls = 50 if quick else 500
  seconds = median_seconds(lambda: [policy(frame, ram, goal) for _ in range(calls)], repeats)
  results['policy_hz'] = round(calls / seconds, 1)

  # One actor-critic update in imagination.
  step = learner.make_imagine_step(model, actor, critic, ac)
  holder = dict(state=state)

  def imagine_update():
    holder['state'], m = step(holder['state'], wm_state['params'], batch)
    jax.block_until_ready(m)

  imagine_update()
  seconds = median_seconds(imagine_update, repeats)
  results['imagine_update_s'] = round(seconds, 4)
  group = int(ac.grpo_group) if ac.actor_loss == 'grpo' else 1   # GRPO imagines G per start.
  results['imagined_steps_per_s'] = round(b * t * group * int(ac.horizon) / seconds, 1)

  # World model + actor-critic: one full agent update.
  wm_step = wm_train.make_train_step(model, optimizer, wm_config)
  wm_batch = {k: v for k, v in batch.items() if k not in ('goal', 'label', 'is_last')}
  wm_holder = dict(state=wm_state)

  def full_update():
    wm_holder['state'], m = wm_step(wm_holder['state'], wm_batch)
    holder['state'], n = step(holder['state'], wm_holder['state']['params'], batch)
    jax.block_until_ready((m, n))

  full_update()
  results['agent_update_s'] = round(median_seconds(full_update, max(2, repeats // 2)), 3)
  return results

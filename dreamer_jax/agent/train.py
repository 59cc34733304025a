"""System 1's training loop: behaviour cloning, a critic warm-up, then the actor-critic in
imagination, from a trained world model's workdir; resumable (orbax, `<workdir>/agent/checkpoints`).

This is the one impure loop of the agent: replay sampling, logging, progress, checkpoints. The
world model is loaded from `<workdir>/checkpoints` and stays frozen here (the end-to-end loop
refreshes it between agent phases).
"""

import json
import os
import time

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from dreamer_jax.agent import learner
from dreamer_jax.envs.emulator import NUM_ACTIONS
from dreamer_jax.envs.features import RAM_FEATURES
from dreamer_jax.envs.replay import GOAL_FIELDS
from dreamer_jax.envs.replay import Replay
from dreamer_jax.errors import UserError
from dreamer_jax.world_model import data as data_lib
from dreamer_jax.world_model import evaluate as wm_evaluate
from dreamer_jax.world_model import train as wm_train

PHASES = ('bc', 'imagine', 'both')
COUNTERS = ('bc_steps', 'critic_steps', 'imagine_steps')
# What an exported agent keeps: the networks and the counters (no optimiser states, no RNG).
EXPORT_KEYS = ('actor', 'critic', 'clone') + COUNTERS


def agent_batch(sample):
  """A `Replay.sample` dict -> `learner`'s batch: the world model's inputs plus goal, label and
  is_last (−1 goals and labels where the replay recorded none)."""
  batch = data_lib.prepare_batch(sample)
  b, t = batch['action'].shape
  none = np.full((b, t), -1, np.int32)
  goal = sample.get('goal')
  batch['goal'] = ({f: np.asarray(goal[..., i], np.int32) for i, f in enumerate(GOAL_FIELDS)}
                   if goal is not None else {f: none.copy() for f in GOAL_FIELDS})
  label = sample.get('expert_action')
  batch['label'] = none.copy() if label is None else np.asarray(label, np.int32)
  batch['is_last'] = np.asarray(sample['is_last'], bool)
  return batch


def _meta(config, workdir):
  return dict(config=config.to_dict(), world_model_workdir=os.path.abspath(workdir))


def train(config, workdir, replay_dir, phase='both', minutes=None, clock=time.monotonic,
          progress=True):
  """Trains System 1 from the world model in `workdir` on the replay in `replay_dir`.

  Phases and their budgets come from `config.agent`: bc_steps updates of behaviour cloning (phase
  'bc' or 'both'), then critic_warmup updates of the critic alone on the clone's imagined returns,
  then imagine_steps actor-critic updates (phase 'imagine' or 'both'). Re-running resumes.

  Args:
    minutes: a wall-clock budget (measured with `clock`); when spent, the loop checkpoints and stops.

  Returns:
    (agent state, dict of the last metrics of each phase as floats, and the step counters).
  """
  if phase not in PHASES:
    raise UserError(f'--phase {phase!r} is not one of {", ".join(PHASES)}.')
  ac = config.agent
  wm_config, wm, wm_params, _, wm_step = wm_evaluate.load_trained(workdir)
  as_json = lambda section: json.loads(json.dumps(section.to_dict()))   # Tuples saved as lists.
  saved, given = as_json(wm_config.world_model), as_json(config.world_model)
  if saved != given:
    differs = sorted(k for k in given if given[k] != saved.get(k))
    raise UserError(f'the world model in {workdir} was trained with other world_model settings '
                    f'({", ".join(differs)}); expected the same config as experiments.train_agent '
                    'was given.')
  if not os.path.isdir(replay_dir):
    raise UserError(f'replay directory {replay_dir} does not exist; expected a replay from '
                    'experiments.collect_demos.')
  replay = Replay(replay_dir)
  length = int(ac.sequence_length)
  rng = np.random.default_rng(config.seed + 1)
  mesh = wm_train.make_mesh()   # Data parallel over the local devices: each holds part of a batch.
  sample = lambda: wm_train.shard_batch(agent_batch(replay.sample(int(ac.batch_size), length, rng)),
                                        mesh, 'agent.batch_size')
  batch = sample()
  if phase in ('bc', 'both') and int(ac.bc_steps) > 0:
    replay.require_labels()
  actor, critic = learner.networks_from_config(ac, NUM_ACTIONS)
  feat_dim = wm.deter + wm.stoch * wm.classes
  state = learner.create_state(actor, critic, ac, feat_dim, jax.random.PRNGKey(config.seed + 2))
  state.update({c: jnp.zeros((), jnp.int32) for c in COUNTERS})
  ckpt = wm_train.Checkpoints(os.path.join(workdir, 'agent'))
  restored = ckpt.restore_good(wm_train.abstract_like(state))
  if restored is not None:
    state, _, saved = restored
    if saved.get('sampler'):
      rng.bit_generator.state = saved['sampler']
      batch = sample()
    logging.info('agent resumed: %s', {c: int(state[c]) for c in COUNTERS})
  budgets = dict(
      bc_steps=int(ac.bc_steps) if phase in ('bc', 'both') else 0,
      critic_steps=int(ac.critic_warmup) if phase in ('imagine', 'both') else 0,
      imagine_steps=int(ac.imagine_steps) if phase in ('imagine', 'both') else 0)
  began = clock()
  out_of_time = lambda: minutes is not None and clock() - began > 60 * minutes
  metrics = {}
  total = sum(max(0, budgets[c] - int(state[c])) for c in COUNTERS)
  bar = tqdm.tqdm(total=total, desc='agent', unit='update', disable=not progress)
  stopped = False
  for counter in COUNTERS:
    if stopped or int(state[counter]) >= budgets[counter]:
      continue
    if counter == 'bc_steps':
      state = learner.start_bc(state, ac) if int(state[counter]) == 0 else state
      step_fn = learner.make_bc_step(wm, actor, ac, mesh)
    else:
      if int(state['bc_steps']) and not int(state['critic_steps']) + int(state['imagine_steps']):
        state = learner.finish_bc(state, ac)   # The clone is frozen once, when RL begins.
      step_fn = learner.make_imagine_step(wm, actor, critic, ac,
                                          update_actor=counter == 'imagine_steps', mesh=mesh)
    logging.info('agent phase %s: %d -> %d updates', counter, int(state[counter]), budgets[counter])
    while int(state[counter]) < budgets[counter]:
      count = int(state[counter])
      state, m = step_fn(state, wm_params, batch)   # Donates `state`: only the returned one lives.
      state[counter] = jnp.asarray(count + 1, jnp.int32)
      sampler = rng.bit_generator.state   # Saved: a resume redraws the next batch from here.
      batch = sample()
      bar.update()
      done = int(state[counter])
      spent = out_of_time()
      if done % int(ac.log_every) == 0 or done == budgets[counter] or spent:
        metrics[counter] = {k: float(v) for k, v in jax.device_get(m).items()}
        bar.set_postfix_str(' '.join(f'{k}={v:.3g}' for k, v in metrics[counter].items()
                                     if k in ('bc_accuracy', 'return_mean', 'goal_reached',
                                              'entropy')), refresh=False)
        logging.info('agent %s %d  %s', counter, done, '  '.join(
            f'{k}={v:.4g}' for k, v in sorted(metrics[counter].items())))
      if done % int(ac.checkpoint_every) == 0 or done == budgets[counter] or spent:
        ckpt.save(sum(int(state[c]) for c in COUNTERS), state,
                  dict(_meta(config, workdir), sampler=sampler))
      if spent:
        logging.info('agent: time budget of %s minutes spent', minutes)
        stopped = True
        break
  bar.close()
  ckpt.close()
  counters = {c: int(state[c]) for c in COUNTERS}
  return state, dict(metrics, counters=counters, world_model_step=wm_step)


def load_agent(workdir):
  """Restores `workdir`'s world model and agent -> (config, wm, wm_params, actor, actor_params)."""
  config, wm, wm_params, _, step = wm_evaluate.load_trained(workdir)
  ckpt = wm_train.Checkpoints(workdir)
  ram_size = ckpt.meta(step)['ram_size']
  ckpt.close()
  if ram_size > RAM_FEATURES:
    raise UserError(f'the world model in {workdir} reads {ram_size} RAM features; this version\'s '
                    f'environment gives {RAM_FEATURES} (envs/features.py); expected a world model '
                    f'trained on at most {RAM_FEATURES} (a replay recorded with this version or an '
                    'earlier one).')
  config, _, state = load_agent_state(workdir, wm)
  actor, _ = learner.networks_from_config(config.agent, NUM_ACTIONS)
  return config, wm, wm_params, actor, state['actor']


def load_agent_state(workdir, wm):
  """The newest readable agent checkpoint in `workdir` -> (config, step, full agent state)."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  ckpt = wm_train.Checkpoints(os.path.join(workdir, 'agent'))
  holder = {}

  def abstract(meta):
    holder['config'] = config = ml_collections.ConfigDict(meta['config'])
    actor, critic = learner.networks_from_config(config.agent, NUM_ACTIONS)
    full = jax.eval_shape(lambda: dict(
        learner.create_state(actor, critic, config.agent, wm.deter + wm.stoch * wm.classes,
                             jax.random.PRNGKey(0)),
        **{c: jnp.zeros((), jnp.int32) for c in COUNTERS}))
    if meta.get('export_dtype'):   # An exported checkpoint (experiments.export): no optimisers.
      return wm_train.export_abstract(full, EXPORT_KEYS, meta['export_dtype'])
    return full

  restored = ckpt.restore_good(abstract)
  ckpt.close()
  if restored is None:
    raise UserError(f'no agent checkpoint in {ckpt.directory}; expected one written by '
                    'experiments.train_agent or experiments.dreamer.')
  state, step, _ = restored
  return holder['config'], step, wm_train.as_float32(state)


def has_clone(state):
  """Whether `state['clone']` is the behaviour-cloned actor, frozen when RL began (before that,
  and without cloning, it holds the actor's initial parameters)."""
  return bool(int(state['bc_steps'])) and bool(int(state['critic_steps']) + int(state['imagine_steps']))

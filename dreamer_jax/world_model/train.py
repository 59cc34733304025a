"""Training the world model: train state, the jitted (data-parallel) update, checkpoints, the loop.

The train state is a plain pytree {params, opt_state, step, key}. `make_train_step` compiles one
update; with a mesh the batch is split over the 'data' axis (NamedSharding) and the parameters are
replicated, so XLA inserts the gradient all-reduce. `train` is the one impure loop: replay sampling,
logging, checkpoints, resuming. Under `jax.distributed` (dreamer_jax/distributed.py) the mesh spans
every process's devices, each process samples and puts its own share of the batch, process 0 alone
logs, and orbax writes each checkpoint once (every process takes part in the save).
"""

import functools
import logging as py_logging
import os
import time

from absl import logging
import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np
import optax
import orbax.checkpoint as ocp
import tqdm

from dreamer_jax import distributed
from dreamer_jax.errors import UserError
from dreamer_jax.world_model import data as data_lib
from dreamer_jax.world_model import losses
from dreamer_jax.world_model import model as model_lib
from dreamer_jax.world_model import rssm

DATA_AXIS = 'data'


def hparams(wm):
  """The loss's plain-float hyper-parameters from a `world_model` config section."""
  return dict(kl_dyn=float(wm.kl_dyn), kl_rep=float(wm.kl_rep), free_nats=float(wm.free_nats),
              scales={k: float(v) for k, v in wm.loss_scales.items()})


def make_optimizer(wm):
  """Adam after global-norm gradient clipping."""
  if wm.lr <= 0 or wm.grad_clip <= 0:
    raise UserError(f'world_model.lr ({wm.lr}) and grad_clip ({wm.grad_clip}) must be positive.')
  return optax.chain(optax.clip_by_global_norm(wm.grad_clip), optax.adam(wm.lr, eps=wm.eps))


def create_state(model, optimizer, key, ram_size):
  """A fresh train state {params, opt_state, step, key}."""
  init_key, key = jax.random.split(key)
  params = model_lib.init_params(model, init_key, ram_size)
  return dict(params=params, opt_state=optimizer.init(params), step=jnp.zeros((), jnp.int32),
              key=key)


def make_mesh(devices=None):
  """A 1-D mesh over `devices` (default: all) whose axis 'data' splits the batch."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def make_train_step(model, optimizer, wm, mesh=None):
  """Compiles `step(state, batch) -> (state, metrics)` for prepared batches (`data.prepare_batch`).

  With `mesh`, the batch's leading axis is split over its devices and the state is replicated; the
  batch size must then be a multiple of the device count (`shard_batch` checks).
  """
  hp = hparams(wm)
  schedule = functools.partial(rssm.gumbel_temperature, start=wm.gumbel_temp_start,
                               end=wm.gumbel_temp_end, anneal_steps=wm.gumbel_anneal_steps)
  unroll = int(wm.scan_unroll)

  def step(state, batch):
    key, loss_key = jax.random.split(state['key'])
    temp = schedule(state['step'])
    grad_fn = jax.grad(lambda p: losses.loss_fn(model, p, batch, loss_key, temp, hp, unroll),
                       has_aux=True)
    grads, (metrics, _) = grad_fn(state['params'])
    updates, opt_state = optimizer.update(grads, state['opt_state'], state['params'])
    params = optax.apply_updates(state['params'], updates)
    metrics = dict(metrics, grad_norm=optax.global_norm(grads), temp=temp)
    return dict(params=params, opt_state=opt_state, step=state['step'] + 1, key=key), metrics

  return jit_data_parallel(step, mesh)


def jit_data_parallel(step, mesh=None, num_args=2):
  """`jax.jit(step, donate_argnums=0)` for `step(state, ..., batch) -> (state, metrics)`.

  With `mesh`, the batch (the last of `num_args` arguments) is split over the mesh's data axis and
  every other argument and both outputs are replicated: XLA inserts the gradient all-reduce, and
  the result matches one device's up to float reassociation.
  """
  if mesh is None:
    return jax.jit(step, donate_argnums=0)
  replicated = NamedSharding(mesh, P())
  return jax.jit(step, in_shardings=(replicated,) * (num_args - 1) + (
      NamedSharding(mesh, P(DATA_AXIS)),), out_shardings=(replicated, replicated),
                 donate_argnums=0)


def shard_batch(batch, mesh, name='world_model.batch_size'):
  """Puts a prepared numpy batch on the devices, split over the batch axis (every leaf's first).

  One process: `batch` is the whole batch. Several (`jax.distributed`): `batch` is this process's
  share (`distributed.local_batch_size` sequences) and the global batch is the processes' shares
  one after the other, in the mesh's order of their devices.
  """
  sharding = NamedSharding(mesh, P(DATA_AXIS))
  b = batch['action'].shape[0]
  if jax.process_count() == 1:
    n = mesh.devices.size
    if b % n:
      raise UserError(f'{name} is {b}; expected a multiple of the {n} devices.')
    return jax.device_put(batch, sharding)
  n = sum(d.process_index == jax.process_index() for d in mesh.devices.flat)
  if b % n:
    raise UserError(f'this process holds {b} sequences of {name}; expected a '
                    f'multiple of its {n} devices.')
  return jax.tree_util.tree_map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)


def replicate(tree, mesh):
  return jax.device_put(tree, NamedSharding(mesh, P()))


class _DropOrbaxChatter(py_logging.Filter):
  """Drops orbax's INFO records (dozens per save and restore); its warnings and errors pass."""

  def filter(self, record):
    return record.levelno >= py_logging.WARNING or '/orbax/' not in record.pathname.replace('\\', '/')


def quiet_orbax():
  """Installs `_DropOrbaxChatter` on absl's logger once (orbax logs through absl)."""
  logger = logging.get_absl_logger()
  if not any(isinstance(f, _DropOrbaxChatter) for f in logger.filters):
    logger.addFilter(_DropOrbaxChatter())


class Checkpoints:
  """Periodic orbax checkpoints of the train state (+ the config as JSON) in `<workdir>/checkpoints`."""

  def __init__(self, workdir, max_to_keep=3):
    quiet_orbax()
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        item_names=('state', 'config'))

  def latest_step(self):
    return self.manager.latest_step()

  def save(self, step, state, meta):
    """meta: JSON-able dict {config: the full config as a dict, ram_size: R, replay_dir}."""
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(jax.device_get(state)), config=ocp.args.JsonSave(meta)))
    self.manager.wait_until_finished()

  def restore(self, abstract_state, step=None):
    """The saved state (latest by default) shaped like `abstract_state`; UserError if unreadable."""
    step = self.manager.latest_step() if step is None else step
    if step is None:
      raise UserError(f'no checkpoint in {self.directory}; expected one written by '
                      'experiments.train_world_model.')
    try:
      restored = self.manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state)))
    except Exception as e:  # orbax raises many types (ValueError, OSError, KeyError, ...).
      raise UserError(f'checkpoint {step} in {self.directory} is unreadable or does not match the '
                      f'config ({type(e).__name__}); expected a complete checkpoint of this '
                      'world model.') from e
    return restored['state']

  def meta(self, step):
    """The JSON saved beside checkpoint `step`; UserError if unreadable."""
    try:
      return self.manager.restore(step, args=ocp.args.Composite(
          config=ocp.args.JsonRestore()))['config']
    except Exception as e:  # orbax raises many types for a damaged file.
      raise UserError(f'checkpoint {step} in {self.directory} has no readable config '
                      f'({type(e).__name__}); expected a complete checkpoint.') from e

  def restore_good(self, abstract_state):
    """The newest checkpoint that reads back whole -> (state, step, meta), or None when there is
    none at all. A damaged one is named in the log and the one before it is tried; UserError when
    every checkpoint is damaged. `abstract_state` may be a function meta -> abstract state."""
    steps = sorted(self.manager.all_steps(), reverse=True)
    if not steps:
      return None
    errors = []
    for step in steps:
      try:
        meta = self.meta(step)
        abstract = abstract_state(meta) if callable(abstract_state) else abstract_state
        state = self.restore(abstract, step)
      except UserError as e:
        errors.append(step)
        logging.warning('%s', e)
        later = [s for s in steps if s < step]
        if later:
          logging.warning('falling back to checkpoint %d in %s', later[0], self.directory)
        continue
      return state, step, meta
    raise UserError(f'every checkpoint in {self.directory} is damaged (steps '
                    f'{", ".join(map(str, errors))}); expected at least one complete checkpoint '
                    '(delete the directory to start afresh).')

  def close(self):
    self.manager.close()


def export_abstract(abstract, keys, dtype):
  """The part of an abstract state an exported checkpoint holds (`keys`), floats as `dtype`."""
  cast = lambda x: jax.ShapeDtypeStruct(
      x.shape, dtype if jnp.issubdtype(x.dtype, jnp.floating) else x.dtype)
  return {k: jax.tree_util.tree_map(cast, abstract[k]) for k in keys}


def as_float32(tree):
  """Floating leaves back to float32 (an exported checkpoint may store them in half precision)."""
  return jax.tree_util.tree_map(
      lambda x: jnp.asarray(x, jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def abstract_like(state):
  return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)


def train(config, workdir, replay_dir, steps=None, minutes=None, clock=time.monotonic):
  """Trains the world model on a replay directory; resumes from `workdir`'s latest checkpoint.

  Args:
    config: the full config (reads `seed` and `world_model`). workdir: checkpoints go here.
    replay_dir: a directory of replay chunks (e.g. from experiments.collect_demos).
    steps: total updates to reach (default `world_model.train_steps`).
    minutes: a wall-clock budget; when spent, the loop checkpoints and stops early. It is checked
      before each update, and the update that finds it spent still runs (so a budget spent before
      the first update still gives one update and a checkpoint).
    clock: the budget's time in seconds, read once before the loop and once before each update
      (tests pass a fake one, so no test depends on the machine's speed).

  Returns:
    (train state, metrics of the last update as floats).
  """
  from dreamer_jax.envs.replay import Replay  # Only the loop touches the disk format.
  wm = config.world_model
  steps = wm.train_steps if steps is None else steps
  replay = Replay(replay_dir)
  if len(replay) < wm.sequence_length:
    raise UserError(f'replay {replay_dir} holds {len(replay)} steps; expected at least '
                    f'world_model.sequence_length={wm.sequence_length}.')
  # The sampler's stream is part of the training state: a resumed run continues it (its state is
  # saved beside every checkpoint) rather than re-drawing the first run's batches. With several
  # processes each samples its share of the batch from a stream of its own (distributed.py).
  rng = distributed.sampler_rng(config.seed)
  local_batch = distributed.local_batch_size(wm.batch_size)
  primary = distributed.is_primary()
  columns = data_lib.reward_columns(replay.reward_term_names, tuple(wm.get('reward_terms', ())))
  sample = lambda: data_lib.prepare_batch(replay.sample(local_batch, wm.sequence_length, rng),
                                          columns)
  model = model_lib.from_config(wm)
  optimizer = make_optimizer(wm)
  mesh = make_mesh()
  # The RAM width from a throwaway draw, so the sampler's own stream is untouched before a resume.
  ram_size = replay.sample(1, wm.sequence_length, np.random.default_rng(0))['ram'].shape[-1]
  state = create_state(model, optimizer, jax.random.PRNGKey(config.seed), ram_size)
  meta = dict(config=config.to_dict(), ram_size=int(ram_size),
              replay_dir=os.path.abspath(replay_dir))
  ckpt = Checkpoints(workdir)
  restored = ckpt.restore_good(abstract_like(state))
  if restored is not None:
    state, _, saved = restored
    if jax.process_count() > 1:
      rng = distributed.sampler_rng(config.seed, step=int(state['step']))
    elif saved.get('sampler'):
      rng.bit_generator.state = saved['sampler']
    if primary:
      logging.info('resumed from step %d', int(state['step']))
  sampler_state = rng.bit_generator.state   # The stream as of the batch about to be drawn.
  first = sample()
  state = replicate(state, mesh)
  train_step = make_train_step(model, optimizer, wm, mesh)
  start = int(state['step'])
  metrics, batch, last_log, last_step = {}, first, time.perf_counter(), start
  began = clock()
  deadline = None if minutes is None else began + 60 * minutes
  # With a time budget the bar counts minutes (its ETA is then the budget's end), else updates.
  if deadline is None:
    bar = tqdm.tqdm(initial=start, total=steps, desc='world model', unit='update',
                    disable=not primary)
  else:
    bar = tqdm.tqdm(total=round(minutes, 2), desc='world model', unit='min', disable=not primary,
                    bar_format='{l_bar}{bar}| {n:.1f}/{total} min [{elapsed}<{remaining}{postfix}]')
  for i in range(start, steps):
    now = clock()
    out_of_time = deadline is not None and now > deadline
    if deadline is not None and jax.process_count() > 1:
      # Every process stops at the same update (process 0's clock decides), or the others would
      # wait forever in the next update's all-reduce.
      out_of_time = bool(multihost_utils.broadcast_one_to_all(np.asarray(out_of_time)))
    state, metrics = train_step(state, shard_batch(batch, mesh))
    sampler_state = rng.bit_generator.state
    batch = sample()  # Overlaps with the asynchronously dispatched update.
    if deadline is None:
      bar.update()
    else:
      bar.n = min(round((now - began) / 60, 2), bar.total)
      bar.set_postfix_str(f'update {i + 1}', refresh=False)
      bar.refresh()
    if (i + 1) % wm.log_every == 0 or i + 1 == steps or out_of_time:
      metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
      logged = time.perf_counter()
      if primary:
        logging.info('step %d  %.2fs/update  %s', i + 1,
                     (logged - last_log) / (i + 1 - last_step),
                     '  '.join(f'{k}={v:.4g}' for k, v in sorted(metrics.items())))
      last_log, last_step = logged, i + 1
    if (i + 1) % wm.checkpoint_every == 0 or i + 1 == steps or out_of_time:
      # The batch already drawn for update i + 2 is drawn again after a resume.
      ckpt.save(i + 1, state, dict(meta, sampler=sampler_state))
    if out_of_time:
      if primary:
        logging.info('time budget of %s minutes spent at step %d', minutes, i + 1)
      break
  bar.close()
  ckpt.close()
  return state, {k: float(v) for k, v in jax.device_get(metrics).items()}

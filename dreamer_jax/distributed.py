"""Several processes (hosts) as one JAX program: when to call `jax.distributed.initialize`, and each
process's share of a batch.

`maybe_initialize` starts the distributed system when asked, else does nothing; it must run before
anything touches a device (the entry points call it first thing in `main`). It is asked by:

  DREAMER_JAX_COORDINATOR=host:port DREAMER_JAX_NUM_PROCESSES=N DREAMER_JAX_PROCESS_ID=i
      explicit: process 0 serves the coordinator at host:port; every process sets all three, each
      its own i in 0..N-1 (e.g. two processes on one machine, or hosts without a cluster manager);
  DREAMER_JAX_MULTIHOST=1
      JAX's own detection (Cloud TPU VM slices, Slurm, Open MPI): `launch/tpu_vm.sh` sets it on
      every worker;

or by a config's optional `distributed` section with fields coordinator, num_processes and
process_id (set fields win over the environment's). Without any of these the run is one process.

With several processes each one keeps its replay, progress and logs in `process_dir(workdir)`
(process 0: the workdir itself) and samples `local_batch_size(batch_size)` sequences from its own
stream (`sampler_rng`); `world_model.train.shard_batch` joins the shares into the global batch. One
process samples the whole batch from `np.random.default_rng(seed)`, as before.
"""

import os

import jax
import numpy as np

from dreamer_jax.errors import UserError

COORDINATOR = 'DREAMER_JAX_COORDINATOR'
NUM_PROCESSES = 'DREAMER_JAX_NUM_PROCESSES'
PROCESS_ID = 'DREAMER_JAX_PROCESS_ID'
MULTIHOST = 'DREAMER_JAX_MULTIHOST'
_EXPLICIT = (('coordinator', COORDINATOR), ('num_processes', NUM_PROCESSES),
             ('process_id', PROCESS_ID))


def _int(name, text):
  try:
    return int(str(text).strip())
  except ValueError:
    raise UserError(f'{name} is {text!r}; expected a whole number.') from None


def resolve(config=None, environ=None):
  """The keyword arguments `maybe_initialize` passes to `jax.distributed.initialize`, or None.

  Args:
    config: a config (or None) whose optional `distributed` section may set coordinator (str),
      num_processes (int) and process_id (int); a field that is None or '' (e.g. a
      `ml_collections.config_dict.placeholder`) falls back on the environment.
    environ: the environment (default `os.environ`).

  Returns:
    None (one process); {} (JAX detects the cluster: DREAMER_JAX_MULTIHOST=1); or
    dict(coordinator_address=, num_processes=, process_id=).
  """
  environ = os.environ if environ is None else environ
  section = config.get('distributed') if config is not None and hasattr(config, 'get') else None
  values, names = {}, {}
  for field, var in _EXPLICIT:
    value = section.get(field) if section is not None else None
    if value not in (None, ''):
      values[field], names[field] = value, f'config.distributed.{field}'
    elif environ.get(var, '').strip():
      values[field], names[field] = environ[var].strip(), var
  if values:
    missing = [var for field, var in _EXPLICIT if field not in values]
    if missing:
      raise UserError(f'{", ".join(names.values())} set without {" and ".join(missing)}; expected '
                      f'all three of {COORDINATOR}, {NUM_PROCESSES} and {PROCESS_ID} (or '
                      f'{MULTIHOST}=1 alone).')
    coordinator = str(values['coordinator'])
    host, _, port = coordinator.rpartition(':')
    if not host or not port.isdigit():
      raise UserError(f'{names["coordinator"]} is {coordinator!r}; expected host:port of process '
                      '0 (for example localhost:12355).')
    n = _int(names['num_processes'], values['num_processes'])
    i = _int(names['process_id'], values['process_id'])
    if n < 1 or not 0 <= i < n:
      raise UserError(f'{names["process_id"]} is {i} with {names["num_processes"]} {n}; expected '
                      'a process id in 0..num_processes-1 and at least one process.')
    return dict(coordinator_address=coordinator, num_processes=n, process_id=i)
  flag = environ.get(MULTIHOST, '').strip()
  if flag in ('', '0'):
    return None
  if flag != '1':
    raise UserError(f'{MULTIHOST} is {flag!r}; expected 1 (JAX detects the cluster) or 0.')
  return {}


def maybe_initialize(config=None, environ=None):
  """Calls `jax.distributed.initialize` when `resolve` asks for it; a no-op otherwise.

  Safe to call again (and after `launch/run.sh` initialized it): an initialized system is kept.
  Returns whether the distributed system is initialized after the call.
  """
  kwargs = resolve(config, environ)
  if jax.distributed.is_initialized():
    return True
  if kwargs is None:
    return False
  jax.distributed.initialize(**kwargs)
  return True


def is_primary():
  """Whether this is process 0 (the one that prints and writes what is written once)."""
  return jax.process_index() == 0


def process_dir(workdir):
  """Where this process keeps what is its own: `workdir` for process 0 (and a single process),
  `workdir/process_<i>` for process i > 0, so processes sharing one file system never write the
  same replay, progress, log or evaluation file; checkpoints stay in `workdir` (process 0 writes)."""
  i = jax.process_index()
  return workdir if i == 0 else os.path.join(workdir, f'process_{i}')


def local_batch_size(batch_size, name='world_model.batch_size'):
  """This process's share of a global batch of `batch_size` sequences."""
  n = jax.process_count()
  if batch_size % n:
    raise UserError(f'{name} is {batch_size}; expected a multiple of the {n} processes.')
  return batch_size // n


def sampler_rng(seed, step=0, process_index=None, process_count=None):
  """The replay sampler's stream for this process.

  One process: `np.random.default_rng(seed)` whatever `step` (its state is saved beside each
  checkpoint and restored on a resume). Several: `np.random.default_rng([seed, process, step])`, a
  stream of its own per process, drawn afresh from the update a sitting starts at (a checkpoint's
  JSON is written by process 0 alone, so the other processes' states could not be restored).
  `process_index` / `process_count` default to JAX's (tests name another process's stream).
  """
  i = jax.process_index() if process_index is None else process_index
  n = jax.process_count() if process_count is None else process_count
  if n == 1:
    return np.random.default_rng(seed)
  return np.random.default_rng([int(seed), int(i), int(step)])

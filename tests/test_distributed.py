"""Several processes: when jax.distributed starts, each process's share of the batch, and two CPU
processes over localhost training the world model exactly as one process with two devices does.

The two-process test runs this module as a script (`python -m tests.test_distributed OUT`) in two
subprocesses, one CPU device each, joined by DREAMER_JAX_COORDINATOR / NUM_PROCESSES / PROCESS_ID.
"""

import os
import socket
import subprocess
import sys
import threading
import time

import jax
import ml_collections
import numpy as np
import pytest

from configs import v3
from dreamer_jax import distributed
from dreamer_jax.envs.replay import Replay
from dreamer_jax.errors import UserError
from dreamer_jax.world_model import data
from dreamer_jax.world_model import model as model_lib
from dreamer_jax.world_model import train
from tests import synthetic_replay

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS, LENGTH = 2, 8        # Two updates of the ':small' world model on 8-step sequences.
UNSUPPORTED = 'JAX_DISTRIBUTED_UNSUPPORTED:'   # A worker's line when multi-process CPU fails.
WORKER_TIMEOUT_S = 300      # Both workers together, on a loaded 2-core machine: ~70 s.


def _env(**values):
  return {k: str(v) for k, v in values.items()}


def test_resolve_explicit_auto_and_off():
  explicit = _env(DREAMER_JAX_COORDINATOR='localhost:1234', DREAMER_JAX_NUM_PROCESSES=2,
                  DREAMER_JAX_PROCESS_ID=1)
  assert distributed.resolve(environ=explicit) == dict(
      coordinator_address='localhost:1234', num_processes=2, process_id=1)
  assert distributed.resolve(environ=_env(DREAMER_JAX_MULTIHOST=1)) == {}
  assert distributed.resolve(environ={}) is None
  assert distributed.resolve(environ=_env(DREAMER_JAX_MULTIHOST=0)) is None
  # A config's distributed section wins field by field; unset fields come from the environment.
  config = ml_collections.ConfigDict(dict(distributed=dict(
      coordinator='10.0.0.2:8476', num_processes=4,
      process_id=ml_collections.config_dict.placeholder(int))))
  assert distributed.resolve(config, environ=explicit) == dict(
      coordinator_address='10.0.0.2:8476', num_processes=4, process_id=1)
  assert distributed.resolve(v3.get_config('small'), environ={}) is None   # No section: off.


@pytest.mark.parametrize('environ, match', [
    (_env(DREAMER_JAX_COORDINATOR='localhost:1234'),
     'DREAMER_JAX_COORDINATOR set without DREAMER_JAX_NUM_PROCESSES and DREAMER_JAX_PROCESS_ID'),
    (_env(DREAMER_JAX_COORDINATOR='localhost', DREAMER_JAX_NUM_PROCESSES=2,
          DREAMER_JAX_PROCESS_ID=0), "is 'localhost'; expected host:port"),
    (_env(DREAMER_JAX_COORDINATOR='h:1', DREAMER_JAX_NUM_PROCESSES='two',
          DREAMER_JAX_PROCESS_ID=0), "DREAMER_JAX_NUM_PROCESSES is 'two'; expected a whole number"),
    (_env(DREAMER_JAX_COORDINATOR='h:1', DREAMER_JAX_NUM_PROCESSES=2, DREAMER_JAX_PROCESS_ID=2),
     'DREAMER_JAX_PROCESS_ID is 2 with DREAMER_JAX_NUM_PROCESSES 2; expected a process id in'),
    (_env(DREAMER_JAX_MULTIHOST='yes'), "DREAMER_JAX_MULTIHOST is 'yes'; expected 1"),
])
def test_resolve_mistakes_are_one_sentence(environ, match):
  with pytest.raises(UserError, match=match) as e:
    distributed.resolve(environ=environ)
  assert str(e.value).count('. ') == 0 and str(e.value).endswith('.')


def test_maybe_initialize_once_and_only_when_asked(monkeypatch):
  calls, state = [], dict(up=False)

  def initialize(**kwargs):
    calls.append(kwargs)
    state['up'] = True

  monkeypatch.setattr(jax.distributed, 'initialize', initialize)
  monkeypatch.setattr(jax.distributed, 'is_initialized', lambda: state['up'])
  assert distributed.maybe_initialize(environ={}) is False and not calls
  asked = _env(DREAMER_JAX_MULTIHOST=1)
  assert distributed.maybe_initialize(environ=asked) is True
  assert distributed.maybe_initialize(environ=asked) is True   # Again: kept, not re-initialized.
  assert calls == [{}]


def test_local_batch_and_sampler_streams():
  assert distributed.local_batch_size(4) == 4   # One process here.
  draws = lambda rng: rng.integers(0, 2**31, 4).tolist()
  # One process: the stream is the one the loops always used (single-process results unchanged).
  assert draws(distributed.sampler_rng(7)) == draws(np.random.default_rng(7))
  assert draws(distributed.sampler_rng(7, step=5)) == draws(np.random.default_rng(7))
  # Several: a stream of its own per process, and per start step.
  streams = [draws(distributed.sampler_rng(7, step, i, 2)) for i in (0, 1) for step in (0, 5)]
  assert len({tuple(s) for s in streams}) == 4


def test_local_batch_not_divisible_is_a_user_error(monkeypatch):
  monkeypatch.setattr(jax, 'process_count', lambda: 2)
  assert distributed.local_batch_size(4) == 2
  with pytest.raises(UserError, match=r'world_model.batch_size is 5; expected a multiple of the 2 '
                     r'processes\.$'):
    distributed.local_batch_size(5)


def test_each_process_keeps_its_own_replay_progress_and_logs(monkeypatch, tmp_path):
  from dreamer_jax import loop   # pylint: disable=g-import-not-at-top
  demos, workdir = tmp_path / 'my_demos', str(tmp_path / 'run')
  demos.mkdir()
  (demos / 'chunk.npz').write_bytes(b'recorded steps')
  config = v3.get_config('smoke')
  config.dreamer.demos = str(demos)
  first = loop._Run(config, workdir)
  assert (first.own_dir, first.replay_dir) == (workdir, str(demos))   # Process 0: as one process.
  monkeypatch.setattr(jax, 'process_count', lambda: 2)
  monkeypatch.setattr(jax, 'process_index', lambda: 1)
  # Orbax's manager needs the real distributed system; the checkpoint directory is what counts.
  monkeypatch.setattr(train, 'Checkpoints', lambda directory: directory)
  other = loop._Run(config, workdir)
  own = os.path.join(workdir, 'process_1')
  assert other.own_dir == own and other.progress_path == os.path.join(own, 'progress.json')
  # Its replay starts as a copy of the demonstrations, which process 0 alone appends to.
  assert other.replay_dir == os.path.join(own, 'replay')
  assert open(os.path.join(other.replay_dir, 'chunk.npz'), 'rb').read() == b'recorded steps'
  assert other.wm_ckpt == workdir   # Checkpoints: the shared workdir's.


def test_main_command_needs_one_workdir_for_several_processes():
  # Each process would name its own default workdir by the clock; the command says so instead.
  code = ('import sys, jax; jax.process_count = lambda: 2; from experiments import cli, dreamer; '
          'dreamer.loop.train_and_evaluate = lambda config, workdir: print("trained", workdir); '
          'sys.argv = ["dreamer", "--config=configs/v3.py:smoke"]; cli.run(dreamer.main)')
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=ROOT)
  for var in ('DREAMER_JAX_MULTIHOST', 'DREAMER_JAX_COORDINATOR'):
    env.pop(var, None)
  done = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=120)
  assert done.returncode == 2, done.stderr[-2000:]
  assert '--workdir is unset with 2 processes; expected one --workdir' in done.stderr
  assert not done.stdout


def _config():
  config = v3.get_config('small')
  config.world_model.sequence_length = LENGTH
  return config


def _write_replay(directory, episodes=3, length=24):
  synthetic_replay.write(directory, episodes, length)


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _worker(out):
  """One of the two processes: `train.train` on the shared replay, its result in OUT/proc<i>.npz."""
  distributed.maybe_initialize()
  i = jax.process_index()
  try:   # The smallest collective first: an install without CPU collectives fails here.
    mesh = train.make_mesh()
    ones = jax.make_array_from_process_local_data(
        jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(train.DATA_AXIS)),
        np.ones(1, np.float32))
    total = float(jax.jit(lambda x: x.sum())(ones))
  except Exception as e:  # pylint: disable=broad-except
    print(UNSUPPORTED, f'{type(e).__name__}: {e}'.splitlines()[0], flush=True)
    sys.exit(3)
  assert (jax.process_count(), len(jax.devices()), total) == (2, 2, 2.0)
  state, metrics = train.train(_config(), os.path.join(out, 'wm'), os.path.join(out, 'replay'),
                               steps=STEPS)
  params = jax.tree_util.tree_leaves(jax.device_get(state['params']))
  np.savez(os.path.join(out, f'proc{i}.npz'), loss=metrics['loss'], step=int(state['step']),
           *params)


def _run_workers(out):
  """Runs both workers to the end; fails with their output, or skips if the install cannot."""
  port = _free_port()
  procs, logs = [], []
  for i in range(2):
    env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=ROOT,
               XLA_FLAGS='--xla_force_host_platform_device_count=1',
               DREAMER_JAX_COORDINATOR=f'localhost:{port}', DREAMER_JAX_NUM_PROCESSES='2',
               DREAMER_JAX_PROCESS_ID=str(i))
    env.pop('DREAMER_JAX_MULTIHOST', None)
    logs.append(open(os.path.join(out, f'proc{i}.log'), 'w+'))
    procs.append(subprocess.Popen([sys.executable, '-m', 'tests.test_distributed', out], cwd=ROOT,
                                  env=env, stdout=logs[-1], stderr=subprocess.STDOUT))
  deadline = time.monotonic() + WORKER_TIMEOUT_S
  try:
    # A worker that fails leaves the other waiting for it: stop both at the first failure.
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
      if any(p.poll() not in (None, 0) for p in procs):
        break
      time.sleep(0.5)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  texts = []
  for f in logs:
    f.seek(0)
    texts.append(f.read())
    f.close()
  for text in texts:
    for line in text.splitlines():
      if line.startswith(UNSUPPORTED):
        pytest.skip(f'two-process jax.distributed on CPU does not work with jax '
                    f'{jax.__version__}: {line[len(UNSUPPORTED):].strip()}')
  codes = [p.returncode for p in procs]
  assert codes == [0, 0], '\n'.join(f'--- process {i} (exit {c}):\n{t[-3000:]}'
                                    for i, (c, t) in enumerate(zip(codes, texts)))


@pytest.mark.slow
def test_two_processes_train_like_one_process_with_two_devices(tmp_path):
  # ~70 s on a loaded 2-core machine: two workers compile concurrently while this process compiles
  # the one-process reference.
  assert len(jax.devices()) == 2, 'tests/conftest.py should give JAX two CPU devices'
  out = str(tmp_path)
  _write_replay(os.path.join(out, 'replay'))
  config = _config()
  wm = config.world_model
  # The workers start first, so that their compiles overlap with the reference's.
  result = {}
  thread = threading.Thread(target=_run_workers_safe, args=(out, result))
  thread.start()
  # The reference: one process, two devices, the global batch of each update = process 0's share
  # then process 1's, each drawn from its own stream (distributed.sampler_rng).
  replay = Replay(os.path.join(out, 'replay'))
  columns = data.reward_columns(replay.reward_term_names, tuple(wm.get('reward_terms', ())))
  rngs = [distributed.sampler_rng(config.seed, 0, i, 2) for i in (0, 1)]
  model, optimizer = model_lib.from_config(wm), train.make_optimizer(wm)
  mesh = train.make_mesh()
  step = train.make_train_step(model, optimizer, wm, mesh)
  ram_size = replay.sample(1, LENGTH, np.random.default_rng(0))['ram'].shape[-1]
  state = train.create_state(model, optimizer, jax.random.PRNGKey(config.seed), ram_size)
  state = train.replicate(state, mesh)
  for _ in range(STEPS):
    shares = [replay.sample(wm.batch_size // 2, LENGTH, rng) for rng in rngs]
    batch = data.prepare_batch({k: np.concatenate([s[k] for s in shares]) for k in shares[0]},
                               columns)
    state, metrics = step(state, train.shard_batch(batch, mesh))
  reference = jax.tree_util.tree_leaves(jax.device_get(state['params']))
  thread.join()
  if 'skip' in result:
    pytest.skip(result['skip'])
  if 'error' in result:
    raise result['error']
  procs = [np.load(os.path.join(out, f'proc{i}.npz')) for i in (0, 1)]
  for got in procs:
    assert int(got['step']) == STEPS
    np.testing.assert_allclose(float(got['loss']), float(metrics['loss']), rtol=2e-4)
    leaves = [got[f'arr_{k}'] for k in range(len(reference))]
    for a, b in zip(reference, leaves):   # Adam steps are ~lr; see test_world_model_train.
      np.testing.assert_allclose(a, b, atol=0.1 * wm.lr)
  # Orbax wrote the checkpoint once, whole: one process reads back what the two trained.
  ckpt = train.Checkpoints(os.path.join(out, 'wm'))
  assert ckpt.latest_step() == STEPS
  restored = ckpt.restore(train.abstract_like(jax.device_get(state)))
  ckpt.close()
  for a, b in zip(jax.tree_util.tree_leaves(restored['params']),
                  [procs[0][f'arr_{k}'] for k in range(len(reference))]):
    np.testing.assert_array_equal(np.asarray(a), b)


def _run_workers_safe(out, result):
  """`_run_workers` on a thread: its skip or failure is handed to the test in `result`."""
  try:
    _run_workers(out)
  except pytest.skip.Exception as e:
    result['skip'] = str(e)
  except BaseException as e:  # pylint: disable=broad-except
    result['error'] = e


if __name__ == '__main__':
  _worker(sys.argv[1])

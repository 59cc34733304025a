"""Parallel collection: N emulator worker processes step in lockstep; the policy runs batched here.

Each iteration the policy sees every worker's current observation at once (`policy(obs) -> [N]`
actions), the steps are appended to the replay (one stream per worker), and every worker advances
one step. Frames and RAM vectors come back through one shared-memory block (a slot per worker);
only small control messages (actions, rewards, flags, the info dict, periodic save states) go
through pipes. A worker whose episode ended resets instead of stepping (its last step's action is
ignored, as in DreamerV3).

Every `save_every` steps a worker sends its emulator save state here; if a worker dies (a crash,
SIGKILL, the OOM killer), it is restarted from that state as a new episode (`is_first`), and the
steps it produced before are kept: they are already in the replay.

Workers start in 'forkserver' processes, so a learner that has started JAX threads can collect.
"""

import functools
import multiprocessing
import os
from multiprocessing import shared_memory
import time

import numpy as np

from dreamer_jax.envs import replay as replay_lib
from dreamer_jax.errors import UserError

_FRAME_BYTES = replay_lib.FRAME_SHAPE[0] * replay_lib.FRAME_SHAPE[1]
MAX_RAM_FEATURES = 1024
_SLOT_BYTES = _FRAME_BYTES + 4 * MAX_RAM_FEATURES
# config.collector.num_workers=0 means one emulator per core, at most this many.
MAX_DEFAULT_WORKERS = 64
# A worker that dies this many times in a row without completing a step is not restarted again.
_MAX_CONSECUTIVE_RESTARTS = 3


def env_factory(env_config, reward_config):
  """A picklable function that builds `GameBoyEnv` from `config.env` and `config.reward`."""
  from dreamer_jax.envs import gb_env  # pylint: disable=g-import-not-at-top
  return functools.partial(gb_env.GameBoyEnv.from_config, dict(env_config), dict(reward_config))


def _slot_views(buf, slot):
  offset = slot * _SLOT_BYTES
  frame = np.ndarray(replay_lib.FRAME_SHAPE, np.uint8, buffer=buf, offset=offset)
  ram = np.ndarray((MAX_RAM_FEATURES,), np.float32, buffer=buf, offset=offset + _FRAME_BYTES)
  return frame, ram


def _worker(conn, env_fn, shm_name, slot, seed, state, save_every):
  """A worker process: builds the env, then answers step commands until told to stop.

  Replies are (reward, terminated, truncated, info, ram_size, save_state or None) after the
  observation has been written to the worker's shared-memory slot; a failure replies ('error', ...).
  """
  shm = shared_memory.SharedMemory(name=shm_name)
  frame_view, ram_view = _slot_views(shm.buf, slot)
  try:
    env = env_fn()

    def publish(obs, reward, terminated, truncated, info, save):
      ram = np.asarray(obs['ram'], np.float32)
      if ram.shape[0] > MAX_RAM_FEATURES:
        raise ValueError(f'{ram.shape[0]} RAM features exceed the limit {MAX_RAM_FEATURES}')
      frame_view[...] = obs['frame']
      ram_view[:ram.shape[0]] = ram
      conn.send((reward, terminated, truncated, info, ram.shape[0], save))

    obs, info = env.reset(seed=seed, options=None if state is None else {'state': state})
    publish(obs, 0.0, False, False, info, None)
    # Save states (~25 ms) are taken after a reply, while the learner runs its policy, and travel
    # with the next reply.
    save = env.save_state()
    done, steps = False, 0
    while True:
      action = conn.recv()
      if action is None:
        break
      if done or action < 0:   # A negative action starts a new episode now (`Collector.reset`).
        obs, info = env.reset()
        reward, terminated, truncated = 0.0, False, False
      else:
        obs, reward, terminated, truncated, info = env.step(action)
      done = terminated or truncated
      steps += 1
      publish(obs, reward, terminated, truncated, info, save)
      save = env.save_state() if steps % save_every == 0 else None
    env.close()
  except (EOFError, KeyboardInterrupt):
    pass  # The learner went away: nothing left to do.
  except Exception as e:  # pylint: disable=broad-except
    # Sent to the learner, which raises it: a broken env must stop collection, not restart forever.
    conn.send(('error', type(e).__name__, str(e), isinstance(e, UserError)))
  finally:
    del frame_view, ram_view
    shm.close()


def resolve_workers(n):
  """config.collector.num_workers -> the emulator count: 0 = one per core (os.cpu_count(), at most
  MAX_DEFAULT_WORKERS), a positive count as given; a negative count raises UserError."""
  n = int(n)
  if n < 0:
    raise UserError(f'collector num_workers={n} must be 0 (one emulator per core) or a positive '
                    'count of emulators.')
  return n or min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS)


class Collector:
  """Steps `num_workers` environments in worker processes and writes their steps into `replay`.

  Args:
    env_fn: picklable zero-argument function returning a gymnasium env with the GameBoyEnv
      interface: obs {'frame', 'ram'}, info['reward_terms'], save_state(),
      reset(options={'state': bytes}).
    num_workers: N worker processes.
    replay: a `replay.Replay`; worker i writes stream `stream_offset + i`. None for a collector
      that only `step`s (an evaluation: nothing is stored).
    save_every: steps between a worker's save states (what a restart resumes from).
    seed: worker i's first reset gets seed + i.
    on_chunk: optional callback(index) for each chunk the replay reports written.
  """

  def __init__(self, env_fn, num_workers, replay, save_every=500, seed=0, on_chunk=None,
               stream_offset=0):
    if num_workers < 1:
      raise UserError(f'collector num_workers={num_workers} must be at least 1.')
    if save_every < 1:
      raise UserError(f'collector save_every={save_every} must be at least 1.')
    self.num_workers = num_workers
    self.replay = replay
    self.on_chunk = on_chunk
    self.restarts = 0
    self.written_chunks = []
    self._env_fn = env_fn
    self._save_every = save_every
    self._streams = [stream_offset + i for i in range(num_workers)]
    self._ctx = multiprocessing.get_context('forkserver')
    self._shm = shared_memory.SharedMemory(create=True, size=num_workers * _SLOT_BYTES)
    self._views = [_slot_views(self._shm.buf, i) for i in range(num_workers)]
    self._procs = [None] * num_workers
    self._conns = [None] * num_workers
    self._saved = [None] * num_workers
    self._failures = [0] * num_workers
    self._current = [None] * num_workers  # Each worker's latest step, awaiting its action.
    for i in range(num_workers):
      self._start(i, seed=seed + i)
    for i in range(num_workers):
      self._current[i] = self._receive(i, is_first=True)

  @classmethod
  def from_config(cls, config, replay, **kwargs):
    """A collector over `config.env`/`config.reward` with `config.collector`'s settings
    (num_workers through `resolve_workers`: 0 = one emulator per core)."""
    return cls(env_factory(config.env, config.reward),
               resolve_workers(config.collector.num_workers), replay,
               save_every=config.collector.save_every, seed=config.seed, **kwargs)

  def _start(self, i, seed=None):
    parent_conn, child_conn = self._ctx.Pipe()
    proc = self._ctx.Process(
        target=_worker, name=f'collector-worker-{i}', daemon=True,
        args=(child_conn, self._env_fn, self._shm.name, i, seed, self._saved[i], self._save_every))
    proc.start()
    child_conn.close()  # So that the worker's death shows here as EOF.
    self._procs[i], self._conns[i] = proc, parent_conn

  def _receive(self, i, is_first):
    """Waits for worker i's reply and returns its step; restarts the worker if it died."""
    try:
      reply = self._conns[i].recv()
    except (EOFError, ConnectionError):
      return self._restart(i)
    if reply[0] == 'error':
      _, kind, message, user_error = reply
      self.close()
      if user_error:
        raise UserError(message)
      raise RuntimeError(f'collector worker {i} failed: {kind}: {message}')
    reward, terminated, truncated, info, ram_size, save = reply
    self._failures[i] = 0
    if save is not None:
      self._saved[i] = save
    frame, ram = self._views[i]
    return dict(frame=frame.copy(), ram=ram[:ram_size].copy(), reward=float(reward),
                reward_terms=info.get('reward_terms', {}), is_first=is_first,
                is_terminal=bool(terminated), is_last=bool(terminated or truncated), info=info)

  def _restart(self, i):
    self._procs[i].join()
    self._conns[i].close()
    self._failures[i] += 1
    if self._failures[i] > _MAX_CONSECUTIVE_RESTARTS:
      code = self._procs[i].exitcode
      self.close()
      raise RuntimeError(f'collector worker {i} died {self._failures[i]} times in a row '
                         f'(last exit code {code}); giving up.')
    self.restarts += 1
    self._start(i)
    return self._receive(i, is_first=True)

  def worker_pids(self):
    return [p.pid for p in self._procs]

  def observation(self):
    """The batch the policy sees (arrays only): frame uint8 [N, 144, 160], ram float32 [N, R],
    reward float32 [N], is_first, is_terminal, is_last bool [N]."""
    cur = self._current
    return dict(
        frame=np.stack([c['frame'] for c in cur]), ram=np.stack([c['ram'] for c in cur]),
        reward=np.array([c['reward'] for c in cur], np.float32),
        **{flag: np.array([c[flag] for c in cur]) for flag in replay_lib.FLAGS})

  def infos(self):
    """The N info dicts of the current steps ('state' is System 2's view of each game)."""
    return [c['info'] for c in self._current]

  def collect(self, policy, num_steps):
    """Runs ceil(num_steps / N) lockstep iterations; returns figures for logging.

    Args:
      policy: function(obs batch, see `observation`) -> int actions [N], or (actions, extras) with
        extras a dict of per-worker arrays [N, ...] stored with each step (e.g. the goal System 1
        pursued, in the replay's `goal` field).
      num_steps: environment steps to collect, over all workers.

    Returns:
      dict: steps, episodes (finished), restarts (during this call), chunks (indices written),
      steps_per_s.
    """
    start, restarts, episodes, chunks = time.perf_counter(), self.restarts, 0, []
    iterations = -(-num_steps // self.num_workers)
    for _ in range(iterations):
      out = policy(self.observation())
      extras = {}
      if isinstance(out, tuple):
        out, extras = out
      actions = np.asarray(out)
      if actions.shape != (self.num_workers,):
        raise ValueError(
            f'policy returned actions of shape {actions.shape}; expected ({self.num_workers},)')
      workers = range(self.num_workers)
      self._send(workers, [int(a) for a in actions])
      # The replay writes while the workers step.
      for i, step in enumerate(self._current):
        step = dict(step, action=int(actions[i]), **{k: v[i] for k, v in extras.items()})
        episodes += step['is_last']
        index = self.replay.add(step, stream=self._streams[i])
        if index is not None:
          chunks.append(self._report(index))
      self._receive_all(workers)
    elapsed = time.perf_counter() - start
    steps = iterations * self.num_workers
    return dict(steps=steps, episodes=episodes, restarts=self.restarts - restarts, chunks=chunks,
                steps_per_s=steps / elapsed)

  def _send(self, workers, commands):
    """Sends worker i in `workers` its command (an action; -1 starts a new episode)."""
    for i, command in zip(workers, commands):
      try:
        self._conns[i].send(command)
      except (BrokenPipeError, ConnectionError):
        pass  # Dead already: the receive after restarts it.

  def _receive_all(self, workers, is_first=None):
    """Each of `workers`' next step into `current()`; a step follows a last one as a first one
    (or is one, when `is_first`)."""
    for i in workers:
      self._current[i] = self._receive(
          i, is_first=self._current[i]['is_last'] if is_first is None else is_first)

  def step(self, actions):
    """One lockstep iteration that stores nothing: worker i takes `actions[i]` (a worker whose
    episode ended resets instead); `current()` then holds the new steps."""
    workers = range(self.num_workers)
    self._send(workers, [int(a) for a in actions])
    self._receive_all(workers)

  def reset(self, workers):
    """Starts a new episode now in each of `workers` (indices); `current()` holds their first
    steps."""
    self._send(workers, [-1] * len(workers))
    self._receive_all(workers, is_first=True)

  def current(self):
    """Each worker's latest step: frame, ram, reward, reward_terms, is_first, is_terminal, is_last,
    info."""
    return list(self._current)

  def _report(self, index):
    self.written_chunks.append(index)
    if self.on_chunk is not None:
      self.on_chunk(index)
    return index

  def close(self):
    """Stops the workers and writes every buffered step to the replay."""
    if self._shm is None:
      return
    for conn in self._conns:
      try:
        conn.send(None)
      except (OSError, ValueError):
        pass  # Already dead or closed.
    for proc, conn in zip(self._procs, self._conns):
      proc.join(timeout=10)
      if proc.is_alive():
        proc.kill()
        proc.join()
      conn.close()
    for index in (self.replay.flush() if self.replay is not None else ()):
      self._report(index)
    self._views = None
    self._shm.close()
    self._shm.unlink()
    self._shm = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

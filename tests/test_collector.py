"""Collector: lockstep workers, shared-memory frames, restarts after SIGKILL, a killed learner."""

import functools
import os
import pickle
import signal

import numpy as np
import pytest

from dreamer_jax.envs import collector as collector_lib
from dreamer_jax.envs import replay as replay_lib
from dreamer_jax.errors import UserError


class FakeEnv:
  """A deterministic env with GameBoyEnv's interface: the observation encodes the action history.

  ram = [t / 255, h / 2**20, action_hash_of_t / 2**20, 0, 0] with h advanced by each action, so a
  test can check that every stored step follows from the previous one and its action.
  """

  EPISODE_LENGTH = 7

  def __init__(self):
    self.t, self.h = 0, 1

  def _obs(self):
    frame = ((np.arange(144 * 160).reshape(144, 160) // 7 + self.h) % 4).astype(np.uint8)
    # The hash as three bytes /255: the replay stores RAM at float16, which holds each exactly.
    ram = np.array([self.t, self.h >> 16, (self.h >> 8) & 255, self.h & 255, 0], np.float32) / 255
    return {'frame': frame, 'ram': ram}

  def _info(self, terms):
    return {'state': {'t': self.t}, 'reward_terms': terms, 'frames': 24 * self.t}

  def reset(self, seed=None, options=None):
    if options and options.get('state') is not None:
      self.t, self.h = pickle.loads(options['state'])
    else:
      self.t, self.h = 0, 1 + (seed or 0)
    return self._obs(), self._info({'a': 0.0, 'b': 0.0})

  def step(self, action):
    self.t += 1
    self.h = next_hash(self.h, action)
    reward = float(action)
    return (self._obs(), reward, False, self.t >= self.EPISODE_LENGTH,
            self._info({'a': reward, 'b': 1.0}))

  def save_state(self):
    return pickle.dumps((self.t, self.h))

  def close(self):
    pass


def next_hash(h, action):
  return (h * 31 + int(action) + 1) % 2**20


def stored_hash(ram):
  b = np.rint(np.asarray(ram)[..., 1:4] * 255).astype(int)
  return (b[..., 0] << 16) | (b[..., 1] << 8) | b[..., 2]


def check_transitions(episode):
  """Every step follows from the previous step and its action."""
  t = np.rint(episode['ram'][:, 0] * 255).astype(int)
  h = stored_hash(episode['ram'])
  for k in range(1, len(t)):
    assert t[k] == t[k - 1] + 1 and h[k] == next_hash(h[k - 1], episode['action'][k - 1])
    expected = ((np.arange(144 * 160).reshape(144, 160) // 7 + h[k]) % 4)
    np.testing.assert_array_equal(episode['frame'][k], expected)


def cycling_policy(obs):
  return (np.arange(len(obs['frame'])) + np.rint(obs['ram'][:, 0] * 255).astype(int)) % 8


def test_lockstep_collection_writes_consistent_streams(tmp_path):
  replay = replay_lib.Replay(tmp_path, chunk_size=8)
  with collector_lib.Collector(FakeEnv, 2, replay, save_every=3) as collector:
    stats = collector.collect(cycling_policy, 40)
  assert stats['steps'] == 40 and stats['restarts'] == 0 and stats['episodes'] == 4
  assert len(replay) == 40 and replay.reward_term_names == ('a', 'b')
  episodes = list(replay.episodes())
  assert len(episodes) == 4
  for episode in episodes:
    assert len(episode['action']) == FakeEnv.EPISODE_LENGTH + 1
    assert episode['is_last'][-1] and not episode['is_terminal'].any()
    check_transitions(episode)
  # Worker i's first reset got seed i (h = 1 + seed); later resets take no seed.
  assert sorted(int(stored_hash(e['ram'][0])) for e in episodes) == [1, 1, 1, 2]


def piece_summary(piece):
  return (int(np.rint(piece['ram'][0, 0] * 255)), len(piece['action']), bool(piece['is_first'][0]),
          bool(piece['is_last'][-1]))


def test_sigkilled_worker_restarts_from_its_save_state(tmp_path):
  replay = replay_lib.Replay(tmp_path, chunk_size=8)
  with collector_lib.Collector(FakeEnv, 2, replay, save_every=2) as collector:
    collector.collect(cycling_policy, 10)  # 5 steps each: the last save states were taken at t=4.
    os.kill(collector.worker_pids()[1], signal.SIGKILL)
    stats = collector.collect(cycling_policy, 20)
  assert stats['restarts'] == 1 and len(replay) == 30
  pieces = list(replay.episodes(include_partial=True))
  for piece in pieces:
    check_transitions(piece)
  # (first t, steps, starts an episode, ends one). Worker 0: two episodes, the second unfinished.
  # Worker 1: its steps t=0..5 before the kill are kept; it resumed at its save (t=4) as a new
  # episode, finished it at t=7 and began another.
  assert sorted(map(piece_summary, pieces)) == sorted([
      (0, 8, True, True), (0, 7, True, False),
      (0, 6, True, False), (4, 4, True, True), (0, 5, True, False)])


def learner_main(directory):
  """Collects forever, printing 'written <index> <digest>' for each chunk the collector reports."""
  from tests.test_replay import digest  # pylint: disable=g-import-not-at-top
  replay = replay_lib.Replay(directory, chunk_size=4)
  report = lambda index: print('written', index, digest(replay.chunk(index)), flush=True)
  collector = collector_lib.Collector(FakeEnv, 2, replay, on_chunk=report)
  while True:
    collector.collect(cycling_policy, 2)


def test_sigkilled_learner_loses_no_reported_chunk(tmp_path):
  from tests.test_replay import assert_sigkill_loses_no_reported_chunk  # pylint: disable=g-import-not-at-top
  assert_sigkill_loses_no_reported_chunk(tmp_path, 'tests.test_collector', 'learner_main', 30, 4)


def test_frames_match_a_direct_env(tmp_path):
  from dreamer_jax.envs import gb_env  # pylint: disable=g-import-not-at-top
  replay = replay_lib.Replay(tmp_path, chunk_size=8)
  actions = np.random.default_rng(0).integers(0, 8, size=(12, 2))
  policy_calls = iter(actions)
  with collector_lib.Collector(gb_env.GameBoyEnv, 2, replay) as collector:
    collector.collect(lambda obs: next(policy_calls), 24)
    infos = collector.infos()  # After each worker's 12th step.
  streams = list(replay.episodes(include_partial=True))
  assert len(streams) == 2
  env = gb_env.GameBoyEnv()
  for worker, stored in enumerate(streams):
    obs, _ = env.reset()
    frames, rams = [obs['frame']], [obs['ram']]
    for action in actions[:-1, worker]:
      obs, *_ = env.step(action)
      frames.append(obs['frame'])
      rams.append(obs['ram'])
    np.testing.assert_array_equal(stored['action'], actions[:, worker])
    np.testing.assert_array_equal(stored['frame'], frames)
    np.testing.assert_array_equal(stored['ram'], replay_lib.stored_ram(rams))
    *_, info = env.step(actions[-1, worker])
    assert infos[worker]['state'] == info['state']
  # Different actions, so the streams really differ by the end (they start from one state).
  assert not np.array_equal(streams[0]['frame'], streams[1]['frame'])
  env.close()


def test_a_user_error_in_a_worker_reaches_the_learner_as_one_sentence(tmp_path):
  from dreamer_jax.envs import gb_env  # pylint: disable=g-import-not-at-top
  missing = str(tmp_path / 'missing.gb')
  env_fn = functools.partial(gb_env.GameBoyEnv, rom_path=missing)
  with pytest.raises(UserError, match=f'ROM file {missing!r} does not exist'):
    collector_lib.Collector(env_fn, 2, replay_lib.Replay(tmp_path / 'replay'))


def test_step_and_reset_without_a_replay():
  # The agent evaluation's use: lockstep steps that store nothing, and a new episode on demand in
  # one worker mid-episode (an evaluation episode also ends when the game is won).
  with collector_lib.Collector(FakeEnv, 2, replay=None, seed=0) as collector:
    for _ in range(3):
      collector.step(np.array([1, 2]))
    t = lambda: [int(np.rint(c['ram'][0] * 255)) for c in collector.current()]
    assert t() == [3, 3] and not any(c['is_first'] for c in collector.current())
    collector.reset([1])
    current = collector.current()
    assert t() == [3, 0] and current[1]['is_first'] and not current[0]['is_first']
    assert stored_hash(current[1]['ram']) == 1   # A fresh start (later resets take no seed).
    collector.step(np.array([0, 0]))
    assert t() == [4, 1]

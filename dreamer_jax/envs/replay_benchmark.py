"""The replay benchmark: `python -m experiments.benchmark --suite replay --json [--quick]`.

On a synthetic replay of config.replay.capacity steps (20,000 with `quick`) in chunks of
config.replay.chunk_size, written once under $DREAMER_JAX_CACHE (else ~/.cache/dreamer_jax) in
bench_replay/ (~6 GB at a million steps): the resident memory of opening it and sampling
sample(16, 64) from it, the peak RSS over the process's own start (VmHWM minus VmRSS before
opening, in a child process each, so that nothing else this process did counts), and samples/s,
both for the replay as it is (frames read from the chunk files) and with frames_in_memory=True (how
the replay held every chunk before). The speed of the two is measured in one process, in
alternating rounds, best of each, since other processes on the machine slow both alike; the files
are in the page cache then (just written, or just read whole by the in-memory open), as they are
for a replay being trained on. Also the peak RSS of reading the drift evaluation's windows.
"""

import json
import os
import shutil
import subprocess
import sys
import time

from absl import logging
import numpy as np

from dreamer_jax.envs import features
from dreamer_jax.envs import replay as replay_lib
from dreamer_jax.envs import rewards
from dreamer_jax.envs import start_states

BATCH, LENGTH = 16, 64
EPISODE_STEPS = 1000  # The synthetic episodes' length: walks, battles, menus all take ~1,000 steps.
EVAL_WINDOWS, EVAL_LENGTH = 256, 65  # The drift evaluation's windows (context + horizon).
RSS_TARGET_MB = 2048
SPEED_TARGET = 0.9  # Samples/s from the files over samples/s with every frame held in memory.
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _memory_kb():
  """(VmRSS, VmHWM) of this process in kB."""
  with open('/proc/self/status') as f:
    fields = dict(line.split(':', 1) for line in f)
  return tuple(int(fields[k].split()[0]) for k in ('VmRSS', 'VmHWM'))


def synthetic_replay(steps, chunk_size):
  """The directory of a synthetic replay of `steps` steps, written on the first call: two
  interleaved streams (two collector workers) of EPISODE_STEPS-step episodes, random frames."""
  directory = os.path.join(start_states.cache_dir(), 'bench_replay', f'{steps}x{chunk_size}')
  marker = os.path.join(directory, 'complete')  # Not a chunk name: a Replay ignores it.
  if os.path.exists(marker):
    return directory
  shutil.rmtree(directory, ignore_errors=True)  # A write cut short: start again.
  logging.info('writing a %d-step replay to %s', steps, directory)
  replay = replay_lib.Replay(directory, chunk_size=chunk_size)
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 4, size=(97,) + replay_lib.FRAME_SHAPE, dtype=np.uint8)
  ram = rng.random((97, features.RAM_FEATURES), dtype=np.float32)
  terms = {name: 0.0 for name in rewards.TERMS}
  for t in range(steps // 2):
    for stream in (0, 1):
      i = (2 * t + stream) % len(frames)
      replay.add(dict(frame=frames[i], ram=ram[i], action=t % 8, reward=0.0, reward_terms=terms,
                      is_first=t % EPISODE_STEPS == 0, is_terminal=False,
                      is_last=t % EPISODE_STEPS == EPISODE_STEPS - 1), stream=stream)
  replay.flush()
  with open(marker, 'w') as f:
    f.write(f'{len(replay)}\n')
  return directory


def _rates(replays, rounds, samples):
  """Best samples/s of sample(BATCH, LENGTH) for each replay, over alternating rounds."""
  rngs = [np.random.default_rng(0) for _ in replays]
  for replay, rng in zip(replays, rngs):
    replay.sample(BATCH, LENGTH, rng)  # Warm-up.
  best = [0.0] * len(replays)
  for _ in range(rounds):
    for i, (replay, rng) in enumerate(zip(replays, rngs)):
      start = time.perf_counter()
      for _ in range(samples):
        replay.sample(BATCH, LENGTH, rng)
      best[i] = max(best[i], samples / (time.perf_counter() - start))
  return best


def measure(directory, chunk_size, frames_in_memory, rounds, samples):
  """One child's figures (run in a fresh process by `run`): open, sample, and then either the
  evaluation windows (from the files) or the paired speed of both ways (in memory)."""
  base, _ = _memory_kb()
  start = time.perf_counter()
  replay = replay_lib.Replay(directory, chunk_size=chunk_size, frames_in_memory=frames_in_memory)
  out = dict(open_s=time.perf_counter() - start, open_rss_mb=(_memory_kb()[0] - base) / 1024,
             steps=len(replay), gb_on_disk=replay.bytes_on_disk() / 1e9)
  if frames_in_memory:
    # The peak before the other replay is opened beside it for the paired speed.
    out['alone_samples_per_s'], = _rates([replay], 1, samples)
    out['peak_rss_mb'] = (_memory_kb()[1] - base) / 1024
    files = replay_lib.Replay(directory, chunk_size=chunk_size)
    out['samples_per_s_in_memory'], out['samples_per_s'] = _rates([replay, files], rounds, samples)
  else:
    out['alone_samples_per_s'], = _rates([replay], rounds, samples)
    out['peak_rss_mb'] = (_memory_kb()[1] - base) / 1024
    # The drift evaluation's reads: its windows' steps only (`evaluate.sample_windows`).
    rng = np.random.default_rng(0)
    spans = [s for s in replay.episode_spans(include_partial=True) if s[2] - s[1] >= EVAL_LENGTH]
    windows = []
    for i in rng.integers(0, len(spans), EVAL_WINDOWS):
      run, begin, end = spans[i]
      windows.append(replay.window(run, begin + rng.integers(0, end - begin - EVAL_LENGTH + 1),
                                   EVAL_LENGTH))
    out['eval_windows_peak_rss_mb'] = (_memory_kb()[1] - base) / 1024
  return out


def _child(directory, chunk_size, frames_in_memory, rounds, samples):
  code = ('import json, sys; from dreamer_jax.envs.replay_benchmark import measure; '
          'print(json.dumps(measure(*json.loads(sys.argv[1]))))')
  args = json.dumps([directory, chunk_size, frames_in_memory, rounds, samples])
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [_REPO] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
  proc = subprocess.run([sys.executable, '-c', code, args], env=env, capture_output=True,
                        text=True, check=False)
  if proc.returncode:
    raise RuntimeError(f'the replay benchmark child failed:\n{proc.stderr}')
  return json.loads(proc.stdout.splitlines()[-1])


def run(config, quick=False):
  """Runs the replay suite on config.replay (capacity, chunk_size); returns {figure: value}."""
  steps = 20_000 if quick else int(config.replay.capacity)
  chunk_size = int(config.replay.chunk_size)
  rounds, samples = (2, 5) if quick else (5, 40)
  directory = synthetic_replay(steps, chunk_size)
  files = _child(directory, chunk_size, False, rounds, samples)
  memory = _child(directory, chunk_size, True, rounds, samples)
  results = dict(
      replay_steps=files['steps'], replay_chunk_size=chunk_size,
      replay_gb_on_disk=files['gb_on_disk'], replay_batch=BATCH, replay_sequence_length=LENGTH,
      replay_open_s=files['open_s'], replay_open_rss_mb=files['open_rss_mb'],
      replay_peak_rss_mb=files['peak_rss_mb'],
      replay_eval_windows_peak_rss_mb=files['eval_windows_peak_rss_mb'],
      replay_samples_per_s_alone=files['alone_samples_per_s'],
      replay_samples_per_s=memory['samples_per_s'],
      replay_open_s_in_memory=memory['open_s'], replay_open_rss_mb_in_memory=memory['open_rss_mb'],
      replay_peak_rss_mb_in_memory=memory['peak_rss_mb'],
      replay_samples_per_s_in_memory=memory['samples_per_s_in_memory'],
      replay_speed_over_in_memory=memory['samples_per_s'] / memory['samples_per_s_in_memory'],
      replay_rss_target_mb=RSS_TARGET_MB, replay_speed_target=SPEED_TARGET)
  results['targets_met'] = bool(results['replay_peak_rss_mb'] <= RSS_TARGET_MB
                                and results['replay_eval_windows_peak_rss_mb'] <= RSS_TARGET_MB
                                and results['replay_speed_over_in_memory'] >= SPEED_TARGET)
  return results

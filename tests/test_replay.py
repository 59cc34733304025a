"""Replay: 2-bit packing, sampling, eviction, reopening, surviving a SIGKILL mid-write, frames read
from the chunk files (equal to reading the files whole, never held in memory), older chunk layouts,
and the drift evaluation's windows."""

import hashlib
import os
import signal
import subprocess
import sys
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

from dreamer_jax.envs import replay as replay_lib
from dreamer_jax.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TERMS = ('badge', 'xp')
RAM_SIZE = 16


def make_step(t, stream=0, episode_length=10):
  """A step whose every field is a known function of (t, stream), so reloaded data can be checked.
  """
  frame = ((np.arange(144 * 160).reshape(144, 160) + 3 * t + stream) % 4).astype(np.uint8)
  ram = (np.arange(RAM_SIZE) + t + 7 * stream) % 256 / 255.0
  ends = t % episode_length == episode_length - 1
  return dict(frame=frame, ram=ram.astype(np.float32), action=t % 8, reward=float(t),
              reward_terms={'badge': float(stream), 'xp': 0.5 * t},
              is_first=t % episode_length == 0, is_terminal=ends, is_last=ends)


def digest(chunk):
  h = hashlib.sha1()
  for key in sorted(chunk):
    h.update(key.encode())
    h.update(np.ascontiguousarray(chunk[key]).tobytes())
  return h.hexdigest()


def fill(replay, steps, streams=1, episode_length=10):
  for t in range(steps):
    for s in range(streams):
      replay.add(make_step(t, s, episode_length), stream=s)


def test_pack_unpack_round_trip():
  frames = np.random.default_rng(0).integers(0, 4, size=(3, 5, 144, 160), dtype=np.uint8)
  packed = replay_lib.pack_frames(frames)
  assert packed.shape == (3, 5, replay_lib.PACKED_BYTES) and packed.dtype == np.uint8
  np.testing.assert_array_equal(replay_lib.unpack_frames(packed), frames)


def test_a_stored_env_step_takes_at_most_6000_bytes(tmp_path):
  from dreamer_jax.envs import gb_env  # pylint: disable=g-import-not-at-top
  from dreamer_jax.envs import rewards  # pylint: disable=g-import-not-at-top
  replay = replay_lib.Replay(tmp_path)  # The default chunk size.
  step = dict(frame=np.zeros((144, 160), np.uint8), ram=np.zeros(gb_env.RAM_FEATURES), action=0,
              reward=0.0, reward_terms={t: 0.0 for t in rewards.TERMS}, is_first=False,
              is_terminal=False, is_last=False)
  for _ in range(2 * replay.chunk_size):
    replay.add(step)
  assert replay.bytes_on_disk() / len(replay) <= 6000


def test_sample_shapes_dtypes_and_consecutive_steps(tmp_path):
  replay = replay_lib.Replay(tmp_path, chunk_size=16)
  fill(replay, 100, streams=2)
  batch = replay.sample(8, 20, np.random.default_rng(1))
  expected = dict(frame=((8, 20, 144, 160), np.uint8), ram=((8, 20, RAM_SIZE), np.float32),
                  action=((8, 20), np.int32), reward=((8, 20), np.float32),
                  reward_terms=((8, 20, 2), np.float32), is_first=((8, 20), np.bool_),
                  is_terminal=((8, 20), np.bool_), is_last=((8, 20), np.bool_),
                  expert_action=((8, 20), np.int32), goal=((8, 20, 4), np.int32))
  assert {k: (v.shape, v.dtype) for k, v in batch.items()} == expected
  # make_step records no labels: behaviour cloning must see "none", not a zero action or goal.
  assert (batch['expert_action'] == -1).all() and (batch['goal'] == -1).all()
  assert replay.reward_term_names == TERMS
  for b in range(8):
    # reward == t and the stream is in reward_terms: consecutive steps of one stream, across chunks.
    t0, stream = int(batch['reward'][b, 0]), int(batch['reward_terms'][b, 0, 0])
    want = [make_step(t, stream) for t in range(t0, t0 + 20)]
    np.testing.assert_array_equal(batch['frame'][b], [s['frame'] for s in want])
    np.testing.assert_array_equal(batch['action'][b], [s['action'] for s in want])
    np.testing.assert_array_equal(batch['is_first'][b], [s['is_first'] for s in want])
    np.testing.assert_array_equal(batch['ram'][b], [replay_lib.stored_ram(s['ram']) for s in want])
  again = replay.sample(8, 20, np.random.default_rng(1))
  assert all(np.array_equal(again[k], batch[k]) for k in batch)


def test_episodes_are_whole_and_in_order(tmp_path):
  replay = replay_lib.Replay(tmp_path, chunk_size=16)
  fill(replay, 45, episode_length=10)
  replay.flush()
  episodes = list(replay.episodes())
  assert [int(e['reward'][0]) for e in episodes] == [0, 10, 20, 30]
  for e in episodes:
    assert e['frame'].shape == (10, 144, 160)
    assert e['is_first'][0] and not e['is_first'][1:].any() and e['is_last'][-1]
  assert len(list(replay.episodes(include_partial=True))) == 5


def test_capacity_evicts_oldest_chunks_first(tmp_path):
  replay = replay_lib.Replay(tmp_path, capacity=40, chunk_size=10)
  fill(replay, 95)
  assert len(replay) == 40
  kept = [int(replay.chunk(i)['reward'][0]) for i in replay.chunk_ids()]
  assert kept == [50, 60, 70, 80]
  assert sorted(os.listdir(tmp_path)) == [f'chunk-{i:09d}.npz' for i in range(5, 9)]


def test_reopen_restores_exactly(tmp_path):
  replay = replay_lib.Replay(tmp_path, chunk_size=16)
  fill(replay, 50, streams=3)
  replay.flush()
  reopened = replay_lib.Replay(tmp_path, chunk_size=16)
  assert reopened.chunk_ids() == replay.chunk_ids() and len(reopened) == len(replay) == 150
  for i in replay.chunk_ids():
    assert digest(reopened.chunk(i)) == digest(replay.chunk(i))
  for seed in range(3):
    a = replay.sample(4, 30, np.random.default_rng(seed))
    b = reopened.sample(4, 30, np.random.default_rng(seed))
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_corrupt_chunk_and_leftover_temp_file_are_skipped(tmp_path):
  replay = replay_lib.Replay(tmp_path, chunk_size=10)
  fill(replay, 30)
  with open(replay_lib.chunk_path(tmp_path, 1), 'r+b') as f:
    f.truncate(100)
  # A temporary file left by a killed writer goes; one of a writer still running stays.
  dead = subprocess.Popen([sys.executable, '-c', 'pass'])
  dead.wait()
  leftover = f'{replay_lib.chunk_path(tmp_path, 3)}.{dead.pid}.tmp'
  in_progress = f'{replay_lib.chunk_path(tmp_path, 4)}.{os.getpid()}.tmp'
  for path in (leftover, in_progress):
    with open(path, 'wb') as f:
      f.write(b'half a chunk')
  with pytest.warns(UserWarning, match='chunk-000000001.npz is unreadable'):
    reopened = replay_lib.Replay(tmp_path, chunk_size=10)
  assert reopened.chunk_ids() == [0, 2]
  assert not os.path.exists(leftover) and os.path.exists(in_progress)
  # A new chunk never reuses the index of the damaged file.
  fill(reopened, 10)
  assert reopened.chunk_ids() == [0, 2, 3]


def read_chunk_files(directory):
  """{index: every array of the chunk file}, read whole with np.load: the in-memory reference."""
  chunks = {}
  for name in sorted(os.listdir(directory)):
    with np.load(os.path.join(directory, name)) as data:
      chunks[int(name[len('chunk-'):-len('.npz')])] = {k: data[k] for k in data.files}
  return chunks


def reference_sample(directory, batch_size, length, rng):
  """`Replay.sample` worked out from the chunk files alone: runs of chunks chained by `prev`, a
  start drawn uniformly over every valid position of every run, oldest run first."""
  chunks = read_chunk_files(directory)
  successor = {int(c['prev']): i for i, c in chunks.items() if int(c['prev']) in chunks}
  runs = []
  for index, chunk in chunks.items():
    if int(chunk['prev']) in chunks:
      continue
    run = [index]
    while run[-1] in successor:
      run.append(successor[run[-1]])
    runs.append({k: np.concatenate([chunks[i][k] for i in run]) for k in replay_lib._STEP_KEYS})
  starts = np.array([max(len(r['action']) - length + 1, 0) for r in runs])
  ends = np.cumsum(starts)
  seqs = []
  for position in rng.integers(0, ends[-1], size=batch_size):
    r = int(np.searchsorted(ends, position, side='right'))
    offset = position - (ends[r] - starts[r])
    seqs.append({k: v[offset:offset + length] for k, v in runs[r].items()})
  batch = {k: np.stack([s[k] for s in seqs]) for k in replay_lib._STEP_KEYS}
  return dict(batch, frame=replay_lib.unpack_frames(batch['frame']))


def assert_batches_equal(a, b):
  assert sorted(a) == sorted(b)
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_sampling_from_the_files_equals_reading_them_whole(tmp_path):
  replay = replay_lib.Replay(tmp_path, chunk_size=8)
  fill(replay, 60, streams=3, episode_length=7)
  replay.flush()  # Short last chunks: runs of unequal lengths.
  opened = [replay, replay_lib.Replay(tmp_path, chunk_size=8),
            replay_lib.Replay(tmp_path, chunk_size=8, frames_in_memory=True)]
  for seed in range(4):
    want = reference_sample(tmp_path, 16, 12, np.random.default_rng(seed))
    for r in opened:
      assert_batches_equal(r.sample(16, 12, np.random.default_rng(seed)), want)
  files = read_chunk_files(tmp_path)
  for index in replay.chunk_ids():
    np.testing.assert_array_equal(opened[1].chunk(index)['frame'],
                                  replay_lib.unpack_frames(files[index]['frame']))


def test_frames_stay_in_the_files(tmp_path):
  replay = replay_lib.Replay(tmp_path, chunk_size=16)
  fill(replay, 1600, streams=2)
  replay.flush()
  frame_bytes = len(replay) * replay_lib.PACKED_BYTES  # 18.4 MB.
  # The step table at 16 RAM features is ~100 bytes a step; one frame alone is 5,760.
  assert replay.bytes_in_memory() < len(replay) * 200
  tracemalloc.start()
  try:
    reopened = replay_lib.Replay(tmp_path, chunk_size=16)
    opened, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    for seed in range(10):
      reopened.sample(4, 8, np.random.default_rng(seed))
    assert sum(1 for _ in reopened.episodes()) == 320
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  assert reopened.bytes_in_memory() < len(reopened) * 200
  # Opening holds the step tables and ~5 KB of Python objects per chunk (1 MB for these 200);
  # sampling and episodes then hold one batch at a time, never the chunks' frames: 4 x 8 frames,
  # each 5,760 bytes packed, 23,040 unpacked and 46,080 of int64 indices while unpacking (np.take).
  assert opened < frame_bytes / 10
  assert peak < opened + 4 * 8 * (5_760 + 23_040 + 46_080) + 1_000_000 < frame_bytes / 3
  whole = replay_lib.Replay(tmp_path, chunk_size=16, frames_in_memory=True)
  assert whole.bytes_in_memory() >= frame_bytes


def _write_npy_members(path, arrays, compression, version):
  """A chunk file as older writers may have made it: zip32 headers, another .npy header version."""
  with zipfile.ZipFile(path, 'w', compression) as archive:
    for key, value in arrays.items():
      with archive.open(f'{key}.npy', 'w') as f:
        np.lib.format.write_array(f, np.asanyarray(value), version=version)


_OLD_LAYOUTS = {
    'no_labels': lambda path, arrays: np.savez(path, **{
        k: v for k, v in arrays.items() if k not in replay_lib.LABEL_KEYS}),
    'zip32_npy2': lambda path, arrays: _write_npy_members(path, arrays, zipfile.ZIP_STORED, (2, 0)),
    'zip32_npy1': lambda path, arrays: _write_npy_members(path, arrays, zipfile.ZIP_STORED, (1, 0)),
    'compressed': lambda path, arrays: np.savez_compressed(path, **arrays),
}


@pytest.mark.parametrize('layout', sorted(_OLD_LAYOUTS))
def test_chunks_of_older_layouts_still_open(tmp_path, layout):
  replay = replay_lib.Replay(tmp_path, chunk_size=8)
  fill(replay, 40)
  want = {i: replay.chunk(i) for i in replay.chunk_ids()}
  batch = replay.sample(6, 20, np.random.default_rng(0))
  for index, arrays in read_chunk_files(tmp_path).items():
    _OLD_LAYOUTS[layout](replay_lib.chunk_path(tmp_path, index), arrays)
  with warnings.catch_warnings():
    warnings.simplefilter('error')  # Not one chunk skipped as unreadable.
    reopened = replay_lib.Replay(tmp_path, chunk_size=8)
  assert reopened.chunk_ids() == list(want) and len(reopened) == 40
  for index, chunk in want.items():
    assert digest(reopened.chunk(index)) == digest(chunk)
  assert_batches_equal(reopened.sample(6, 20, np.random.default_rng(0)), batch)
  # Compressed frames cannot be read in place, so those chunks hold theirs in memory.
  held = reopened.bytes_in_memory() >= len(reopened) * replay_lib.PACKED_BYTES
  assert held == (layout == 'compressed')


def test_a_chunk_gone_since_opening_is_one_sentence(tmp_path):
  replay = replay_lib.Replay(tmp_path, chunk_size=8)
  fill(replay, 24)
  reader = replay_lib.Replay(tmp_path, chunk_size=8)
  os.remove(replay_lib.chunk_path(tmp_path, 0))  # As a writer evicting it would.
  with open(replay_lib.chunk_path(tmp_path, 1), 'r+b') as f:
    f.truncate(30_000)  # Inside its frames (8 x 5,760 bytes).
  for index in (0, 1):
    path = replay_lib.chunk_path(tmp_path, index)
    with pytest.raises(UserError, match=f'^replay chunk {path} is gone or shorter .* evicts.$'):
      reader.chunk(index)
  np.testing.assert_array_equal(reader.chunk(2)['reward'], np.arange(16, 24))


def test_evaluation_windows_are_steps_of_their_episodes(tmp_path):
  from dreamer_jax.world_model import evaluate  # pylint: disable=g-import-not-at-top
  replay = replay_lib.Replay(tmp_path, chunk_size=8)
  fill(replay, 95, streams=2, episode_length=30)
  replay.flush()
  episodes = list(replay.episodes(include_partial=True))
  batch, same_map = evaluate.sample_windows(replay, 12, 40, np.random.default_rng(3))
  assert batch['frame'].shape == (40, 12, 144, 160) and same_map.shape == (40,)
  for w in range(40):
    # reward == t and reward_terms[0] == the stream: the window's source episode.
    t0, stream = int(batch['reward'][w, 0]), int(batch['reward_terms'][w, 0, 0])
    (ep,) = [e for e in episodes if e['reward_terms'][0, 0] == stream
             and e['reward'][0] <= t0 and t0 + 12 <= e['reward'][-1] + 1]
    start = t0 - int(ep['reward'][0])
    for key in batch:
      np.testing.assert_array_equal(batch[key][w], ep[key][start:start + 12], err_msg=key)
  # The same windows as when they were cut from whole episodes (the evaluation's figures for a
  # given seed are unchanged).
  rng = np.random.default_rng(3)
  long_enough = [e for e in episodes if len(e['action']) >= 12]
  windows = []
  for i in rng.integers(0, len(long_enough), 40):
    start = rng.integers(0, len(long_enough[i]['action']) - 12 + 1)
    windows.append({k: v[start:start + 12] for k, v in long_enough[i].items()})
  assert_batches_equal(batch, {k: np.stack([w[k] for w in windows]) for k in batch})


def writer_main(directory):
  """Writes chunks forever, printing 'written <index> <digest>' after each chunk is reported."""
  replay = replay_lib.Replay(directory, chunk_size=8)
  t = 0
  while True:
    index = replay.add(make_step(t))
    t += 1
    if index is not None:
      print('written', index, digest(replay.chunk(index)), flush=True)


def assert_sigkill_loses_no_reported_chunk(directory, module, function, count, chunk_size):
  """Runs `module.function(directory)` in a child that prints 'written INDEX DIGEST' per chunk it
  reports, SIGKILLs it after `count` reports, then checks each reported chunk reopens unchanged."""
  proc = subprocess.Popen(
      [sys.executable, '-c', f'from {module} import {function}; {function}({str(directory)!r})'],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  reported = {}
  try:
    while len(reported) < count:
      line = proc.stdout.readline()
      assert line, f'{function} ended early'
      _, index, chunk_digest = line.split()
      reported[int(index)] = chunk_digest
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
  reopened = replay_lib.Replay(directory, chunk_size=chunk_size)
  for index, chunk_digest in reported.items():
    assert digest(reopened.chunk(index)) == chunk_digest


def test_sigkill_mid_write_loses_no_reported_chunk(tmp_path):
  assert_sigkill_loses_no_reported_chunk(tmp_path, 'tests.test_replay', 'writer_main', 40, 8)


def test_steps_of_another_layout_are_refused_in_one_sentence(tmp_path):
  replay = replay_lib.Replay(tmp_path, chunk_size=4)
  fill(replay, 4)
  other = dict(make_step(4), ram=np.zeros(RAM_SIZE + 1, np.float32))
  with pytest.raises(UserError, match='holds steps with 16 RAM features .* to a new directory'):
    replay_lib.Replay(tmp_path, chunk_size=4).add(other)


def test_a_replay_too_short_or_too_fragmented_is_one_sentence(tmp_path):
  replay = replay_lib.Replay(tmp_path, chunk_size=10)
  rng = np.random.default_rng(0)
  with pytest.raises(UserError) as e:
    replay.sample(4, 20, rng)
  assert str(e.value) == (
      f'replay directory {str(tmp_path)!r} holds 0 steps in 0 runs of consecutive steps, the '
      'longest 0 steps, but sequence_length=20 asks for 20 consecutive steps of one stream; '
      'collect more steps or lower sequence_length.')
  # 30 steps, enough in total, but in 3 streams of 10: no 20 consecutive steps of one stream.
  fill(replay, 10, streams=3)
  with pytest.raises(UserError) as e:
    replay.sample(4, 20, rng)
  assert str(e.value) == (
      f'replay directory {str(tmp_path)!r} holds 30 steps in 3 runs of consecutive steps, the '
      'longest 10 steps, but sequence_length=20 asks for 20 consecutive steps of one stream; '
      'collect more steps or lower sequence_length.')
  # A run exactly as long as a sequence is one valid start: steps 0..9 of some stream.
  batch = replay.sample(6, 10, rng)
  np.testing.assert_array_equal(batch['reward'], np.tile(np.arange(10, dtype=np.float32), (6, 1)))


# The child of `run_with_file_size_limit`: `limit_file_size(n)` makes the kernel stop any later
# write that would take one of the child's files past n bytes, partway, as a full disk does.
_LIMIT_PREAMBLE = '''
import errno, os, resource, signal, sys
DIE = sys.argv[2] == 'die'

def limit_file_size(limit):
  resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # The kill must not dump core into the cwd.
  # Python starts with SIGXFSZ ignored, so that the cut write raises OSError EFBIG; the default
  # action kills the process inside the write instead.
  signal.signal(signal.SIGXFSZ, signal.SIG_DFL if DIE else signal.SIG_IGN)
  resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

def cut_write(write, *args):
  try:
    write(*args)
  except OSError as e:
    print('failed', errno.errorcode[e.errno], flush=True)
'''


def run_with_file_size_limit(body, directory, die):
  """Runs `body` (Python source after `_LIMIT_PREAMBLE`) with `directory` as sys.argv[1].

  A write cut by `limit_file_size` kills the child with SIGXFSZ (`die`) or raises OSError in it.
  Returns the child's stdout once it has ended the way `die` says.
  """
  proc = subprocess.run(
      [sys.executable, '-c', _LIMIT_PREAMBLE + body, str(directory), 'die' if die else 'raise'],
      cwd=REPO, capture_output=True, text=True, timeout=120)  # Only a safety limit.
  assert proc.returncode == (-signal.SIGXFSZ if die else 0), proc.stderr
  return proc.stdout


_CUT_CHUNK = '''
from dreamer_jax.envs import replay as replay_lib
from tests.test_replay import digest, fill
replay = replay_lib.Replay(sys.argv[1], chunk_size=8)
fill(replay, 16)
for index in replay.chunk_ids():
  print('written', index, digest(replay.chunk(index)), flush=True)
limit_file_size(20_000)  # A chunk of 8 steps takes ~47 KB (8 x 5,760 frame bytes alone).
cut_write(fill, replay, 8)
'''


@pytest.mark.parametrize('die', [True, False], ids=['killed', 'raised'])
def test_a_chunk_write_cut_short_leaves_no_torn_chunk(tmp_path, die):
  out = run_with_file_size_limit(_CUT_CHUNK, tmp_path, die).splitlines()
  reported = {int(line.split()[1]): line.split()[2] for line in out if line.startswith('written')}
  assert sorted(reported) == [0, 1]
  assert ('failed EFBIG' in out) != die
  names = [os.path.basename(replay_lib.chunk_path(tmp_path, i)) for i in (0, 1)]
  # The cut chunk 2 is no file at all, never half of one.
  assert not os.path.exists(replay_lib.chunk_path(tmp_path, 2))
  if not die:
    assert sorted(os.listdir(tmp_path)) == names  # The writer removed its temporary file.
  with warnings.catch_warnings():
    warnings.simplefilter('error')  # A torn chunk would be skipped with an 'unreadable' warning.
    reopened = replay_lib.Replay(tmp_path, chunk_size=8)
  assert reopened.chunk_ids() == [0, 1] and len(reopened) == 16
  assert {i: digest(reopened.chunk(i)) for i in reopened.chunk_ids()} == reported
  assert sorted(os.listdir(tmp_path)) == names  # A dead writer's temporary file is gone.

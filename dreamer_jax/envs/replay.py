"""The on-disk replay: chunks of steps, frames packed 2 bits per pixel, atomic writes, sampling.

One step (the DreamerV3 convention) holds the observation `frame`/`ram`, the `reward` (and its
`reward_terms`) received on arriving at that observation, the episode flags, and the `action` then
taken from it. A stream is one worker's trajectory; its steps are buffered and written as a chunk
file of `chunk_size` consecutive steps. Each chunk records the chunk of the same stream it
continues, so sampled sequences run across chunk boundaries but never across streams or sessions.

Files: `chunk-<index>.npz` (np.savez, uncompressed), written to a temporary name in the same
directory, fsynced and renamed, so a kill or a full disk at any moment leaves every finished chunk
whole and no torn one. Reopening a directory reloads every chunk in index order: the same steps in
the same order.
"""

import os
import re
import warnings
import zipfile

import numpy as np

from dreamer_jax.errors import UserError

FRAME_SHAPE = (144, 160)
PACKED_BYTES = FRAME_SHAPE[0] * FRAME_SHAPE[1] // 4   # 5,760 bytes: 4 pixels per byte.
# RAM vectors are stored exactly as given: at 45 features float32 still fits the 6,000-byte budget
# (5,760 frame + 180 RAM + ~45 other bytes per step), so nothing is rounded.
RAM_DTYPE = np.float32
FLAGS = ('is_first', 'is_terminal', 'is_last')
# Labels for behaviour cloning (absent = −1): the action the expert chose from the step (which
# differs from `action` where noise was executed instead), and the goal pursued at the step as
# GOAL_FIELDS (the goal kind's index, map id, x, y). Chunks written before these existed read −1.
LABEL_KEYS = ('expert_action', 'goal')
GOAL_FIELDS = ('kind', 'map', 'x', 'y')
_STEP_KEYS = ('frame', 'ram', 'action', 'reward', 'reward_terms') + FLAGS + LABEL_KEYS
_CHUNK_RE = re.compile(r'^chunk-(\d{9})\.npz$')
_TMP_RE = re.compile(r'^chunk-\d{9}\.npz\.(\d+)\.tmp$')  # The writer's pid before '.tmp'.
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UserError)

# _UNPACK[b] = the four 2-bit pixels of byte b (first pixel in the low bits) as one uint32, so that
# unpacking is a single `np.take` (about 8x faster than indexing a [256, 4] table).
_UNPACK = ((np.arange(256, dtype=np.uint8)[:, None] >> np.array([0, 2, 4, 6], np.uint8)) & 3
          ).view('<u4').ravel()


def pack_frames(frames):
  """Packs shades 0..3 at 2 bits per pixel: uint8 [..., 144, 160] -> uint8 [..., 5760].

  Values above 3 are not checked here (`Replay.add` checks them) and would corrupt neighbours.
  """
  frames = np.ascontiguousarray(frames, np.uint8)
  if frames.shape[-2:] != FRAME_SHAPE:
    raise ValueError(f'frames must be [..., 144, 160], got {frames.shape}')
  # Four pixels as one little-endian uint32 p0 | p1 << 8 | p2 << 16 | p3 << 24: the shifts below
  # bring p1, p2, p3 next to p0 in the low byte, and the cast drops the rest.
  v = frames.reshape(frames.shape[:-2] + (PACKED_BYTES * 4,)).view('<u4')
  return (v | (v >> 6) | (v >> 12) | (v >> 18)).astype(np.uint8)


def unpack_frames(packed):
  """Inverse of `pack_frames`: uint8 [..., 5760] -> uint8 [..., 144, 160]."""
  packed = np.asarray(packed, np.uint8)
  if packed.shape[-1] != PACKED_BYTES:
    raise ValueError(f'packed frames must be [..., {PACKED_BYTES}], got {packed.shape}')
  return np.take(_UNPACK, packed).view(np.uint8).reshape(packed.shape[:-1] + FRAME_SHAPE)


def chunk_path(directory, index):
  return os.path.join(directory, f'chunk-{index:09d}.npz')


def _write_atomic(path, arrays):
  tmp = f'{path}.{os.getpid()}.tmp'
  try:
    with open(tmp, 'wb') as f:
      np.savez(f, **arrays)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    # A failed write (a full disk) leaves no half chunk behind; while this process lives, `_load`
    # would keep its temporary file, taking it for a write in progress.
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  # The rename itself must reach the disk too.
  dir_fd = os.open(os.path.dirname(path) or '.', os.O_RDONLY)
  try:
    os.fsync(dir_fd)
  finally:
    os.close(dir_fd)


def _process_alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # Someone else's process.
  return True


def _read_chunk(path):
  """Loads one chunk file into memory; raises one of `_UNREADABLE` when it is damaged."""
  with open(path, 'rb') as f, np.load(f, allow_pickle=False) as data:
    chunk = {key: data[key] for key in data.files}
  n = len(chunk['action'])
  chunk.setdefault('expert_action', np.full((n,), -1, np.int16))
  chunk.setdefault('goal', np.full((n, len(GOAL_FIELDS)), -1, np.int16))
  for key in _STEP_KEYS:
    if len(chunk[key]) != n:
      raise ValueError(f'{key} holds {len(chunk[key])} steps, action {n}')
  if chunk['frame'].shape[1:] != (PACKED_BYTES,) or n == 0:
    raise ValueError(f'frame has shape {chunk["frame"].shape}')
  return chunk


class Replay:
  """A replay buffer stored as chunk files in `directory`, held packed in memory for sampling.

  One process writes a directory (the learner, or collect_demos); others may open it to read (with
  capacity None, so that they never evict) and see the chunks finished when they opened it.

  Args:
    directory: where the chunks live; created if missing, reloaded if it already holds chunks.
    capacity: the most steps kept; whole chunks are evicted oldest first (files deleted) beyond it.
      None keeps everything (demonstrations).
    chunk_size: steps per chunk file.
  """

  def __init__(self, directory, capacity=None, chunk_size=256):
    if chunk_size < 1:
      raise UserError(f'replay chunk_size={chunk_size} must be at least 1.')
    if capacity is not None and capacity < chunk_size:
      raise UserError(f'replay capacity={capacity} must be at least chunk_size ({chunk_size}).')
    self.directory = os.fspath(directory)
    self.capacity = capacity
    self.chunk_size = chunk_size
    os.makedirs(self.directory, exist_ok=True)
    self._chunks = {}       # index -> chunk dict, in index (= write) order.
    self._num_steps = 0
    self._next_index = 0
    self._pending = {}      # stream -> list of steps not yet written.
    self._stream_last = {}  # stream -> index of its last chunk written by this session.
    self._ram_size = None
    self.reward_term_names = None
    self._sampling_cache = None
    self._load()

  # Loading and writing.

  def _load(self):
    for name in os.listdir(self.directory):
      match = _TMP_RE.match(name)
      # A write interrupted before its rename (its chunk was never reported), unless its writer is
      # still running: a reader may open the directory while the learner writes.
      if match and not _process_alive(int(match.group(1))):
        os.remove(os.path.join(self.directory, name))
    indices = sorted(int(m.group(1)) for m in map(_CHUNK_RE.match, os.listdir(self.directory)) if m)
    for index in indices:
      path = chunk_path(self.directory, index)
      try:
        chunk = _read_chunk(path)
        self._check_layout(chunk['ram'].shape[1], tuple(chunk['reward_term_names'].tolist()))
      except _UNREADABLE as e:
        warnings.warn(f'replay chunk {path} is unreadable ({type(e).__name__}: {e}); skipping it.')
        continue
      self._chunks[index] = chunk
      self._num_steps += len(chunk['action'])
    self._next_index = indices[-1] + 1 if indices else 0
    self._evict()

  def _check_layout(self, ram_size, term_names):
    if self._ram_size is None:
      self._ram_size, self.reward_term_names = ram_size, term_names
    elif (ram_size, term_names) != (self._ram_size, self.reward_term_names):
      # Mostly a user's mistake: appending another game's or version's steps to a directory.
      raise UserError(
          f'replay directory {self.directory!r} holds steps with {self._ram_size} RAM features and '
          f'reward terms {self.reward_term_names}, not {ram_size} and {term_names}; write these '
          'steps to a new directory.')

  def add(self, step, stream=0):
    """Appends one step to `stream`; returns the index of the chunk it completed and wrote, or None.

    Args:
      step: dict with frame uint8 [144, 160] (shades 0..3), ram float [R], action int, reward float,
        is_first, is_terminal, is_last bools, and optionally reward_terms {name: float},
        expert_action (int) and goal (GOAL_FIELDS as 4 ints) for behaviour cloning.
      stream: which trajectory the step continues (a worker's id).
    """
    frame = np.asarray(step['frame'])
    if frame.shape != FRAME_SHAPE or frame.max(initial=0) > 3:
      raise ValueError(f'frame must be [144, 160] shades 0..3, got {frame.shape} max {frame.max()}')
    action = int(step['action'])
    if not 0 <= action <= 255:  # Stored as uint8.
      raise ValueError(f'action must be in 0..255, got {action}')
    terms = step.get('reward_terms') or {}
    ram = np.asarray(step['ram'], RAM_DTYPE)
    self._check_layout(ram.shape[0], tuple(terms))
    self._pending.setdefault(stream, []).append(dict(
        frame=pack_frames(frame), ram=ram, action=action, reward=step['reward'],
        reward_terms=[terms[name] for name in self.reward_term_names],
        expert_action=int(step.get('expert_action', -1)),
        goal=np.asarray(step.get('goal', (-1,) * len(GOAL_FIELDS)), np.int16).reshape(-1),
        **{flag: bool(step[flag]) for flag in FLAGS}))
    if len(self._pending[stream]) >= self.chunk_size:
      return self._write(stream)
    return None

  def flush(self):
    """Writes every stream's buffered steps as (short) chunks; returns the indices written."""
    return [self._write(stream) for stream in list(self._pending) if self._pending[stream]]

  def _write(self, stream):
    steps = self._pending.pop(stream)
    chunk = dict(
        frame=np.stack([s['frame'] for s in steps]),
        ram=np.stack([s['ram'] for s in steps]),
        action=np.array([s['action'] for s in steps], np.uint8),
        reward=np.array([s['reward'] for s in steps], np.float32),
        reward_terms=np.array([s['reward_terms'] for s in steps], np.float32).reshape(
            len(steps), len(self.reward_term_names)),
        reward_term_names=np.array(self.reward_term_names, dtype=np.str_),
        prev=np.array(self._stream_last.get(stream, -1), np.int64),
        expert_action=np.array([s['expert_action'] for s in steps], np.int16),
        goal=np.stack([s['goal'] for s in steps]),
        **{flag: np.array([s[flag] for s in steps], bool) for flag in FLAGS})
    index = self._next_index
    _write_atomic(chunk_path(self.directory, index), chunk)
    self._next_index += 1
    self._chunks[index] = chunk
    self._num_steps += len(steps)
    self._stream_last[stream] = index
    self._evict()
    return index

  def _evict(self):
    while self.capacity is not None and self._num_steps > self.capacity:
      index = next(iter(self._chunks))
      self._num_steps -= len(self._chunks.pop(index)['action'])
      os.remove(chunk_path(self.directory, index))
    self._sampling_cache = None

  # Reading.

  def __len__(self):
    """Steps stored in chunks (buffered steps not yet written are not counted)."""
    return self._num_steps

  def chunk_ids(self):
    return list(self._chunks)

  def chunk_length(self, index):
    return len(self._chunks[index]['action'])

  def chunk(self, index):
    """One stored chunk as [n, ...] arrays, frames unpacked (see `sample` for keys and dtypes)."""
    return self._public(self._chunks[index])

  def labelled_steps(self):
    """Stored steps that carry an expert label (`expert_action` >= 0): behaviour cloning's data."""
    return sum(int((c['expert_action'] >= 0).sum()) for c in self._chunks.values())

  def bytes_on_disk(self):
    return sum(os.path.getsize(chunk_path(self.directory, i)) for i in self._chunks)

  def _public(self, packed):
    """Stored arrays -> the public dtypes (frames unpacked, ram float32, action int32)."""
    out = {k: packed[k] for k in _STEP_KEYS}
    out.update(frame=unpack_frames(packed['frame']), ram=packed['ram'].astype(np.float32),
               action=packed['action'].astype(np.int32),
               expert_action=packed['expert_action'].astype(np.int32),
               goal=packed['goal'].astype(np.int32))
    return out

  def _runs(self):
    """(chunk indices, row bounds) of each run of chunks that continue one another (one stream, one
    session), oldest first; bounds[j] is the run's row where its j-th chunk begins."""
    if self._sampling_cache is None:
      successor = {int(c['prev']): i for i, c in self._chunks.items()
                   if int(c['prev']) in self._chunks}
      runs = []
      for index, chunk in self._chunks.items():
        if int(chunk['prev']) in self._chunks:
          continue
        run = [index]
        while run[-1] in successor:
          run.append(successor[run[-1]])
        runs.append((run, np.cumsum([0] + [len(self._chunks[i]['action']) for i in run])))
      self._sampling_cache = runs
    return self._sampling_cache

  def _take(self, run, bounds, begin, end):
    """Rows [begin, end) of a run, still packed: dict of [end - begin, ...] arrays."""
    first = np.searchsorted(bounds, begin, side='right') - 1
    last = np.searchsorted(bounds, end, side='left')
    pieces = [(self._chunks[run[j]], max(begin - bounds[j], 0), min(end, bounds[j + 1]) - bounds[j])
              for j in range(first, last)]
    return {k: np.concatenate([c[k][lo:hi] for c, lo, hi in pieces]) for k in _STEP_KEYS}

  def sample(self, batch_size, sequence_length, rng):
    """Samples `batch_size` sequences of `sequence_length` consecutive steps of one stream.

    Sequences may cross episode boundaries; `is_first` marks where a new episode begins.

    Args:
      batch_size: B.
      sequence_length: T.
      rng: a numpy Generator (the only source of randomness).

    Returns:
      dict: frame uint8 [B, T, 144, 160], ram float32 [B, T, R], action int32 [B, T],
      reward float32 [B, T], reward_terms float32 [B, T, K] (names in `reward_term_names`),
      is_first, is_terminal, is_last bool [B, T]; expert_action int32 [B, T] and goal int32
      [B, T, 4] (GOAL_FIELDS), −1 where not recorded.

    Raises:
      UserError: no run of one stream's consecutive steps is `sequence_length` long (too few steps
        collected, or spread over too many streams or sessions).
    """
    runs = self._runs()
    lengths = np.array([bounds[-1] for _, bounds in runs], np.int64)
    starts = np.maximum(lengths - sequence_length + 1, 0)
    ends = np.cumsum(starts)
    if not ends.size or ends[-1] == 0:
      # A user's choice (sequence_length against what was collected), so one sentence, no traceback.
      raise UserError(
          f'replay directory {self.directory!r} holds {len(self)} steps in {len(runs)} runs of '
          f'consecutive steps, the longest {lengths.max(initial=0)} steps, but sequence_length='
          f'{sequence_length} asks for {sequence_length} consecutive steps of one stream; collect '
          'more steps or lower sequence_length.')
    # Uniform over every valid start position in the replay.
    positions = rng.integers(0, ends[-1], size=batch_size)
    run_ids = np.searchsorted(ends, positions, side='right')
    offsets = positions - (ends - starts)[run_ids]
    seqs = []
    for run_id, offset in zip(run_ids, offsets):
      seqs.append(self._take(*runs[run_id], offset, offset + sequence_length))
    return self._public({k: np.stack([s[k] for s in seqs]) for k in _STEP_KEYS})

  def episodes(self, include_partial=False):
    """Yields stored episodes in order, each a dict of [T, ...] arrays (keys as in `sample`).

    Args:
      include_partial: also yield episode pieces that lack their first step (evicted, or a worker
        restarted) or their last step (still running).
    """
    for run, bounds in self._runs():
      is_first = np.concatenate([self._chunks[i]['is_first'] for i in run])
      is_last = np.concatenate([self._chunks[i]['is_last'] for i in run])
      cuts = sorted(set(np.flatnonzero(is_first).tolist()) | {0, len(is_first)})
      for begin, end in zip(cuts[:-1], cuts[1:]):
        if (is_first[begin] and is_last[end - 1]) or include_partial:
          yield self._public(self._take(run, bounds, begin, end))

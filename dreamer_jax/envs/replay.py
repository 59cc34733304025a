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

Memory: frames are 96% of a step (5,760 of ~6,000 bytes: ~6 GB at a million steps), so only the
rest of each step (the step table: ~140 bytes at 47 RAM features) is held in memory, and each read
copies the frame rows it needs straight from the chunk file into its batch. The frame member of an
uncompressed .npz is a plain .npy inside the zip, so its rows sit at a fixed byte offset; the
operating system's page cache keeps hot chunks in memory without counting against the process.
Unpacking the 2-bit frames, not reading them, is most of a sample's time, so this costs no speed.
"""

import os
import re
import struct
import warnings
import zipfile

import numpy as np

from dreamer_jax.errors import UserError

FRAME_SHAPE = (144, 160)
PACKED_BYTES = FRAME_SHAPE[0] * FRAME_SHAPE[1] // 4   # 5,760 bytes: 4 pixels per byte.
# RAM vectors (features in [0, 1]) are stored as float16: at most 2.4e-4 from the float32 value, and
# every integer field the features encode (map, x, y /255, levels /100, Pokédex /151, ...) decodes
# back exactly. At 47 features float32 took 188 bytes and pushed a step past the 6,000-byte budget
# (5,760 frame + RAM + ~60 other bytes); float16 leaves room for ~45 more features. Chunks written
# with float32 RAM still read. `stored_ram` gives the value a replay returns for a RAM vector.
RAM_DTYPE = np.float16
FLAGS = ('is_first', 'is_terminal', 'is_last')
# Labels for behaviour cloning (absent = −1): the action the expert chose from the step (which
# differs from `action` where noise was executed instead), and the goal pursued at the step as
# GOAL_FIELDS (the goal kind's index, map id, x, y). Chunks written before these existed read −1.
LABEL_KEYS = ('expert_action', 'goal')
GOAL_FIELDS = ('kind', 'map', 'x', 'y')
_STEP_KEYS = ('frame', 'ram', 'action', 'reward', 'reward_terms') + FLAGS + LABEL_KEYS
_TABLE_KEYS = _STEP_KEYS[1:]  # Held in memory; frames stay in the chunk files.
_CHUNK_RE = re.compile(r'^chunk-(\d{9})\.npz$')
_TMP_RE = re.compile(r'^chunk-\d{9}\.npz\.(\d+)\.tmp$')  # The writer's pid before '.tmp'.
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UserError)

# _UNPACK[b] = the four 2-bit pixels of byte b (first pixel in the low bits) as one uint32, so that
# unpacking is a single `np.take` (about 8x faster than indexing a [256, 4] table).
_UNPACK = ((np.arange(256, dtype=np.uint8)[:, None] >> np.array([0, 2, 4, 6], np.uint8)) & 3
          ).view('<u4').ravel()


def stored_ram(ram):
  """The float32 RAM vector a replay returns for `ram` (rounded through its float16 storage)."""
  return np.asarray(ram, np.float32).astype(RAM_DTYPE).astype(np.float32)


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


def _frame_layout(f, archive):
  """(offset, shape) of the open chunk file `f`'s frame member: its rows begin `offset` bytes into
  the file; offset None where they cannot be read in place (compressed, another dtype or layout)."""
  info = archive.getinfo('frame.npy')
  if info.compress_type != zipfile.ZIP_STORED:
    return None, None
  f.seek(info.header_offset)
  header = f.read(30)  # The zip local file header; its name and extra field lengths end it.
  if header[:4] != b'PK\x03\x04':
    raise ValueError('frame member has no local file header')
  name_length, extra_length = struct.unpack('<HH', header[26:30])
  start = info.header_offset + 30 + name_length + extra_length
  f.seek(start)
  version = np.lib.format.read_magic(f)
  if version not in ((1, 0), (2, 0)):
    return None, None
  read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                 else np.lib.format.read_array_header_2_0)
  shape, fortran_order, dtype = read_header(f)
  if fortran_order or dtype != np.uint8 or len(shape) != 2:
    return None, None
  offset = f.tell()
  if offset - start + shape[0] * shape[1] != info.file_size:
    raise ValueError(f'frame member holds {info.file_size} bytes, not a {shape} array')
  return offset, shape


def _read_chunk(path, frames_in_memory):
  """Loads one chunk file's step table and its frames, or where they lie in the file (an int byte
  offset) -> (table, frames); raises one of `_UNREADABLE` when it is damaged."""
  with open(path, 'rb') as f, np.load(f, allow_pickle=False) as data:
    table = {key: data[key] for key in data.files if key != 'frame'}
    frames, shape = (None, None) if frames_in_memory else _frame_layout(f, data.zip)
    if frames is None:
      frames = data['frame']
      shape = frames.shape
  n = len(table['action'])
  table.setdefault('expert_action', np.full((n,), -1, np.int16))
  table.setdefault('goal', np.full((n, len(GOAL_FIELDS)), -1, np.int16))
  for key in _TABLE_KEYS:
    if len(table[key]) != n:
      raise ValueError(f'{key} holds {len(table[key])} steps, action {n}')
  if tuple(shape) != (n, PACKED_BYTES) or n == 0:
    raise ValueError(f'frame has shape {shape}, action {n} steps')
  return table, frames


class Replay:
  """A replay buffer stored as chunk files in `directory`; samples read their frames from the files.

  One process writes a directory (the learner, or collect_demos); others may open it to read (with
  capacity None, so that they never evict) and see the chunks finished when they opened it, while
  the writer keeps them: a chunk the writer evicts is gone for its readers too (a reader reading it
  raises UserError), unless they hold frames in memory.

  Args:
    directory: where the chunks live; created if missing, reloaded if it already holds chunks.
    capacity: the most steps kept; whole chunks are evicted oldest first (files deleted) beyond it.
      None keeps everything (demonstrations).
    chunk_size: steps per chunk file.
    frames_in_memory: also hold every chunk's packed frames in memory (5,760 bytes a step: ~6 GB at
      a million steps), as this class did before frames were read from the files; sampling is no
      faster (see `python -m experiments.benchmark --suite replay`).
  """

  def __init__(self, directory, capacity=None, chunk_size=256, frames_in_memory=False):
    if chunk_size < 1:
      raise UserError(f'replay chunk_size={chunk_size} must be at least 1.')
    if capacity is not None and capacity < chunk_size:
      raise UserError(f'replay capacity={capacity} must be at least chunk_size ({chunk_size}).')
    self.directory = os.fspath(directory)
    self.capacity = capacity
    self.chunk_size = chunk_size
    self.frames_in_memory = frames_in_memory
    os.makedirs(self.directory, exist_ok=True)
    self._chunks = {}       # index -> step table (every stored array but frames), in index order.
    self._frames = {}       # index -> its packed frames [n, 5760], or their offset in its file.
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
        table, frames = _read_chunk(path, self.frames_in_memory)
        self._check_layout(table['ram'].shape[1], tuple(table['reward_term_names'].tolist()))
      except _UNREADABLE as e:
        warnings.warn(f'replay chunk {path} is unreadable ({type(e).__name__}: {e}); skipping it.')
        continue
      self._chunks[index], self._frames[index] = table, frames
      self._num_steps += len(table['action'])
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
    path = chunk_path(self.directory, index)
    _write_atomic(path, chunk)
    self._next_index += 1
    offset = None
    if not self.frames_in_memory:
      with open(path, 'rb') as f, zipfile.ZipFile(f) as archive:
        offset, _ = _frame_layout(f, archive)
    frame = chunk.pop('frame')
    self._frames[index] = frame if offset is None else offset
    self._chunks[index] = chunk
    self._num_steps += len(steps)
    self._stream_last[stream] = index
    self._evict()
    return index

  def _evict(self):
    while self.capacity is not None and self._num_steps > self.capacity:
      index = next(iter(self._chunks))
      self._num_steps -= len(self._chunks.pop(index)['action'])
      del self._frames[index]
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
    n = self.chunk_length(index)
    frame = np.empty((n, PACKED_BYTES), np.uint8)
    self._read_frames(index, 0, n, frame)
    return self._public(dict(self._chunks[index], frame=frame))

  def labelled_steps(self):
    """Stored steps behaviour cloning can learn from: an expert label (`expert_action` >= 0) and
    the goal it served (kind >= 0); `agent.learner.bc_mask` skips the others."""
    return sum(int(((c['expert_action'] >= 0) & (c['goal'][:, 0] >= 0)).sum())
               for c in self._chunks.values())

  def require_labels(self):
    """Raises UserError unless some step can be cloned (`labelled_steps`): behaviour cloning's and
    the held-out accuracy's check of their replay."""
    if not self.labelled_steps():
      raise UserError(f'replay {self.directory} has no expert labels (expert_action with the goal '
                      'it served); behaviour cloning needs demonstrations from collect_demos '
                      '--policy planner, explore or human.')

  def bytes_on_disk(self):
    return sum(os.path.getsize(chunk_path(self.directory, i)) for i in self._chunks)

  def bytes_in_memory(self):
    """Bytes of stored steps this object holds: the step tables, and the frames of chunks held
    whole (all of them with frames_in_memory; else only chunks whose frames cannot be read in place,
    such as compressed ones)."""
    tables = sum(a.nbytes for c in self._chunks.values() for a in c.values())
    return tables + sum(f.nbytes for f in self._frames.values() if isinstance(f, np.ndarray))

  def _read_frames(self, index, lo, hi, out):
    """Copies packed frame rows [lo, hi) of chunk `index` into `out` (uint8 [hi - lo, 5760])."""
    frames = self._frames[index]
    if isinstance(frames, np.ndarray):
      out[...] = frames[lo:hi]
      return
    path = chunk_path(self.directory, index)
    try:
      fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
      fd = None
    read = 0
    if fd is not None:
      try:
        read = os.preadv(fd, [out], frames + lo * PACKED_BYTES)
      finally:
        os.close(fd)
    if read != out.nbytes:
      # Another process evicted (deleted) the chunk since this replay was opened.
      raise UserError(f'replay chunk {path} is gone or shorter than when it was opened; reopen the '
                      'replay, or read it with frames_in_memory=True while its writer evicts.')

  def _public(self, packed):
    """Stored arrays -> the public dtypes (frames unpacked, ram float32, action int32)."""
    out = {k: packed[k] for k in _STEP_KEYS}
    out.update(frame=unpack_frames(packed['frame']), ram=packed['ram'].astype(np.float32),
               action=packed['action'].astype(np.int32),
               expert_action=packed['expert_action'].astype(np.int32),
               goal=packed['goal'].astype(np.int32))
    return out

  def _runs(self):
    """{first chunk index: (chunk indices, row bounds)} of each run of chunks that continue one
    another (one stream, one session), oldest first; bounds[j] is the run's row where its j-th chunk
    begins."""
    if self._sampling_cache is None:
      successor = {int(c['prev']): i for i, c in self._chunks.items()
                   if int(c['prev']) in self._chunks}
      runs = {}
      for index, chunk in self._chunks.items():
        if int(chunk['prev']) in self._chunks:
          continue
        run = [index]
        while run[-1] in successor:
          run.append(successor[run[-1]])
        runs[index] = (run, np.cumsum([0] + [len(self._chunks[i]['action']) for i in run]))
      self._sampling_cache = runs
    return self._sampling_cache

  def _take(self, run, bounds, begin, end, frame=None):
    """Rows [begin, end) of a run, still packed: dict of [end - begin, ...] arrays; the frame rows
    are read into `frame` (uint8 [end - begin, 5760]) when given."""
    first = np.searchsorted(bounds, begin, side='right') - 1
    last = np.searchsorted(bounds, end, side='left')
    pieces = [(run[j], max(begin - bounds[j], 0), min(end, bounds[j + 1]) - bounds[j])
              for j in range(first, last)]
    if frame is None:
      frame = np.empty((end - begin, PACKED_BYTES), np.uint8)
    row = 0
    for index, lo, hi in pieces:
      self._read_frames(index, lo, hi, frame[row:row + hi - lo])
      row += hi - lo
    out = {k: np.concatenate([self._chunks[i][k][lo:hi] for i, lo, hi in pieces])
           for k in _TABLE_KEYS}
    return dict(out, frame=frame)

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
    runs = list(self._runs().values())
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
    # Frame rows go straight from the files into the batch: no copy per sequence.
    frame = np.empty((batch_size, sequence_length, PACKED_BYTES), np.uint8)
    seqs = [self._take(*runs[run_id], offset, offset + sequence_length, frame[b])
            for b, (run_id, offset) in enumerate(zip(run_ids, offsets))]
    batch = {k: np.stack([s[k] for s in seqs]) for k in _TABLE_KEYS}
    return self._public(dict(batch, frame=frame))

  def episode_spans(self, include_partial=False):
    """Where each stored episode lies, in order, without reading it: a list of (run, begin, end),
    rows [begin, end) of the run of chunks that begins with chunk `run`; read them with `window`.

    Args:
      include_partial: also list episode pieces that lack their first step (evicted, or a worker
        restarted) or their last step (still running).
    """
    spans = []
    for first, (run, _) in self._runs().items():
      is_first = np.concatenate([self._chunks[i]['is_first'] for i in run])
      is_last = np.concatenate([self._chunks[i]['is_last'] for i in run])
      cuts = sorted(set(np.flatnonzero(is_first).tolist()) | {0, len(is_first)})
      spans.extend((first, begin, end) for begin, end in zip(cuts[:-1], cuts[1:])
                   if (is_first[begin] and is_last[end - 1]) or include_partial)
    return spans

  def window(self, run, start, length):
    """Steps [start, start + length) of the run of chunks that begins with chunk `run` (see
    `episode_spans`), as a dict of [length, ...] arrays (keys as in `sample`)."""
    chunks, bounds = self._runs()[run]
    if not 0 <= start <= start + length <= bounds[-1]:
      raise ValueError(f'steps [{start}, {start + length}) are outside run {run} of {bounds[-1]}')
    return self._public(self._take(chunks, bounds, start, start + length))

  def episodes(self, include_partial=False):
    """Yields stored episodes in order, each a dict of [T, ...] arrays (keys as in `sample`), read
    from the files one at a time.

    Args:
      include_partial: also yield episode pieces that lack their first step (evicted, or a worker
        restarted) or their last step (still running).
    """
    for run, begin, end in self.episode_spans(include_partial):
      yield self.window(run, begin, end - begin)

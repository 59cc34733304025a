"""A replay of synthetic walking-square episodes (`world_model.data.synthetic_batch`), for the
world-model tests that need one on disk."""

import numpy as np

from dreamer_jax.envs.replay import Replay
from dreamer_jax.world_model import data


def write(directory, episodes, length, streams=True):
  """Writes `episodes` episodes of `length` steps to `directory`; one stream per episode, or all in
  one stream (episodes then follow each other inside the stream's runs). Returns the Replay."""
  replay = Replay(directory, chunk_size=32)
  batch = data.synthetic_batch(np.random.default_rng(0), episodes, length)
  for b in range(episodes):
    for t in range(length):
      replay.add(dict(frame=batch['frame'][b, t], ram=batch['ram'][b, t],
                      action=int(batch['action'][b, t]), reward=float(batch['reward'][b, t]),
                      is_first=t == 0, is_terminal=False, is_last=t == length - 1),
                 stream=b if streams else 0)
  replay.flush()
  return replay

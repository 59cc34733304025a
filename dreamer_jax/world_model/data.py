"""Replay batches -> model inputs: the action into each step, episode starts, probe targets, frames.

The host side (`prepare_batch`, numpy) keeps frames as uint8 so the transfer to the device is small;
`downsample` runs on the device inside the jitted step (the one-hot is taken in `WorldModel.encode`).
"""

import jax.numpy as jnp
import numpy as np

from dreamer_jax.envs.features import RAM_FEATURES
from dreamer_jax.envs.features import decode_probe_targets
from dreamer_jax.errors import UserError

FULL_SIZE = (144, 160)


def downsample(frame, image_size):
  """uint8 shades [..., 144, 160] -> [..., H, W] for image_size (72, 80) or (144, 160).

  The 2x2 reduction keeps the darkest shade (3 is the darkest): text and outlines are 1 pixel wide
  and dark, and a mean or a mode would erase them.
  """
  if tuple(image_size) == FULL_SIZE:
    return frame
  lead = frame.shape[:-2]
  blocks = frame.reshape(lead + (FULL_SIZE[0] // 2, 2, FULL_SIZE[1] // 2, 2))
  return jnp.max(blocks, axis=(-3, -1))


def action_into(action, is_first):
  """Replay actions are taken *from* each step (DreamerV3's convention); the RSSM wants the action
  that led *into* each step: action[t-1], and 0 at t = 0 and at episode starts. int [B, T] -> same."""
  prev = np.zeros_like(action)
  prev[:, 1:] = action[:, :-1]
  return np.where(is_first, 0, prev).astype(np.int32)


def reward_columns(term_names, wanted):
  """Indices of the reward terms `wanted` in a replay's `reward_term_names`, or None for the total.

  The reward head learns only these terms: imagination runs 15 steps from a start state, and terms
  that depend on the whole episode's history (a new map, tile or species) are not predictable from
  such a window (`world_model.reward_terms`). A replay without terms (synthetic) trains on its total.
  """
  if not wanted or not term_names:
    return None
  missing = [t for t in wanted if t not in term_names]
  if missing:
    raise UserError(f'world_model.reward_terms names {missing}, which the replay does not record; '
                    f'expected some of {list(term_names)}.')
  return [list(term_names).index(t) for t in wanted]


def prepare_batch(batch, columns=None):
  """A `Replay.sample` dict -> the train step's input dict of numpy arrays; `columns` (from
  `reward_columns`) picks the reward terms the reward is the sum of (None: the total reward).

  Returns:
    frame uint8 [B, T, 144, 160]; ram float32 [B, T, R]; action int32 [B, T] (into each step);
    is_first bool [B, T] (True at t = 0: every sampled window starts from a fresh state);
    reward float32 [B, T]; cont float32 [B, T] (0 at terminal steps); probes: dict of targets from
    `features.decode_probe_targets`, each [B, T, ...].
  """
  frame = np.asarray(batch['frame'], np.uint8)
  if frame.ndim != 4 or frame.shape[2:] != FULL_SIZE:
    raise ValueError(f'frame must be [B, T, 144, 160], got {frame.shape}')
  is_first = np.array(batch['is_first'], bool)
  is_first[:, 0] = True
  ram = np.asarray(batch['ram'], np.float32)
  return dict(
      frame=frame,
      ram=ram,
      action=action_into(np.asarray(batch['action'], np.int32), is_first),
      is_first=is_first,
      reward=(np.asarray(batch['reward'], np.float32) if columns is None else
              np.asarray(batch['reward_terms'], np.float32)[..., columns].sum(-1)),
      cont=1.0 - np.asarray(batch['is_terminal'], np.float32),
      probes=decode_probe_targets(ram),
  )


def synthetic_batch(rng, batch_size, length, ram_size=RAM_FEATURES, num_actions=8, world=12):
  """A learnable toy sequence task in the replay's format (for tests and the benchmark).

  A dark 16x16 square walks on a light 144x160 screen by the actions (down, left, right, up; others
  stay); x, y live in the RAM vector (features 1, 2) as in tinymon; reward 1 on the top-left cell.
  """
  action = rng.integers(0, num_actions, (batch_size, length)).astype(np.int32)
  moves = np.array([[0, 1], [-1, 0], [1, 0], [0, -1]] + [[0, 0]] * (num_actions - 4))
  pos = np.zeros((batch_size, length, 2), np.int64)
  pos[:, 0] = rng.integers(0, world, (batch_size, 2))
  for t in range(1, length):
    pos[:, t] = np.clip(pos[:, t - 1] + moves[action[:, t - 1]], 0, world - 1)
  frame = np.zeros((batch_size, length) + FULL_SIZE, np.uint8)
  for b in range(batch_size):
    for t in range(length):
      x, y = pos[b, t]
      frame[b, t, 8 + 10 * y:24 + 10 * y, 8 + 10 * x:24 + 10 * x] = 3
  ram = np.zeros((batch_size, length, ram_size), np.float32)
  ram[..., 0] = 3 / 255.0
  ram[..., 1] = pos[..., 0] / 255.0
  ram[..., 2] = pos[..., 1] / 255.0
  ram[..., 14] = 1.0
  is_first = np.zeros((batch_size, length), bool)
  is_first[:, 0] = True
  return dict(frame=frame, ram=ram, action=action,
              reward=(pos.sum(-1) == 0).astype(np.float32),
              is_first=is_first, is_terminal=np.zeros((batch_size, length), bool),
              is_last=np.zeros((batch_size, length), bool))

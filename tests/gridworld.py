"""A small goal-reaching task with the Game Boy env's interface, for System 1's learning tests.

The player is a dark 16x16 square on a light 144x160 screen, on an N x N grid of map 3; the RAM
vector has map id, x and y at features 0, 1, 2 (as tinymon's does). Actions follow the emulator's
(down, left, right, up move; the other four do nothing). Each episode commands a navigate goal to
a random tile; `expert_action` walks straight there (the labels behaviour cloning learns from).
"""

import numpy as np

from dreamer_jax.envs.emulator import NUM_ACTIONS
from dreamer_jax.envs.features import RAM_FEATURES
from dreamer_jax.world_model import data as data_lib

MAP_ID = 3
MAP_NAMES = {MAP_ID: 'Grid'}
MOVES = np.array([[0, 1], [-1, 0], [1, 0], [0, -1]] + [[0, 0]] * (NUM_ACTIONS - 4))


def render(x, y):
  frame = np.zeros(data_lib.FULL_SIZE, np.uint8)
  frame[8 + 16 * y:24 + 16 * y, 8 + 16 * x:24 + 16 * x] = 3
  return frame


def ram(x, y):
  out = np.zeros((RAM_FEATURES,), np.float32)
  out[0], out[1], out[2], out[14] = MAP_ID / 255.0, x / 255.0, y / 255.0, 1.0
  return out


def expert_action(pos, goal):
  """Straight to the goal: first along x, then along y; no-op (7) when there."""
  dx, dy = goal[0] - pos[0], goal[1] - pos[1]
  if dx:
    return 2 if dx > 0 else 1
  if dy:
    return 0 if dy > 0 else 3
  return NUM_ACTIONS - 1


class GridWorld:
  """reset(rng) -> (obs, goal_spec); step(action) -> (obs, reached)."""

  def __init__(self, size=6):
    self.size = size

  def reset(self, rng):
    self.pos = rng.integers(0, self.size, 2)
    self.goal = rng.integers(0, self.size, 2)
    spec = {'kind': 'navigate', 'map': MAP_NAMES[MAP_ID], 'x': int(self.goal[0]),
            'y': int(self.goal[1])}
    return self.obs(), spec

  def obs(self):
    x, y = self.pos
    return {'frame': render(x, y), 'ram': ram(x, y)}

  def step(self, action):
    self.pos = np.clip(self.pos + MOVES[action], 0, self.size - 1)
    return self.obs(), bool((self.pos == self.goal).all())


def batch(rng, batch_size, length, size=6, expert_share=0.0):
  """Sequences [B, T] in `learner`'s batch format: random actions (or, with probability
  `expert_share` per step, the expert's), a random navigate goal per row, the expert's labels."""
  pos = np.zeros((batch_size, length, 2), np.int64)
  pos[:, 0] = rng.integers(0, size, (batch_size, 2))
  goal = rng.integers(0, size, (batch_size, 2))
  action = rng.integers(0, NUM_ACTIONS, (batch_size, length)).astype(np.int32)
  label = np.zeros((batch_size, length), np.int32)
  for t in range(length):
    for b in range(batch_size):
      label[b, t] = expert_action(pos[b, t], goal[b])
    use_expert = rng.random(batch_size) < expert_share
    action[:, t] = np.where(use_expert, label[:, t], action[:, t])
    if t + 1 < length:
      pos[:, t + 1] = np.clip(pos[:, t] + MOVES[action[:, t]], 0, size - 1)
  frames = np.zeros((batch_size, length) + data_lib.FULL_SIZE, np.uint8)
  rams = np.zeros((batch_size, length, RAM_FEATURES), np.float32)
  for b in range(batch_size):
    for t in range(length):
      frames[b, t] = render(*pos[b, t])
      rams[b, t] = ram(*pos[b, t])
  is_first = np.zeros((batch_size, length), bool)
  is_first[:, 0] = True
  prepared = data_lib.prepare_batch(dict(
      frame=frames, ram=rams, action=action, reward=np.zeros((batch_size, length), np.float32),
      is_first=is_first, is_terminal=np.zeros((batch_size, length), bool)))
  rows = lambda v: np.repeat(np.asarray(v, np.int32)[:, None], length, 1)
  prepared.update(
      is_last=np.zeros((batch_size, length), bool), label=label,
      goal=dict(kind=rows(np.zeros(batch_size)), map=rows(np.full(batch_size, MAP_ID)),
                x=rows(goal[:, 0]), y=rows(goal[:, 1])))
  return prepared


def success_rate(policy_fn, episodes, rng, size=6, max_steps=20):
  """The share of episodes in which `policy_fn(obs, goal_spec, t)` reaches the goal in max_steps.
  Episodes that start on the goal are redrawn (they would count without a single decision)."""
  env, wins = GridWorld(size), 0
  for _ in range(episodes):
    obs, spec = env.reset(rng)
    while (env.pos == env.goal).all():
      obs, spec = env.reset(rng)
    for t in range(max_steps):
      obs, reached = env.step(policy_fn(obs, spec, t))
      if reached:
        wins += 1
        break
  return wins / episodes

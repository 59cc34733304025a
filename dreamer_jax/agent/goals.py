"""Goals on the JAX side: batched goal arrays, their embedding, and the goal reward read from probes.

A batch of goals is a dict of int32 arrays [N]: kind (index into `planner.goals.GOAL_KINDS`), map
(map id, −1 absent), x, y (cells, −1 absent). This is how replays store the goal of each step, and
`embed` computes from it exactly `planner.goals.goal_embedding` (the vector System 2's replies go
through), so hindsight goals made inside a jitted function embed the same way as planned ones.

The goal reward has the meaning of `planner.goals.GoalProgress`, evaluated on what the world model's
RAM probes read from each imagined state (map, x, y, battle kind, dialog, party HP, species owned
where the model has that probe): the probability
that the goal holds at s_t (`reached`), and a potential Φ(s_t) in [0, 1] whose increase is paid as a
shaped term (potential-based, so it does not change which policy is optimal).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

from dreamer_jax.planner import goals as planner_goals
from dreamer_jax.world_model import heads as heads_lib

GOAL_KINDS = planner_goals.GOAL_KINDS
KIND = {k: i for i, k in enumerate(GOAL_KINDS)}
GOAL_FIELDS = ('kind', 'map', 'x', 'y')
SHAPE_CELLS = 16.0   # Distance (in cells, on the target map) over which the potential falls to 0.


def encode_specs(specs, map_names):
  """goal_specs ({"kind", "map" (a name or None), "x", "y"}) -> goal arrays {field: int32 [N]}."""
  ids = {name: i for i, name in map_names.items()}
  out = {f: np.full((len(specs),), -1, np.int32) for f in GOAL_FIELDS}
  for n, spec in enumerate(specs):
    out['kind'][n] = KIND[spec['kind']]
    if spec.get('map') is not None:
      out['map'][n] = ids[spec['map']]
    if spec.get('x') is not None:
      out['x'][n], out['y'][n] = spec['x'], spec['y']
  return out


def decode_spec(goal, n, map_names):
  """Row n of goal arrays -> a goal_spec dict (the inverse of `encode_specs`)."""
  m, x, y = int(goal['map'][n]), int(goal['x'][n]), int(goal['y'][n])
  return {'kind': GOAL_KINDS[int(goal['kind'][n])], 'map': map_names.get(m) if m >= 0 else None,
          'x': x if x >= 0 else None, 'y': y if y >= 0 else None}


def embed(goal, dim):
  """goal arrays [N] -> float32 [N, dim], equal to `planner.goals.goal_embedding` row by row."""
  if dim < planner_goals.MIN_EMBEDDING_DIM:
    raise ValueError(f'goal embedding dim {dim} is below the minimum '
                     f'{planner_goals.MIN_EMBEDDING_DIM}.')
  kind, map_id = goal['kind'], goal['map']
  x, y = goal['x'].astype(jnp.float32), goal['y'].astype(jnp.float32)
  has_map = (map_id >= 0).astype(jnp.float32)
  has_xy = (goal['x'] >= 0).astype(jnp.float32)
  slots = dim - planner_goals._MAP_SLOTS  # pylint: disable=protected-access
  safe_map = jnp.maximum(map_id, 0)
  fourier = []
  for period in planner_goals._FOURIER_PERIODS:  # pylint: disable=protected-access
    for v in (x, y):
      angle = 2.0 * math.pi * v / period
      fourier += [jnp.sin(angle), jnp.cos(angle)]
  parts = [
      jax.nn.one_hot(kind, len(GOAL_KINDS)),
      has_map[:, None], has_xy[:, None],
      has_xy[:, None] * jnp.stack([x, y], -1) / planner_goals.COORD_SCALE,
      has_xy[:, None] * jnp.stack(fourier, -1),
      has_map[:, None] * (safe_map // slots)[:, None].astype(jnp.float32) / 4.0,
      has_map[:, None] * jax.nn.one_hot(safe_map % slots, slots),
  ]
  return jnp.concatenate(parts, -1).astype(jnp.float32)


def _prob_of(logits, index):
  """softmax(logits)[..., index] for logits [N, T, K], index int [N] (−1 -> 1: no constraint)."""
  p = jnp.take_along_axis(jax.nn.softmax(logits, -1), jnp.maximum(index, 0)[:, None, None], -1)
  return jnp.where(index[:, None] >= 0, p[..., 0], 1.0)


def progress(probes, goal):
  """Per-state goal quantities from probe outputs [N, T+1, ...] of s_0..s_T and goal arrays [N].

  Returns:
    (reached [N, T+1], potential [N, T+1]), both in [0, 1]. `reached` is the probability that the
    goal holds at s_t, with `GoalProgress`'s meaning:
      navigate: on the target map (and tile, if given); talk: a text box is open there;
      battle: in a battle (a trainer battle on the target map when a tile is given);
      heal: the party's HP full and out of battle; catch: more species owned than at s_0 (the
      expected count of the species probe, clipped to [0, 1]; a model without that probe: in a
      wild battle, the step before a catch); explore: on another map than at s_0.
    The potential grows as the tile distance to the goal shrinks on its map (navigate, talk,
    battle with a tile), with the party's HP (heal), for catch is max(caught, ½ in a wild battle)
    (entering a wild battle pays half, leaving it without a catch takes that back), and equals
    `reached` otherwise.
  """
  kind = goal['kind'][:, None]
  on_map = _prob_of(probes['map_id'], goal['map'])
  at_tile = _prob_of(probes['x'], goal['x']) * _prob_of(probes['y'], goal['y'])
  ex = jnp.argmax(probes['x'], -1).astype(jnp.float32)
  ey = jnp.argmax(probes['y'], -1).astype(jnp.float32)
  dist = jnp.abs(ex - goal['x'][:, None]) + jnp.abs(ey - goal['y'][:, None])
  near = jnp.where(goal['x'][:, None] >= 0, 1.0 - jnp.minimum(dist, SHAPE_CELLS) / SHAPE_CELLS, 1.0)
  battle = jax.nn.softmax(probes['in_battle'], -1)     # none, wild, trainer.
  in_battle = battle[..., 1] + battle[..., 2]
  dialog = jax.nn.sigmoid(probes['dialog_open'])
  hp = jnp.clip(probes['party_hp_frac'], 0.0, 1.0)
  start_map = jnp.argmax(probes['map_id'][:, 0], -1)
  left_start = 1.0 - _prob_of(probes['map_id'], start_map)
  tile_goal = goal['x'][:, None] >= 0
  battle_reached = jnp.where(tile_goal, battle[..., 2] * on_map, in_battle)
  if 'dex_owned' in probes:
    caught = caught_since_start(probes)
    catch_reached, catch_potential = caught, jnp.maximum(caught, 0.5 * battle[..., 1])
  else:
    catch_reached = catch_potential = battle[..., 1]
  heal_reached = jnp.clip((hp - 0.95) / 0.05, 0.0, 1.0) * (1.0 - in_battle) * on_map
  reached = jnp.select(
      [kind == KIND['navigate'], kind == KIND['talk'], kind == KIND['battle'],
       kind == KIND['heal'], kind == KIND['catch']],
      [on_map * at_tile, on_map * dialog, battle_reached, heal_reached, catch_reached],
      left_start)
  toward = on_map * near
  potential = jnp.select(
      [kind == KIND['navigate'], kind == KIND['talk'], (kind == KIND['battle']) & tile_goal,
       kind == KIND['heal'], kind == KIND['catch']],
      [toward, toward, toward, hp * on_map, catch_potential], reached)
  return reached, potential


def caught_since_start(probes):
  """Species caught since s_0 [N, T+1] in [0, 1]: the species probe's expected count at s_t less
  that at s_0, clipped (the count never falls)."""
  owned = heads_lib.dex_expected(probes)
  return jnp.clip(owned - owned[:, :1], 0.0, 1.0)


def species_reward(probes, scale):
  """The reward for new species on arriving at s_1..s_T -> [N, T]: scale times the increase of the
  species probe's expected count (never negative: the Pokédex only grows); zeros for a model
  without that probe. This is the catch reward the reward head cannot give: whether a species is
  new depends on the whole episode, which the latent carries as the count."""
  if 'dex_owned' not in probes:
    return jnp.zeros(probes['map_id'].shape[:2])[:, 1:]
  owned = heads_lib.dex_expected(probes)
  return scale * jnp.maximum(owned[:, 1:] - owned[:, :-1], 0.0)


def goal_reward(probes, goal, reach_scale, shape_scale, gamma):
  """The goal reward of arriving at s_1..s_T -> [N, T]: reach_scale · reached(s_t) plus
  shape_scale · (γ Φ(s_t) − Φ(s_{t−1})) (potential-based shaping)."""
  reached, potential = progress(probes, goal)
  return (reach_scale * reached[:, 1:]
          + shape_scale * (gamma * potential[:, 1:] - potential[:, :-1]))


def hindsight(goal, target, pick):
  """Replaces the goals of rows where `pick` (bool [N]) by navigate goals to `target` (hindsight
  relabelling).

  Args:
    goal: goal arrays [N]; target: {'map_id', 'x', 'y'} int [N], decoded at a later real step.
  """
  new = dict(kind=jnp.full_like(goal['kind'], KIND['navigate']), map=target['map_id'],
             x=target['x'], y=target['y'])
  return {f: jnp.where(pick, new[f].astype(jnp.int32), goal[f]) for f in GOAL_FIELDS}

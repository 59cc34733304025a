"""Path-finding for the scripted expert on tinymon's cell grid: walls, NPCs, badge gates and warps.

A search state is `(map_id, x, y)`. One move is one agent step in a direction; stepping onto a warp
cell lands on the warp's destination in the same step (tinymon's DESIGN.md), so warps are ordinary
edges and one search spans every map. Costs are step counts, with an optional extra cost on tall
grass (wild encounters cost steps too).
"""

import heapq

from dreamer_jax.envs import emulator

# (action, dx, dy) for the four directions.
MOVES = ((emulator.DOWN, 0, 1), (emulator.LEFT, -1, 0), (emulator.RIGHT, 1, 0),
         (emulator.UP, 0, -1))
# The facing byte (0xC109) after pressing each direction.
FACING = {emulator.DOWN: 0x00, emulator.UP: 0x04, emulator.LEFT: 0x08, emulator.RIGHT: 0x0C}


def direction_to(x, y, tx, ty):
  """The action that moves (or turns) from (x, y) toward its 4-neighbour (tx, ty), else None."""
  for action, dx, dy in MOVES:
    if (x + dx, y + dy) == (tx, ty):
      return action
  return None


def shortest_path(start, neighbours, is_goal, max_expansions=100_000):
  """Dijkstra from `start` to the cheapest state with `is_goal(state)`.

  Args:
    start: a hashable state.
    neighbours: state -> iterable of (action, next_state, cost > 0).
    is_goal: state -> bool.
    max_expansions: a bound on the work for unreachable goals.

  Returns:
    (actions, states): the actions from `start` and the states they lead to (states[-1] is the goal;
    both empty when `start` is a goal), or None when no goal is reachable.
  """
  frontier = [(0, 0, start)]
  parent = {start: None}
  best = {start: 0}
  tie = 0
  expanded = 0
  while frontier and expanded < max_expansions:
    cost, _, state = heapq.heappop(frontier)
    if cost > best[state]:
      continue
    if is_goal(state):
      actions, states = [], []
      while parent[state] is not None:
        prev, action = parent[state]
        actions.append(action)
        states.append(state)
        state = prev
      return actions[::-1], states[::-1]
    expanded += 1
    for action, nxt, step_cost in neighbours(state):
      new_cost = cost + step_cost
      if new_cost < best.get(nxt, float('inf')):
        best[nxt] = new_cost
        parent[nxt] = (state, action)
        tie += 1
        heapq.heappush(frontier, (new_cost, tie, nxt))
  return None


class NavGraph:
  """tinymon's maps as one graph over (map_id, x, y), built once from world data.

  Args:
    world: a `tinymon.world.World`.
  """

  def __init__(self, world):
    self._size = {}
    self._blocked = {}   # map_id -> cells never enterable (terrain, NPCs other than gate guards).
    self._warps = {}     # map_id -> {(x, y): (dest_map, dest_x, dest_y)}.
    self._gates = {}     # map_id -> {(x, y): badge mask needed}.
    self._grass = {}     # map_id -> grass cells.
    for m in world.maps:
      gates = {(g.x, g.y): g.badges_required for g in m.gates}
      blocked = {(x, y) for y in range(m.height) for x in range(m.width) if not m.walkable(x, y)}
      blocked |= {(n.x, n.y) for n in m.npcs if (n.x, n.y) not in gates}
      self._size[m.id] = (m.width, m.height)
      self._blocked[m.id] = blocked
      self._gates[m.id] = gates
      self._warps[m.id] = {(w.x, w.y): (w.dest_map, w.dest_x, w.dest_y) for w in m.warps}
      self._grass[m.id] = {(x, y) for y in range(m.height) for x in range(m.width)
                           if m.is_grass(x, y) and (x, y) not in blocked}

  def grass_cells(self, map_id):
    return self._grass[map_id]

  def enterable(self, map_id, x, y, badges):
    """Whether the player can step onto (x, y) of `map_id` holding the badge bits `badges`."""
    width, height = self._size[map_id]
    if not (0 <= x < width and 0 <= y < height) or (x, y) in self._blocked[map_id]:
      return False
    need = self._gates[map_id].get((x, y))
    return need is None or badges & need == need

  def is_warp(self, map_id, x, y):
    return (x, y) in self._warps[map_id]

  def neighbours(self, badges, grass_cost=1, avoid=frozenset()):
    """A `neighbours` function for `shortest_path`.

    Args:
      badges: wObtainedBadges, which opens gates.
      grass_cost: the cost of a step onto tall grass (1 = no preference).
      avoid: (map_id, x, y) cells treated as blocked (e.g. a cell the player failed to enter).
    """
    def fn(state):
      map_id, x, y = state
      warps = self._warps[map_id]
      grass = self._grass[map_id]
      for action, dx, dy in MOVES:
        nx, ny = x + dx, y + dy
        if (map_id, nx, ny) in avoid or not self.enterable(map_id, nx, ny, badges):
          continue
        dest = warps.get((nx, ny))
        if dest is not None:
          yield action, dest, 1
        else:
          yield action, (map_id, nx, ny), grass_cost if (nx, ny) in grass else 1
    return fn

  def path(self, start, is_goal, badges, grass_cost=1, avoid=frozenset()):
    """`shortest_path` from `start` on this graph; see there for the result."""
    return shortest_path(start, self.neighbours(badges, grass_cost, avoid), is_goal)

  def reachable(self, start, badges):
    """Every state reachable from `start` with the badge bits `badges`."""
    seen = {start}
    stack = [start]
    step = self.neighbours(badges)
    while stack:
      for _, nxt, _ in step(stack.pop()):
        if nxt not in seen:
          seen.add(nxt)
          stack.append(nxt)
    return seen

  def adjacent_stands(self, map_id, x, y, badges):
    """The enterable, non-warp 4-neighbours of (x, y): where to stand to talk to what is there."""
    return [(map_id, x + dx, y + dy) for _, dx, dy in MOVES
            if self.enterable(map_id, x + dx, y + dy, badges)
            and not self.is_warp(map_id, x + dx, y + dy)]

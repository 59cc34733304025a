"""Goals: the planner's reply schema, its validation against the game's world, the goal embedding.

A goal has three faces that must always agree: a sentence for people and logs (`goal`), the
structured `goal_spec` System 1's low layer follows ({"kind", "map", "x", "y"}), and
`goal_embedding`, the fixed-width vector System 1 is conditioned on. The LLM writes only the first
two; the vector is always computed here from the validated goal_spec, never taken from model output.
"""

import dataclasses
import json
import math
from typing import Literal, Optional

import numpy as np
import pydantic

GOAL_KINDS = ('navigate', 'battle', 'explore', 'heal', 'catch', 'talk')
MAX_GOAL_CHARS = 200
MAX_RATIONALE_CHARS = 600
MAX_MAP_NAME_CHARS = 40
MAX_COORD = 255            # Coordinates are RAM bytes.
COORD_SCALE = 64.0         # Normalises x and y to ~[0, 1] on maps up to 64 cells across.
_FOURIER_PERIODS = (4.0, 16.0)
# Embedding layout: kind one-hot, presence bits, x and y linear, Fourier x/y, map wrap, map slots.
_KIND_OFFSET = 0
_MAP_PRESENT = len(GOAL_KINDS)
_XY_PRESENT = _MAP_PRESENT + 1
_XY_LINEAR = _XY_PRESENT + 1
_XY_FOURIER = _XY_LINEAR + 2
_MAP_WRAP = _XY_FOURIER + 4 * len(_FOURIER_PERIODS)
_MAP_SLOTS = _MAP_WRAP + 1
MIN_MAP_SLOTS = 8
MIN_EMBEDDING_DIM = _MAP_SLOTS + MIN_MAP_SLOTS


class GoalSpecModel(pydantic.BaseModel):
  """The structured goal; `map` is a map name from the game's table, `x`/`y` cell coordinates."""
  kind: Literal[GOAL_KINDS]
  map: Optional[str] = pydantic.Field(max_length=MAX_MAP_NAME_CHARS)
  x: Optional[int] = pydantic.Field(ge=0, le=MAX_COORD)
  y: Optional[int] = pydantic.Field(ge=0, le=MAX_COORD)


class ReplyModel(pydantic.BaseModel):
  """What the planner (LLM or rule-based) must answer; also the LLM's response schema."""
  goal: str = pydantic.Field(min_length=1, max_length=MAX_GOAL_CHARS)
  goal_spec: GoalSpecModel
  rationale: str = pydantic.Field(max_length=MAX_RATIONALE_CHARS)


class InvalidReply(ValueError):
  """A planner reply that failed validation; the message says why in one line."""


@dataclasses.dataclass(frozen=True)
class WorldIndex:
  """The slice of world data that validation and the embedding need.

  Attributes:
    map_names: {map id: name}.
    map_sizes: {map id: (width, height)} in cells; a map without an entry accepts any byte.
  """
  map_names: dict
  map_sizes: dict

  @classmethod
  def from_world(cls, world):
    sizes = {m.id: (m.width, m.height) for m in world.maps}
    return cls(map_names=dict(world.map_names), map_sizes=sizes)

  def map_id(self, name):
    """The id of map `name` (case and surrounding spaces ignored), or None."""
    key = name.strip().casefold()
    for map_id, map_name in self.map_names.items():
      if map_name.casefold() == key:
        return map_id
    return None


@dataclasses.dataclass(frozen=True)
class Plan:
  """A validated goal with its embedding.

  Attributes:
    goal: one sentence.
    goal_spec: {"kind", "map", "x", "y"}; map is a canonical map name or None.
    goal_embedding: float32 [D].
    rationale: why this goal.
    source: the backend that produced it ('gemini', 'openai', 'offline', 'scripted').
  """
  goal: str
  goal_spec: dict
  goal_embedding: np.ndarray
  rationale: str
  source: str

  def to_json(self):
    """The seed's output object: goal, goal_spec, goal_embedding (a list), rationale."""
    return {'goal': self.goal, 'goal_spec': dict(self.goal_spec),
            'goal_embedding': [float(v) for v in self.goal_embedding],
            'rationale': self.rationale}


def short(text, limit=60):
  """`text` on one line, cut to `limit` characters for log lines."""
  line = ' '.join(text.split())
  return line if len(line) <= limit else line[:limit] + '...'


def parse_reply(text, index):
  """Parses and validates a planner's raw reply.

  Args:
    text: the raw reply (a JSON object as text) or an already decoded dict.
    index: a WorldIndex.
  Returns:
    (goal, goal_spec, rationale) with the map name made canonical.
  Raises:
    InvalidReply: prose, malformed JSON, schema violations, unknown maps, out-of-range tiles.
  """
  if isinstance(text, str):
    stripped = text.strip()
    if stripped.startswith('```') and stripped.endswith('```'):
      # Local OpenAI-compatible servers often ignore response_format and fence the JSON.
      stripped = stripped[3:-3].removeprefix('json').strip()
    if not stripped:
      raise InvalidReply('reply is empty')
    if not stripped.startswith('{'):
      raise InvalidReply(f'reply is prose, not a JSON object: {short(stripped)!r}')
    try:
      data = json.loads(stripped)
    except json.JSONDecodeError as e:
      raise InvalidReply(f'reply is malformed JSON ({e.msg} at char {e.pos})') from None
  else:
    data = text
  try:
    reply = ReplyModel.model_validate(data)
  except pydantic.ValidationError as e:
    problems = '; '.join(f"{'.'.join(str(p) for p in err['loc']) or 'reply'}: {err['msg']}"
                         for err in e.errors()[:3])
    raise InvalidReply(f'reply does not match the goal schema ({problems})') from None
  spec = reply.goal_spec.model_dump()
  return reply.goal.strip(), check_goal_spec(spec, index), reply.rationale.strip()


def check_goal_spec(spec, index):
  """Checks a goal_spec's map and tile against the world; returns it with the canonical map name.

  Raises:
    InvalidReply: an unknown kind or map, a half-given tile, a tile without a map or outside it.
  """
  if spec.get('kind') not in GOAL_KINDS:
    raise InvalidReply(
        f"unknown goal kind {spec.get('kind')!r}; expected one of {', '.join(GOAL_KINDS)}")
  x, y, name = spec.get('x'), spec.get('y'), spec.get('map')
  if (x is None) != (y is None):
    raise InvalidReply(f'goal_spec gives only one of x={x} and y={y}; give both or neither')
  map_id = None
  if name is not None:
    map_id = index.map_id(name)
    if map_id is None:
      raise InvalidReply(f'unknown map {short(name, 40)!r}; expected a name from the map table')
    name = index.map_names[map_id]
  if x is not None:
    if map_id is None:
      raise InvalidReply(f'goal_spec gives the tile ({x}, {y}) without a map')
    width, height = index.map_sizes.get(map_id, (MAX_COORD + 1, MAX_COORD + 1))
    if not (0 <= x < width and 0 <= y < height):
      raise InvalidReply(
          f'tile ({x}, {y}) is outside map {name!r}, which is {width}x{height} cells')
  if spec['kind'] == 'navigate' and map_id is None:
    raise InvalidReply('a navigate goal needs a map')
  if spec['kind'] == 'talk' and x is None:
    raise InvalidReply('a talk goal needs a map and a tile')
  return {'kind': spec['kind'], 'map': name, 'x': x, 'y': y}


def goal_embedding(goal_spec, map_names, dim=64):
  """The fixed vector System 1 is conditioned on; a function of the goal_spec alone.

  Layout: one-hot kind (6); map-present and tile-present bits; x and y / COORD_SCALE; sin/cos of x
  and y at periods 4 and 16 cells (so nearby tiles stay distinguishable); then the map id as
  (id // slots) / 4 and a one-hot over `slots = dim - 19` at id % slots, which is exact for worlds
  with fewer than `slots` maps and still unique beyond.

  Args:
    goal_spec: {"kind", "map", "x", "y"} (validated).
    map_names: {map id: name}.
    dim: D, at least MIN_EMBEDDING_DIM.
  Returns:
    float32 [D].
  """
  if dim < MIN_EMBEDDING_DIM:
    raise ValueError(f'goal embedding dim {dim} is below the minimum {MIN_EMBEDDING_DIM}.')
  out = np.zeros((dim,), np.float32)
  out[_KIND_OFFSET + GOAL_KINDS.index(goal_spec['kind'])] = 1.0
  name = goal_spec.get('map')
  if name is not None:
    ids = [i for i, n in map_names.items() if n == name]
    if not ids:
      raise ValueError(f'map {name!r} is not in the map table.')
    slots = dim - _MAP_SLOTS
    out[_MAP_PRESENT] = 1.0
    out[_MAP_WRAP] = (ids[0] // slots) / 4.0
    out[_MAP_SLOTS + ids[0] % slots] = 1.0
  if goal_spec.get('x') is not None:
    x, y = goal_spec['x'], goal_spec['y']
    out[_XY_PRESENT] = 1.0
    out[_XY_LINEAR:_XY_LINEAR + 2] = (x / COORD_SCALE, y / COORD_SCALE)
    feats = []
    for period in _FOURIER_PERIODS:
      for v in (x, y):
        angle = 2.0 * math.pi * v / period
        feats += [math.sin(angle), math.cos(angle)]
    out[_XY_FOURIER:_MAP_WRAP] = feats
  return out


def make_plan(goal, goal_spec, rationale, source, index, dim):
  """A Plan from validated parts, with its embedding computed from goal_spec."""
  return Plan(goal=goal, goal_spec=dict(goal_spec),
              goal_embedding=goal_embedding(goal_spec, index.map_names, dim),
              rationale=rationale, source=source)


class GoalProgress:
  """Judges from successive state dicts whether the current goal has been reached.

  The scripted expert's `GoalController.done` reads RAM directly and is more precise; this tracker
  is what the planner uses when only the state dict is available.
  """

  def __init__(self, goal_spec, state):
    self.goal_spec = dict(goal_spec)
    self.start = dict(state)
    self.saw_battle = self._counts_as_battle(state)
    self.saw_dialog = bool(state.get('dialog_open'))

  def _counts_as_battle(self, state):
    # A goal aimed at a trainer's tile is not reached by a wild battle on the way there.
    if self.goal_spec['x'] is None:
      return state.get('in_battle') in (1, 2)
    return state.get('in_battle') == 2 and state.get('map_name') == self.goal_spec['map']

  def update(self, state):
    """Feeds one state dict; returns whether the goal counts as reached."""
    in_battle = state.get('in_battle') in (1, 2)
    self.saw_battle |= self._counts_as_battle(state)
    self.saw_dialog |= bool(state.get('dialog_open'))
    spec, start = self.goal_spec, self.start
    kind = spec['kind']
    if kind == 'navigate':
      at_map = state.get('map_name') == spec['map']
      at_tile = spec['x'] is None or (state.get('x'), state.get('y')) == (spec['x'], spec['y'])
      return at_map and at_tile
    if kind == 'heal':
      hp, max_hp = state.get('party_hp') or [], state.get('party_max_hp') or []
      return bool(max_hp) and not in_battle and list(hp) == list(max_hp) and (
          spec['map'] is None or state.get('map_name') == spec['map'])
    if kind == 'battle':
      if state.get('badges', 0) > start.get('badges', 0):
        return True
      return self.saw_battle and not in_battle and state.get('in_battle') != 0xFF
    if kind == 'catch':
      return state.get('pokedex_owned', 0) > start.get('pokedex_owned', 0)
    if kind == 'talk':
      return self.saw_dialog and not state.get('dialog_open')
    return state.get('map_name') != start.get('map_name')   # explore: reached a different map.

"""tinymon's world as Python sees it: maps, warps, NPCs, gates, trainers, species, from world.json.

games/tinymon/world.json is the one source of truth: the ROM build turns it into C and this module
reads the same file, so the scripted expert and the planner know exactly what the ROM contains.
Coordinates are cells (16x16 pixels), (0, 0) the top-left of a map, as in wXCoord/wYCoord.
"""

import collections
import json
import os
from typing import NamedTuple

from dreamer_jax.envs import rom as rom_lib
from dreamer_jax.errors import UserError

WORLD_PATH = os.path.join(rom_lib.REPO_ROOT, 'games', 'tinymon', 'world.json')
NPC_KINDS = ('talk', 'sign', 'nurse', 'trainer', 'leader', 'guard')


class Warp(NamedTuple):
  x: int
  y: int
  dest_map: int
  dest_x: int
  dest_y: int


class Npc(NamedTuple):
  x: int
  y: int
  kind: str           # One of NPC_KINDS.
  text: str
  trainer: int | None  # Trainer id for 'trainer' and 'leader', else None.


class Gate(NamedTuple):
  x: int
  y: int
  badges_required: int  # Bit mask over wObtainedBadges; the guard leaves when all bits are set.


class Species(NamedTuple):
  id: int
  name: str
  hp: int
  attack: int
  defense: int
  speed: int
  base_exp: int
  catch_rate: int
  move: str


class Trainer(NamedTuple):
  id: int
  name: str
  map_id: int
  x: int
  y: int
  party: tuple  # ((species id, level), ...)
  money: int
  badge_bit: int | None


class MapInfo:
  """One map: its cells, warps, NPCs, gates and wild encounters.

  Attributes:
    id, name, width, height, outdoor.
    rows: the ASCII rows from world.json (height strings of width characters).
    warps: list of `Warp`; npcs: list of `Npc`; gates: list of `Gate`.
    encounters: list of (species id, min level, max level).
  """

  def __init__(self, raw, legend):
    self.id = raw['id']
    self.name = raw['name']
    self.outdoor = bool(raw.get('outdoor', False))
    self.rows = list(raw['rows'])
    self.height = len(self.rows)
    self.width = len(self.rows[0])
    self._legend = legend
    self.warps = [Warp(*w) for w in raw['warps']]
    self.npcs = [Npc(n['x'], n['y'], n['kind'], n['text'], n.get('trainer')) for n in raw['npcs']]
    self.gates = [Gate(n['x'], n['y'], n['badges']) for n in raw['npcs'] if n['kind'] == 'guard']
    self.encounters = [tuple(e) for e in raw['encounters']]

  def cell(self, x, y):
    """The legend's cell name at (x, y), or None outside the map."""
    if not (0 <= x < self.width and 0 <= y < self.height):
      return None
    return self._legend[self.rows[y][x]]['cell']

  def walkable(self, x, y):
    """Whether the terrain at (x, y) can be walked on (NPCs and gates are not counted here)."""
    if not (0 <= x < self.width and 0 <= y < self.height):
      return False
    return self._legend[self.rows[y][x]]['walkable']

  def is_grass(self, x, y):
    return self.cell(x, y) == 'grass'

  def __repr__(self):
    return f'MapInfo({self.id}, {self.name!r}, {self.width}x{self.height})'


class World:
  """Everything in world.json, indexed for the expert and the planner.

  Attributes:
    maps: list of `MapInfo` (index = map id); map_names: {id: name}.
    species: list of `Species` (species id n at index n - 1); trainers: list of `Trainer`.
    gyms: list of (map id, leader trainer id, badge bit), by badge bit.
    healing_spots: list of (map id, x, y) of the nurses (talk to one from the cell below).
    connections: {map id: sorted list of map ids reachable through one warp}.
    start: the start block of world.json (map, x, y, species, level, balls, money, blackout).
    encounter_rate: chance out of 256 that a step onto grass starts a battle.
  """

  def __init__(self, raw):
    legend = raw['legend']
    self.maps = [MapInfo(m, legend) for m in raw['maps']]
    self.map_names = {m.id: m.name for m in self.maps}
    self.species = [Species(s['id'], s['name'], s['hp'], s['atk'], s['def'], s['spd'], s['base_exp'],
                            s['catch_rate'], s['move']) for s in raw['species']]
    where = {}
    for m in self.maps:
      for n in m.npcs:
        if n.trainer is not None:
          where[n.trainer] = (m.id, n.x, n.y)
    self.trainers = []
    for t in raw['trainers']:
      map_id, x, y = where.get(t['id'], (t['map'], -1, -1))
      self.trainers.append(Trainer(t['id'], t['name'], map_id, x, y,
                                   tuple(tuple(p) for p in t['party']), t['money'], t['badge']))
    self.gyms = sorted(((t.map_id, t.id, t.badge_bit) for t in self.trainers
                        if t.badge_bit is not None), key=lambda g: g[2])
    self.healing_spots = [(m.id, n.x, n.y) for m in self.maps for n in m.npcs if n.kind == 'nurse']
    links = collections.defaultdict(set)
    for m in self.maps:
      for w in m.warps:
        links[m.id].add(w.dest_map)
    self.connections = {m.id: sorted(links[m.id]) for m in self.maps}
    self.start = dict(raw['start'])
    self.encounter_rate = raw['encounter_rate']

  def map_by_id(self, map_id):
    if not 0 <= map_id < len(self.maps):
      raise KeyError(f'tinymon has no map {map_id}')
    return self.maps[map_id]

  def species_by_id(self, species_id):
    return self.species[species_id - 1]


def load_world(path=None):
  """Reads and checks world.json (default: the one next to the ROM); raises `UserError` if unusable."""
  path = os.fspath(path or WORLD_PATH)
  try:
    with open(path, encoding='utf-8') as f:
      raw = json.load(f)
  except FileNotFoundError:
    raise UserError(f'tinymon world file {path!r} does not exist; expected games/tinymon/world.json.') \
        from None
  except (OSError, ValueError) as e:
    raise UserError(f'tinymon world file {path!r} is not valid JSON ({e}); expected the world data '
                    'file games/tinymon/world.json.') from None
  try:
    world = World(raw)
    for i, m in enumerate(world.maps):
      if m.id != i or any(len(r) != m.width for r in m.rows):
        raise ValueError(f'map {m.name!r} has a bad id or ragged rows')
      if any(n.kind not in NPC_KINDS for n in m.npcs):
        raise ValueError(f'map {m.name!r} has an unknown NPC kind')
  except (KeyError, TypeError, IndexError, ValueError) as e:
    raise UserError(f'tinymon world file {path!r} is malformed ({type(e).__name__}: {e}); expected '
                    'the layout of games/tinymon/world.json.') from None
  return world

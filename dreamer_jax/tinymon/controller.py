"""The scripted expert's low layer: `GoalController` turns a goal_spec and the RAM into one action.

A goal_spec is `{"kind": navigate|battle|explore|heal|catch|talk, "map": name or None, "x": int or
None, "y": int or None}` (the planner's schema). Whatever the goal, an open text box is advanced, a
menu is closed and a battle is fought (a wild mon of a species not owned yet is weakened and
caught); only in the idle overworld does the goal's own logic run. Controls and RAM follow
games/tinymon/DESIGN.md. The controller only reads RAM.
"""

import numpy as np

from dreamer_jax.envs import emulator
from dreamer_jax.tinymon import battle as expert_battle
from dreamer_jax.tinymon import nav as expert_nav
from dreamer_jax.envs import ram_map
from dreamer_jax.envs import state

KINDS = ('navigate', 'battle', 'explore', 'heal', 'catch', 'talk')

# tinymon's bot RAM (DESIGN.md, "Extra RAM for bots"), outside the Pokémon Red mirror.
GAME_MODE = 0xD900
BATTLE_CURSOR = 0xD901
BATTLE_PHASE = 0xD902
BALL_COUNT = expert_battle.BALL_COUNT
MODE_TITLE, MODE_OVERWORLD, MODE_TEXT, MODE_MENU, MODE_PARTY, MODE_BATTLE = range(6)
PHASE_MESSAGE, PHASE_MENU = 1, 2
NURSE_BALLS = 10            # A nurse refills balls to at least this many.

_OPPOSITE = {emulator.DOWN: emulator.UP, emulator.UP: emulator.DOWN,
             emulator.LEFT: emulator.RIGHT, emulator.RIGHT: emulator.LEFT}
# A move that leaves the player where it was this many times in a row marks the target cell blocked.
_STUCK_LIMIT = 4


def party(memory):
  """[(species, hp, max_hp, level)] for the occupied party slots."""
  mons = (state.read_mon(memory, slot) for slot in range(state.party_count(memory)))
  return [(m.species, m.hp, m.max_hp, m.level) for m in mons]


def owned(memory, species):
  return ram_map.dex_flag(memory, ram_map.POKEDEX_OWNED, species)


def species_owned(memory):
  return ram_map.dex_count(memory, ram_map.POKEDEX_OWNED)


def position(memory):
  return memory[ram_map.CUR_MAP], memory[ram_map.X_COORD], memory[ram_map.Y_COORD]


class GoalController:
  """Plays one goal_spec at a time through the 8 emulator actions.

  Args:
    world: a `tinymon.world.World`.
    grass_cost: path cost of a tall-grass step when only travelling (encounters cost steps).
    run_fraction: the active mon's HP fraction below which wild battles are run from (unless a new
      species is being caught); every wild battle is run from under a heal goal.
    skip_catch: the share of species, drawn anew each episode (`new_episode`), that are caught
      under a 'catch' goal alone and fought under any other goal. 0: every new species is caught
      whenever met; 1: only where System 2 asks (a goal-conditioned clone sees catching there
      alone); in between, some species are still missing at the last badge and are caught then,
      with a lead far stronger than the wild mon, which demonstrations otherwise never show.
    seed: seeds the draws of `new_episode`.
  """

  def __init__(self, world, grass_cost=3, run_fraction=0.4, skip_catch=0.0, seed=0):
    if not 0.0 <= skip_catch <= 1.0:
      raise ValueError(f'skip_catch is {skip_catch}; expected a share in [0, 1].')
    self.world = world
    self.skip_catch = skip_catch
    self._rng = np.random.default_rng(seed)
    self.new_episode()
    self.nav = expert_nav.NavGraph(world)
    self.grass_cost = grass_cost
    self.run_fraction = run_fraction
    self._map_ids = {m.name: m.id for m in world.maps}
    self._trainers = {(t.map_id, t.x, t.y): t for t in world.trainers}
    self._encounters = {m.id: [e[0] for e in m.encounters] for m in world.maps}
    self.visited = set()
    self.reset()

  def new_episode(self):
    """Draws `skipped`, this episode's species caught under 'catch' goals alone (each one with
    probability skip_catch)."""
    self.skipped = {s.id for s in self.world.species if self._rng.random() < self.skip_catch}

  def reset(self):
    """Forgets the current goal, cached paths and per-goal progress (keeps what was visited)."""
    self._goal_key = None
    self._start = None          # Progress counters when the goal began (see `done`).
    self._plan = {}             # state -> next action on the cached path.
    self._plan_key = None
    self._avoid = set()
    self._last = None           # (state, action) of the previous overworld move.
    self._same = 0
    self._engaged = False       # talk: a text box opened after our A; battle: a battle began.

  # Goal bookkeeping.

  def map_id(self, goal):
    """The goal's map id, or None; an unknown map name raises ValueError."""
    name = goal.get('map')
    if name is not None and name not in self._map_ids:
      raise ValueError(f'goal_spec map {name!r} is not a tinymon map; expected one of '
                       f'{sorted(self._map_ids)}.')
    return None if name is None else self._map_ids[name]

  def _begin(self, memory, goal):
    key = (goal['kind'], goal.get('map'), goal.get('x'), goal.get('y'))
    if key != self._goal_key:
      if goal['kind'] not in KINDS:
        raise ValueError(f'unknown goal kind {goal["kind"]!r}; expected one of {KINDS}.')
      self._goal_key = key
      if memory[GAME_MODE] != MODE_TITLE:
        self.visited.add(position(memory))
      self._start = dict(species=species_owned(memory), maps=self._visited_maps())
      self._plan, self._plan_key, self._avoid, self._engaged = {}, None, set(), False

  def _visited_maps(self):
    return {s[0] for s in self.visited}

  def done(self, memory, goal):
    """Whether `goal` is achieved, judged from RAM (for talk/explore also from what was seen)."""
    self._begin(memory, goal)
    kind, map_id = goal['kind'], self.map_id(goal)
    x, y = goal.get('x'), goal.get('y')
    if memory[GAME_MODE] == MODE_TITLE:  # Before the game starts, RAM holds no position yet.
      return False
    here = position(memory)
    if kind == 'navigate':
      if map_id is not None and x is not None and y is not None and not self.nav.enterable(
          map_id, x, y, memory[ram_map.OBTAINED_BADGES]):
        # A cell nobody can stand on (an NPC, a wall): arriving next to it is the best there is.
        return here in self.nav.adjacent_stands(map_id, x, y, memory[ram_map.OBTAINED_BADGES])
      return (map_id is None or here[0] == map_id) and (x is None or here[1] == x) and (
          y is None or here[2] == y)
    if kind == 'talk':
      return self._engaged and memory[GAME_MODE] == MODE_OVERWORLD
    if kind == 'battle':
      trainer = self._trainer(map_id, x, y)
      if trainer is not None:
        return ram_map.event_flag(memory, trainer.id)
      return self._engaged and not memory[ram_map.IS_IN_BATTLE]
    if kind == 'heal':
      mons = party(memory)
      return bool(mons) and all(hp == max_hp for _, hp, max_hp, _ in mons) and (
          memory[BALL_COUNT] >= NURSE_BALLS) and not memory[ram_map.IS_IN_BATTLE]
    if kind == 'catch':
      return species_owned(memory) > self._start['species'] and (
          memory[GAME_MODE] == MODE_OVERWORLD and not memory[ram_map.IS_IN_BATTLE])
    # explore
    if map_id is None:
      return bool(self._visited_maps() - self._start['maps'])
    return self._unvisited_target(memory, map_id) is None

  def _trainer(self, map_id, x, y):
    if map_id is None or x is None or y is None:
      return None
    return self._trainers.get((map_id, x, y))

  # Acting.

  def act(self, memory, goal):
    """The next action (an `emulator` action index) toward `goal`."""
    self._begin(memory, goal)
    mode = memory[GAME_MODE]
    in_battle = memory[ram_map.IS_IN_BATTLE]
    if in_battle or mode == MODE_BATTLE:
      if goal['kind'] == 'battle':
        self._engaged = True
      self._last = None
      return self._battle_act(memory, goal)
    if mode == MODE_TITLE:
      return emulator.START
    if mode == MODE_TEXT:
      if self._last is not None and self._last[1] == emulator.A:
        self._engaged = True
      return emulator.A
    if mode in (MODE_MENU, MODE_PARTY):
      return emulator.B
    if memory[ram_map.WALK_COUNTER]:
      return emulator.NOOP
    here = position(memory)
    self.visited.add(here)
    action = self._overworld_act(memory, goal, here)
    self._note_move(here, action)
    return action

  def _note_move(self, here, action):
    """Counts moves that left the player in place; after a few, the cell ahead is avoided."""
    if self._last is not None and self._last[0] == here and self._last[1] in _OPPOSITE and (
        self._last[1] == action):
      self._same += 1
      if self._same >= _STUCK_LIMIT:
        for move, dx, dy in expert_nav.MOVES:
          if move == action:
            self._avoid.add((here[0], here[1] + dx, here[2] + dy))
        self._plan, self._same = {}, 0
    else:
      self._same = 0
    self._last = (here, action)

  def _overworld_act(self, memory, goal, here):
    kind = goal['kind']
    map_id, x, y = self.map_id(goal), goal.get('x'), goal.get('y')
    badges = memory[ram_map.OBTAINED_BADGES]
    if kind == 'navigate':
      if map_id is None:
        map_id = here[0]
      if x is None or y is None:
        return self._go(here, badges, ('map', map_id), lambda s: s[0] == map_id)
      if self.nav.enterable(map_id, x, y, badges):
        return self._go(here, badges, ('cell', map_id, x, y), lambda s: s == (map_id, x, y))
      return self._talk_to(memory, here, badges, (map_id, x, y), press=False)
    if kind == 'talk':
      target = self._talk_target(here, map_id, x, y)
      return emulator.NOOP if target is None else self._talk_to(memory, here, badges, target)
    if kind == 'battle':
      trainer = self._trainer(map_id, x, y)
      if trainer is not None:
        if ram_map.event_flag(memory, trainer.id):
          return emulator.NOOP
        return self._talk_to(memory, here, badges, (trainer.map_id, trainer.x, trainer.y))
      return self._wander_grass(memory, here, badges, map_id)
    if kind == 'heal':
      spots = [tuple(s) for s in self.world.healing_spots]
      if map_id is not None and x is not None and y is not None:
        spots = [(map_id, x, y)]
      elif map_id is not None:
        spots = [s for s in spots if s[0] == map_id] or spots
      return self._talk_to(memory, here, badges, spots)
    if kind == 'catch':
      if map_id is None:
        map_id = self._catch_map(memory, here, badges)
      return self._wander_grass(memory, here, badges, map_id)
    # explore
    target = self._unvisited_target(memory, map_id, here)
    if target is None:
      return emulator.NOOP
    return self._go(here, badges, ('explore', target), lambda s: s == target)

  def _go(self, here, badges, key, is_goal, grass_cost=None):
    """The next step on a cached shortest path to a state with `is_goal`; NOOP at one or if none."""
    if is_goal(here):
      return emulator.NOOP
    key = (key, badges, frozenset(self._avoid))
    if self._plan_key != key or here not in self._plan:
      cost = self.grass_cost if grass_cost is None else grass_cost
      found = self.nav.path(here, is_goal, badges, cost, frozenset(self._avoid))
      if not found:
        self._plan, self._plan_key = {}, None
        return emulator.NOOP
      actions, states = found
      self._plan = dict(zip([here] + states[:-1], actions))
      self._plan_key = key
    return self._plan[here]

  def _talk_target(self, here, map_id, x, y):
    """The NPC cell a talk goal means: the given one, else the nearest NPC on the goal's map."""
    if x is not None and y is not None:
      return (here[0] if map_id is None else map_id, x, y)
    map_id = here[0] if map_id is None else map_id
    npcs = self.world.map_by_id(map_id).npcs
    if not npcs:
      return None
    return min(((map_id, n.x, n.y) for n in npcs),
               key=lambda s: abs(s[1] - here[1]) + abs(s[2] - here[2]) if map_id == here[0] else 0)

  def _talk_to(self, memory, here, badges, targets, press=True):
    """Walks next to one of `targets` (a cell or a list of cells), faces it and presses A."""
    targets = [targets] if isinstance(targets[0], int) else targets
    stands = {}
    for target in targets:
      for stand in self.nav.adjacent_stands(*target, badges):
        stands.setdefault(stand, target)
    if here in stands:
      target = stands[here]
      face = expert_nav.direction_to(here[1], here[2], target[1], target[2])
      if memory[ram_map.PLAYER_FACING] != expert_nav.FACING[face]:
        return face
      return emulator.A if press else emulator.NOOP
    return self._go(here, badges, ('talk', tuple(targets)), stands.__contains__)

  def _wander_grass(self, memory, here, badges, map_id):
    """Walks to tall grass on `map_id` (or the nearest grass) and paces in it to meet wild mons."""
    on_map = (lambda s: s[0] == map_id) if map_id is not None else (lambda s: True)
    if on_map(here) and (here[1], here[2]) in self.nav.grass_cells(here[0]):
      grass = self.nav.grass_cells(here[0])
      options = [a for a, dx, dy in expert_nav.MOVES
                 if (here[1] + dx, here[2] + dy) in grass
                 and (here[0], here[1] + dx, here[2] + dy) not in self._avoid]
      if options:
        back = _OPPOSITE.get(self._last[1]) if self._last else None
        # Pace back and forth between two cells: each finished step may start an encounter.
        return back if back in options else options[0]
    in_grass = lambda s: on_map(s) and (s[1], s[2]) in self.nav.grass_cells(s[0])
    return self._go(here, badges, ('grass', map_id), in_grass, grass_cost=1)

  def _catch_map(self, memory, here, badges):
    """The nearest reachable map with a species not owned yet in its encounter table, or None."""
    wanted = {m for m, table in self._encounters.items()
              if any(not owned(memory, s) for s in table)}
    found = self.nav.path(here, lambda s: s[0] in wanted and (s[1], s[2]) in
                          self.nav.grass_cells(s[0]), badges, 1, frozenset(self._avoid))
    if found is None or not found[1]:
      return here[0] if here[0] in wanted else None
    return found[1][-1][0]

  def _unvisited_target(self, memory, map_id, here=None):
    """The nearest reachable cell not visited yet (on `map_id` when given), or None."""
    here = position(memory) if here is None else here
    badges = memory[ram_map.OBTAINED_BADGES]
    found = self.nav.path(
        here, lambda s: s != here and s not in self.visited and (map_id is None or s[0] == map_id)
        and not self.nav.is_warp(*s), badges, 1, frozenset(self._avoid))
    if found is None or not found[1]:
      return None
    return found[1][-1]

  # Battles.

  def _battle_act(self, memory, goal):
    if memory[ram_map.IS_IN_BATTLE] == ram_map.BATTLE_LOST:
      return emulator.A
    phase = memory[BATTLE_PHASE]
    if phase == PHASE_MESSAGE:
      return emulator.A
    if phase != PHASE_MENU:
      return emulator.NOOP
    catch = goal['kind'] == 'catch' or memory[expert_battle.ENEMY_SPECIES] not in self.skipped
    choice = expert_battle.menu_choice(memory, self.world, goal['kind'] == 'heal', self.run_fraction,
                                       catch)
    cursor = memory[BATTLE_CURSOR]
    if cursor < choice:
      return emulator.DOWN
    if cursor > choice:
      return emulator.UP
    return emulator.A

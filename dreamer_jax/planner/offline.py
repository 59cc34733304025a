"""The offline planners: rules over the state dict, no network and no key.

`OfflinePlanner` plans over tinymon's world data; `ExplorePlanner` is the game-agnostic fallback
for a game without world data (Pokémon Red): win the battle in progress, else explore.

`OfflinePlanner`, in order: finish the current battle; heal at the nearest reachable nurse when the
lead mon is hurt; explore when stuck; with every badge held, catch until `min_species` species are
owned, then explore; catch a new species while the party is small; challenge the next badge's gym
leader once the lead mon out-levels the leader's strongest mon by `level_margin`, else train
against wild mons in the reachable tall grass that suits the lead. Distances are walking distances
over the cell grid (walls, NPCs, badge gates, warps), so "nearest" and "reachable" respect the
badges held. With `waypoints`, a goal on a map that is not the next one on the walk there is given
one map at a time, as 'navigate' to the next map on the way (tinymon's gyms, towns and routes share
layouts and coordinates, so a far goal is easy to mistake for the nearby twin).
"""

from dreamer_jax.tinymon import nav as expert_nav


def _reply(goal, kind, map_name=None, x=None, y=None, rationale=''):
  return {'goal': goal, 'goal_spec': {'kind': kind, 'map': map_name, 'x': x, 'y': y},
          'rationale': rationale}


def finished(state, badges, min_species=0):
  """Whether an episode is over: `badges` badges held and at least `min_species` species owned
  (the offline planner's plan done; evaluation and planner-driven demonstrations end there)."""
  return state['badges'] >= badges and state.get('pokedex_owned', 0) >= min_species


def _battle_reply(state, current_spec):
  """While a battle is on: the catch or battle goal in progress stands, else 'battle'; else None."""
  if state.get('in_battle') not in (1, 2):
    return None
  if current_spec is not None and current_spec['kind'] in ('catch', 'battle'):
    return _reply('Finish the battle in progress.', current_spec['kind'], current_spec['map'],
                  current_spec['x'], current_spec['y'], 'a battle is on; the goal stands')
  return _reply('Win the current battle.', 'battle', rationale='a battle is on')


class ExplorePlanner:
  """Rule-based planner for a game without world data; `propose(state, current_spec)` -> reply.

  While a battle is on it keeps a catch or battle goal (or sets 'battle'); otherwise 'explore' (a
  goal reached by entering another map). It reads only the state dict's `in_battle`.
  """
  name = 'offline'

  def propose(self, state, current_spec=None):
    """'battle' while in battle (a catch or battle goal in progress stands), else 'explore'."""
    battle = _battle_reply(state, current_spec)
    if battle is not None:
      return battle
    return _reply('Explore somewhere new.', 'explore',
                  rationale='no world data for this game: explore new maps')


class OfflinePlanner:
  """Rule-based planner; `propose(state, current_spec)` returns a reply dict like an LLM's.

  Args:
    world: a tinymon.world.World.
    heal_below: heal when the lead's HP fraction is below this (a hurt lead runs from wild battles,
      so it stops gaining experience).
    min_party: catch until the party has this many mons.
    level_margin: challenge a leader once the lead's level is the leader's best level plus this.
    stuck_steps: explore when steps_without_progress reaches this (0 = never).
    min_species: with every badge held, catch until this many species are owned (0 = explore).
    waypoints: give a goal that is maps away as 'navigate' to the next map on the way.
  """
  name = 'offline'

  def __init__(self, world, heal_below=0.4, min_party=3, level_margin=2, stuck_steps=200,
               min_species=0, waypoints=False):
    self.world = world
    self.waypoints = waypoints
    self.min_species = min_species
    self.nav = expert_nav.NavGraph(world)
    self.heal_below = heal_below
    self.min_party = min_party
    self.level_margin = level_margin
    self.stuck_steps = stuck_steps
    self.names = dict(world.map_names)
    self.trainers = {t.id: t for t in world.trainers}
    self.gyms = sorted(world.gyms, key=lambda g: g[2])
    # Grass maps with their strongest wild level.
    self.grass_top = {m.id: max(e[2] for e in m.encounters) for m in world.maps
                      if m.encounters and self.nav.grass_cells(m.id)}
    self._reachable = {}
    self._next_map = {}
    self._ids = {name: i for i, name in self.names.items()}

  def propose(self, state, current_spec=None):
    """The next goal for `state`; keeps a catch or battle goal while its battle is on."""
    battle = _battle_reply(state, current_spec)
    if battle is not None:
      return battle
    reply = self._propose(state)
    if not self.waypoints:
      return reply
    target = self._ids.get(reply['goal_spec']['map'])
    step = self._waypoint((state['map_id'], state['x'], state['y']), state.get('badge_bits', 0),
                          target)
    if step is None:
      return reply
    return _reply(f'Walk to {self.names[step]} on the way to {self.names[target]}.', 'navigate',
                  self.names[step], rationale=f'{self.names[step]} is the next map on the way: '
                  + reply['goal'])

  def _waypoint(self, here, badges, target):
    """The next map on the walk from `here` to map `target` when that is not `target` itself
    (None when here is on or next to it, or it is out of reach)."""
    if target is None or target == here[0]:
      return None
    key = (here[0], target, badges)
    if key not in self._next_map:
      found = self.nav.path(here, lambda s: s[0] == target, badges)
      self._next_map[key] = None if found is None else next(
          (s[0] for s in found[1] if s[0] != here[0]), None)
    step = self._next_map[key]
    return None if step == target else step

  def _propose(self, state):
    hp, max_hp = state.get('party_hp') or [], state.get('party_max_hp') or []
    levels = state.get('party_levels') or []
    here = (state['map_id'], state['x'], state['y'])
    badges = state.get('badge_bits', 0)
    if max_hp and hp[0] < self.heal_below * max_hp[0]:
      spot = self._nearest_nurse(here, badges)
      if spot is not None:
        map_id, x, y = spot
        return _reply(f'Heal the party at the nurse in {self.names[map_id]}.', 'heal',
                      self.names[map_id], x, y,
                      f'lead HP {hp[0]}/{max_hp[0]} is below {self.heal_below:.0%}')
    stuck = self.stuck_steps and state.get('steps_without_progress', 0) >= self.stuck_steps
    gym = next((g for g in self.gyms if not badges >> g[2] & 1), None)
    owned = state.get('pokedex_owned', 0)
    if gym is None and levels and not stuck and owned < self.min_species:
      return _reply('Catch a new species in the nearest tall grass.', 'catch',
                    rationale=f'every badge is held; {owned} species owned of {self.min_species}')
    if stuck or gym is None or not levels:
      why = 'no progress for a while' if stuck else (
          'every badge is held' if gym is None else 'no party yet')
      return _reply('Explore somewhere new.', 'explore', rationale=why)
    if len(levels) < self.min_party:
      return _reply('Catch a new species in the nearest tall grass.', 'catch',
                    rationale=f'party of {len(levels)} is below {self.min_party}')
    leader = self.trainers[gym[1]]
    leader_top = max(level for _, level in leader.party)
    need = leader_top + self.level_margin
    if levels[0] < need:
      grass = self._training_map(here, badges, levels[0])
      if grass is not None:
        return _reply(f'Train against wild mons in the tall grass of {self.names[grass]}.',
                      'battle', self.names[grass],
                      rationale=f'lead level {levels[0]} is below {need} for {leader.name}')
    return _reply(f'Challenge {leader.name} in {self.names[gym[0]]} for badge {gym[2]}.', 'battle',
                  self.names[leader.map_id], leader.x, leader.y,
                  f'next badge is bit {gym[2]}; lead level {levels[0]} vs {leader_top}')

  def _nearest_nurse(self, here, badges):
    stands = {}
    for map_id, x, y in self.world.healing_spots:
      for cell in self.nav.adjacent_stands(map_id, x, y, badges):
        stands[cell] = (map_id, x, y)
    found = self.nav.path(here, stands.__contains__, badges)
    if found is None:
      return None
    _, states = found
    return stands[states[-1] if states else here]

  def _training_map(self, here, badges, lead_level):
    """The reachable grass map with the strongest wild mons the lead still out-levels (else the
    weakest reachable one), or None."""
    key = (here[0], badges)
    if key not in self._reachable:
      self._reachable[key] = {s[0] for s in self.nav.reachable(here, badges)}
    maps = [m for m in self.grass_top if m in self._reachable[key]]
    if not maps:
      return None
    beatable = [m for m in maps if self.grass_top[m] <= lead_level]
    if beatable:
      return max(beatable, key=lambda m: (self.grass_top[m], -m))
    return min(maps, key=lambda m: (self.grass_top[m], m))

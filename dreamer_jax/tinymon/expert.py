"""tinymon's scripted expert: picks goals like a competent player and plays them from power-on.

`ScriptedExpert.act(memory)` chooses a goal_spec from RAM (heal when the lead is hurt, beat trainers
and level up until the next gym leader is beatable, catch new species along the way, then the
leader) and hands it to `GoalController` (expert_goals.py), the low layer the planner also drives.
`run_expert` plays from power-on through PyBoy and reports what was reached. The expert stands in
for human demonstrations in behaviour cloning and is the reference in evaluations.
"""

import random
import time

import tqdm

from dreamer_jax.envs import emulator as emulator_lib
from dreamer_jax.tinymon import battle as expert_battle
from dreamer_jax.envs import games
from dreamer_jax.envs import ram_map
from dreamer_jax.envs import rom as rom_lib
from dreamer_jax.tinymon import world as tinymon_world
from dreamer_jax.tinymon.controller import BALL_COUNT
from dreamer_jax.tinymon.controller import GAME_MODE
from dreamer_jax.tinymon.controller import GoalController
from dreamer_jax.tinymon.controller import MODE_OVERWORLD
from dreamer_jax.tinymon.controller import party
from dreamer_jax.tinymon.controller import position
from dreamer_jax.tinymon.controller import species_owned
from dreamer_jax.errors import UserError

__all__ = ['GoalController', 'ScriptedExpert', 'check_tinymon_rom', 'run_expert']

TINYMON_TITLE = 'TINYMON'


def check_tinymon_rom(path):
  """Reads `path` (`rom.read_rom`) and checks that it is the committed tinymon ROM.

  Returns:
    The `rom.RomInfo`. Raises `UserError` for a missing, truncated or foreign ROM.
  """
  rom = rom_lib.read_rom(path)
  known = games.get_game('tinymon').known_sha1s()
  expected = next(iter(known), None)
  if rom.title != TINYMON_TITLE or (known and rom.sha1 not in known):
    raise UserError(
        f'ROM file {rom.path!r} (title {rom.title!r}, SHA-1 {rom.sha1}) is not tinymon; the '
        f'scripted expert plays only games/tinymon/tinymon.gb (title {TINYMON_TITLE!r}, SHA-1 '
        f'{expected}).')
  return rom


def goal(kind, map_name=None, x=None, y=None):
  """A goal_spec dict."""
  return {'kind': kind, 'map': map_name, 'x': x, 'y': y}


class ScriptedExpert:
  """The goal-picking policy over `GoalController`.

  Args:
    world: a `tinymon.world.World`.
    min_species: species to own before the expert stops catching on purpose.
    heal_fraction: the lead's HP fraction below which the expert goes to a nurse (and below which
      the active mon runs from wild battles that catch nothing new).
    seed: None plays the same way every time; an int makes the expert wait a step now and then,
      which shifts tinymon's frame-counter RNG, so each seed gives another deterministic
      playthrough (other encounters and fights), e.g. for varied demonstrations.
    pause_rate: the chance that a seeded expert waits instead of acting in the idle overworld.
  """

  def __init__(self, world, min_species=10, heal_fraction=0.25, seed=None, pause_rate=0.02):
    self._rng = None if seed is None else random.Random(seed)
    self.pause_rate = pause_rate
    self.world = world
    self.controller = GoalController(world, run_fraction=heal_fraction)
    self.min_species = min_species
    self.heal_fraction = heal_fraction
    self._gyms = sorted(world.gyms, key=lambda g: g[2])
    self._trainers = {t.id: t for t in world.trainers}
    self._reachable = {}
    self._signature = None
    self.current_goal = None

  def act(self, memory):
    """The next action for the game whose RAM is `memory`."""
    signature = self._progress_signature(memory)
    if self.current_goal is None or signature != self._signature or (
        self.controller.done(memory, self.current_goal)):
      self._signature = signature
      self.current_goal = self.choose_goal(memory)
    if (self._rng is not None and memory[GAME_MODE] == MODE_OVERWORLD
        and not memory[ram_map.WALK_COUNTER] and self._rng.random() < self.pause_rate):
      return emulator_lib.NOOP
    return self.controller.act(memory, self.current_goal)

  def _progress_signature(self, memory):
    """What the goal choice depends on; the goal is re-chosen only when it changes."""
    busy = memory[ram_map.IS_IN_BATTLE] != 0
    return (busy, memory[ram_map.CUR_MAP], memory[ram_map.OBTAINED_BADGES], species_owned(memory),
            tuple(party(memory)), memory[BALL_COUNT] > 0,
            tuple(ram_map.event_flag(memory, t) for t in self._trainers))

  def won(self, memory):
    """Every gym badge held and at least `min_species` species owned."""
    badges = memory[ram_map.OBTAINED_BADGES]
    return all(badges >> g[2] & 1 for g in self._gyms) and species_owned(memory) >= self.min_species

  def _name(self, map_id):
    return self.world.map_names[map_id]

  def _reachable_maps(self, here, badges):
    if badges not in self._reachable:
      self._reachable[badges] = {s[0] for s in self.controller.nav.reachable(here, badges)}
    return self._reachable[badges]

  def choose_goal(self, memory):
    """The goal_spec a competent player pursues now."""
    here = position(memory)
    badges = memory[ram_map.OBTAINED_BADGES]
    mons = party(memory)
    if not mons:
      return goal('explore')
    _, lead_hp, lead_max, lead_level = mons[0]
    # A hurt lead heals (and under a heal goal wild battles are run from, whoever is out).
    if lead_hp < self.heal_fraction * lead_max or memory[BALL_COUNT] == 0:
      return goal('heal')
    if memory[ram_map.IS_IN_BATTLE]:
      return goal('battle')
    reachable = self._reachable_maps(here, badges)
    pending = [g for g in self._gyms if not badges >> g[2] & 1]
    if not pending:
      if species_owned(memory) < self.min_species:
        return goal('catch')
      return goal('navigate', self._name(here[0]), here[1], here[2])
    leader = self._trainers[pending[0][1]]
    trainer = leader if self.beats(memory, leader, full_hp=True) else self._nearest_trainer(
        memory, here, badges, reachable)
    if trainer is None:
      return self._grind_goal(memory, reachable, lead_level)
    if not self.beats(memory, trainer):
      return goal('heal')
    return goal('battle', self._name(trainer.map_id), trainer.x, trainer.y)

  def beats(self, memory, trainer, full_hp=False):
    """Whether the party (as it is, or healed) beats `trainer`'s party however the rolls fall."""
    enemies = [expert_battle.species_fighter(self.world.species_by_id(s), level)
               for s, level in trainer.party]
    ours = [expert_battle.party_fighter(memory, slot, full=full_hp)
            for slot in range(min(memory[ram_map.PARTY_COUNT], 6))]
    return expert_battle.wins(ours, enemies)

  def _nearest_trainer(self, memory, here, badges, reachable):
    """The nearest unbeaten ordinary trainer on a reachable map that the healed lead beats."""
    stands = {}
    for t in self._trainers.values():
      if (t.badge_bit is None and t.map_id in reachable and not ram_map.event_flag(memory, t.id)
          and self.beats(memory, t, full_hp=True)):
        for stand in self.controller.nav.adjacent_stands(t.map_id, t.x, t.y, badges):
          stands.setdefault(stand, t)
    if not stands:
      return None
    found = self.controller.nav.path(here, stands.__contains__, badges)
    return None if found is None else stands[found[1][-1] if found[1] else here]

  def _grind_goal(self, memory, reachable, lead_level):
    """Wild battles for experience: the reachable grass map whose mons suit the lead's level best,
    as a catch goal when that map still has species not owned."""
    best = None
    for m in self.world.maps:
      if m.id not in reachable or not m.encounters or not self.controller.nav.grass_cells(m.id):
        continue
      top = max(e[2] for e in m.encounters)
      # Prefer the strongest mons the lead still out-levels; else the weakest map.
      key = (top <= lead_level, top if top <= lead_level else -top)
      if best is None or key > best[0]:
        best = (key, m)
    if best is None:
      return goal('explore')
    m = best[1]
    if any(not ram_map.dex_flag(memory, ram_map.POKEDEX_OWNED, e[0]) for e in m.encounters):
      return goal('catch', m.name)
    return goal('battle', m.name)


def _show(bar, memory, expert):
  goal_kind = expert.current_goal['kind'] if expert.current_goal else None
  bar.set_postfix(badges=bin(memory[ram_map.OBTAINED_BADGES]).count('1'),
                  species=species_owned(memory), goal=goal_kind)


def run_expert(rom_path=rom_lib.TINYMON_ROM, max_steps=20000, seed=0, progress=True):
  """Plays tinymon from power-on with the scripted expert until it has won or `max_steps` ran out.

  Args:
    rom_path: the tinymon ROM (a missing, truncated or foreign file raises `UserError`).
    max_steps: agent steps (24 frames each) at most.
    seed: the expert's seed (see `ScriptedExpert`): each seed is another, still deterministic,
      playthrough.
    progress: show a tqdm bar.

  Returns:
    {"badges", "species_owned", "steps", "frames", "seconds", "map_id", "party_levels", "won"}.
  """
  check_tinymon_rom(rom_path)
  world = tinymon_world.load_world()
  emulator = emulator_lib.Emulator(rom_path)
  expert = ScriptedExpert(world, seed=seed)
  memory = emulator.memory
  start = time.perf_counter()
  steps = 0
  bar = tqdm.tqdm(total=max_steps, disable=not progress, desc='expert', mininterval=1.0)
  try:
    while steps < max_steps and not expert.won(memory):
      emulator.step(expert.act(memory), render=False)
      steps += 1
      if steps % 250 == 0:
        bar.update(250)
        _show(bar, memory, expert)
    bar.update(steps % 250)
    _show(bar, memory, expert)
    return dict(badges=bin(memory[ram_map.OBTAINED_BADGES]).count('1'),
                species_owned=species_owned(memory), steps=steps, frames=emulator.frame_count,
                seconds=round(time.perf_counter() - start, 3), map_id=memory[ram_map.CUR_MAP],
                party_levels=[m[3] for m in party(memory)], won=expert.won(memory))
  finally:
    bar.close()
    emulator.close()

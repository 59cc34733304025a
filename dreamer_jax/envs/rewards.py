"""The reward table: progress terms from RAM snapshots, with an explicit per-episode tracker.

Terms (weights from `config.reward`, defaults in `DEFAULT_WEIGHTS`):
  badge        +w per badge obtained for the first time this episode.
  new_species  +w per Pokédex "owned" flag set for the first time (a species caught).
  new_map      +w per map id entered for the first time.
  battle_won   +w per battle won (see `RewardTracker.step`).
  xp           +w per experience point gained by a mon that was already in the party.
  hp_lost      -w per HP point lost by a mon that was already in the party.
  no_progress  -w per step with none of: new map, new tile, badge, species, battle won, experience.

Party members are followed by identity (OT id and DVs, then species and closeness), not by slot, so
reordering the party, catching or receiving a mon, depositing one, healing and evolving give neither
XP nor HP terms.
"""

import dataclasses

from dreamer_jax.envs import ram_map as rm
from dreamer_jax.errors import UserError

TERMS = ('badge', 'new_species', 'new_map', 'battle_won', 'xp', 'hp_lost', 'no_progress')
DEFAULT_WEIGHTS = dict(badge=10.0, new_species=2.0, new_map=0.5, battle_won=1.0, xp=0.01,
                       hp_lost=0.05, no_progress=0.001)
_IN_BATTLE = (rm.BATTLE_WILD, rm.BATTLE_TRAINER)


def reward_weights(weights=None):
  """Validated weights: `DEFAULT_WEIGHTS` updated by `weights` (a dict or ConfigDict, or None)."""
  out = dict(DEFAULT_WEIGHTS)
  if weights is None:
    return out
  given = dict(weights.items())
  unknown = sorted(set(given) - set(TERMS))
  if unknown:
    raise UserError(f'unknown reward term(s) {unknown} in the reward weights; expected some of '
                    f'{list(TERMS)}.')
  for name, value in given.items():
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
      raise UserError(
          f'reward weight {name}={value!r} is not a non-negative number; penalties are given as '
          'positive weights and subtracted.')
    out[name] = float(value)
  return out


def match_party(prev_party, party):
  """Pairs current mons with the previous step's by identity.

  Returns: a list of (previous Mon, current Mon) pairs; mons new to the party or gone from it are in
  no pair. Among previous mons with the same key, the one with the same species, then the closest
  experience and HP, wins (tinymon may leave OT id and DVs at zero, making keys collide).
  """
  unmatched = list(enumerate(prev_party))
  pairs = []
  for slot, mon in enumerate(party):
    candidates = [(i, p) for i, p in unmatched if p.key == mon.key]
    if not candidates:
      continue
    best = min(candidates, key=lambda c: (c[1].species != mon.species, abs(c[1].exp - mon.exp),
                                          abs(c[1].hp - mon.hp), abs(c[0] - slot)))
    unmatched.remove(best)
    pairs.append((best[1], mon))
  return pairs


@dataclasses.dataclass
class RewardTracker:
  """What one episode has seen so far; `reset` starts an episode from a snapshot, `step` scores one.

  Attributes:
    weights: validated term weights.
    visited_tiles: {(map_id, x, y)} seen this episode.
    visited_maps: {map_id} seen this episode.
    badge_bits: union of badge bits seen this episode.
    dex_owned: union of Pokédex owned flags seen this episode (an int bitfield).
    prev: the previous step's `state.Snapshot`.
    enemy_alive / enemy_fainted: within the current battle, whether the enemy's HP was seen above
      zero, and then seen falling to zero.
    steps_without_progress: consecutive steps with no progress signal.
  """
  weights: dict
  visited_tiles: set = dataclasses.field(default_factory=set)
  visited_maps: set = dataclasses.field(default_factory=set)
  badge_bits: int = 0
  dex_owned: int = 0
  prev: object = None
  enemy_alive: bool = False
  enemy_fainted: bool = False
  steps_without_progress: int = 0

  def reset(self, snap):
    """Starts an episode at `snap`: what is already there (map, tile, badges, dex) earns nothing."""
    self.visited_tiles = {(snap.map_id, snap.x, snap.y)}
    self.visited_maps = {snap.map_id}
    self.badge_bits = snap.badge_bits
    self.dex_owned = snap.dex_owned
    self.prev = snap
    self.enemy_alive = self.enemy_fainted = False
    self.steps_without_progress = 0

  def rebase(self, snap):
    """Continues the episode from `snap` (after loading a state): the next step diffs against it."""
    self.prev = snap
    self.enemy_alive = self.enemy_fainted = False

  def _battle_won(self, prev, snap):
    """A battle is won when wIsInBattle goes from 1 or 2 straight to 0 (not via 0xFF, a blackout)
    after the enemy's HP was seen falling to zero in it; running away and catching are not wins."""
    if snap.in_battle in _IN_BATTLE:
      if snap.enemy_hp > 0:
        self.enemy_alive = True
      elif self.enemy_alive:
        self.enemy_fainted = True
      return False
    won = prev.in_battle in _IN_BATTLE and snap.in_battle == rm.BATTLE_NONE and self.enemy_fainted
    self.enemy_alive = self.enemy_fainted = False
    return won

  def step(self, snap):
    """Scores the transition from the previous snapshot to `snap`.

    Returns:
      (reward, terms): the weighted sum and {term: weighted value} for every name in `TERMS`.
    """
    prev, w = self.prev, self.weights
    new_map = snap.map_id not in self.visited_maps
    self.visited_maps.add(snap.map_id)
    tile = (snap.map_id, snap.x, snap.y)
    new_tile = tile not in self.visited_tiles
    self.visited_tiles.add(tile)
    new_badges = bin(snap.badge_bits & ~self.badge_bits).count('1')
    self.badge_bits |= snap.badge_bits
    new_species = bin(snap.dex_owned & ~self.dex_owned).count('1')
    self.dex_owned |= snap.dex_owned
    won = self._battle_won(prev, snap)
    xp = hp_lost = 0
    if snap.party != prev.party:  # Most steps change nothing in the party: skip the matching.
      for before, after in match_party(prev.party, snap.party):
        xp += max(0, after.exp - before.exp)
        hp_lost += max(0, before.hp - after.hp)
    progress = new_map or new_tile or new_badges or new_species or won or xp > 0
    self.steps_without_progress = 0 if progress else self.steps_without_progress + 1
    self.prev = snap
    terms = {
        'badge': w['badge'] * new_badges,
        'new_species': w['new_species'] * new_species,
        'new_map': w['new_map'] * new_map,
        'battle_won': w['battle_won'] * won,
        'xp': w['xp'] * xp,
        'hp_lost': -w['hp_lost'] * hp_lost,
        'no_progress': 0.0 if progress else -w['no_progress'],
    }
    return sum(terms.values()), terms

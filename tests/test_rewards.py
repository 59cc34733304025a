"""Every reward term, and the bookkeeping changes that must give none, on fake Pokémon Red memory."""

import pytest

from dreamer_jax.envs import ram_map as rm
from dreamer_jax.envs import rewards
from dreamer_jax.envs import state as state_lib
from dreamer_jax.errors import UserError
from tests import gb_testing as gt

W = rewards.DEFAULT_WEIGHTS
PIKA = dict(species=0x54, hp=30, max_hp=35, level=10, exp=1000, ot_id=1, dvs=0x1111)
RATTA = dict(species=0xA5, hp=20, max_hp=22, level=5, exp=125, ot_id=1, dvs=0x2222)


class Game:
  """Fake memory plus a tracker; `step()` scores the memory as it is now."""

  def __init__(self, party=(PIKA,), weights=None):
    self.mem = gt.fake_memory()
    self.mem[rm.CUR_MAP], self.mem[rm.X_COORD], self.mem[rm.Y_COORD] = 1, 5, 5
    gt.put_party(self.mem, [dict(m) for m in party])
    gt.set_dex(self.mem, rm.POKEDEX_OWNED, [25])
    self.tracker = rewards.RewardTracker(rewards.reward_weights(weights))
    self.tracker.reset(state_lib.read_snapshot(self.mem))

  def step(self):
    reward, terms = self.tracker.step(state_lib.read_snapshot(self.mem))
    assert set(terms) == set(rewards.TERMS)
    assert reward == pytest.approx(sum(terms.values()))
    return terms

  def party(self, mons):
    gt.put_party(self.mem, [dict(m) for m in mons])


def _only(terms, **expected):
  """Asserts that the named terms have these values and every other term is 0."""
  for name in rewards.TERMS:
    assert terms[name] == pytest.approx(expected.get(name, 0.0)), name


def test_standing_still_is_no_progress_and_counts():
  g = Game()
  _only(g.step(), no_progress=-W['no_progress'])
  g.step()
  assert g.tracker.steps_without_progress == 2


def test_new_tile_is_progress_without_reward_and_revisit_is_not():
  g = Game()
  g.step()
  g.mem[rm.X_COORD] = 6
  _only(g.step())
  assert g.tracker.steps_without_progress == 0
  g.mem[rm.X_COORD] = 5
  _only(g.step(), no_progress=-W['no_progress'])


def test_new_map_once():
  g = Game()
  g.mem[rm.CUR_MAP] = 2
  _only(g.step(), new_map=W['new_map'])
  g.mem[rm.CUR_MAP] = 1
  _only(g.step(), no_progress=-W['no_progress'])  # Start map and tile: already visited.
  g.mem[rm.CUR_MAP] = 2
  _only(g.step(), no_progress=-W['no_progress'])


def test_badges_per_new_bit_once():
  g = Game()
  g.mem[rm.OBTAINED_BADGES] = 0b011
  _only(g.step(), badge=2 * W['badge'])
  g.mem[rm.OBTAINED_BADGES] = 0b001
  _only(g.step(), no_progress=-W['no_progress'])
  g.mem[rm.OBTAINED_BADGES] = 0b111
  _only(g.step(), badge=W['badge'])


def test_badges_held_at_reset_earn_nothing():
  g = Game()
  g.mem[rm.OBTAINED_BADGES] = 1
  g.tracker.reset(state_lib.read_snapshot(g.mem))
  _only(g.step(), no_progress=-W['no_progress'])


def test_experience_going_down_is_no_reward_and_no_penalty():
  g = Game()
  g.party([dict(PIKA, exp=900)])
  _only(g.step(), no_progress=-W['no_progress'])


def test_xp_and_hp_of_the_same_mon():
  g = Game()
  g.party([dict(PIKA, exp=1250, hp=25)])
  _only(g.step(), xp=250 * W['xp'], hp_lost=-5 * W['hp_lost'])


def test_fainting_is_the_hp_lost_once():
  g = Game()
  g.party([dict(PIKA, hp=0)])
  _only(g.step(), hp_lost=-30 * W['hp_lost'], no_progress=-W['no_progress'])
  _only(g.step(), no_progress=-W['no_progress'])


def test_healing_and_level_up_hp_are_not_rewards():
  g = Game()
  g.party([dict(PIKA, hp=35)])
  _only(g.step(), no_progress=-W['no_progress'])
  g.party([dict(PIKA, hp=40, max_hp=40, level=11, exp=1331)])
  _only(g.step(), xp=331 * W['xp'])


def test_reordering_the_party_changes_nothing():
  g = Game(party=(PIKA, RATTA))
  g.party([RATTA, PIKA])
  _only(g.step(), no_progress=-W['no_progress'])


def test_reordering_mons_without_ids_changes_nothing():
  # tinymon leaves OT id and DVs at zero: identity falls back to species and closeness.
  a, b = dict(PIKA, ot_id=0, dvs=0), dict(RATTA, ot_id=0, dvs=0)
  g = Game(party=(a, b))
  g.party([b, a])
  _only(g.step(), no_progress=-W['no_progress'])


def test_catching_gives_species_not_xp_or_win():
  g = Game()
  g.mem[rm.IS_IN_BATTLE] = rm.BATTLE_WILD
  gt.put_u16(g.mem, rm.ENEMY_MON_HP, 9)
  g.step()
  gt.set_dex(g.mem, rm.POKEDEX_OWNED, [25, 19])
  g.party([PIKA, dict(RATTA, hp=9, exp=125)])
  g.mem[rm.IS_IN_BATTLE] = rm.BATTLE_NONE
  _only(g.step(), new_species=W['new_species'])


def test_species_already_owned_at_reset_earn_nothing_and_each_counts_once():
  g = Game()
  gt.set_dex(g.mem, rm.POKEDEX_OWNED, [25, 1, 2])
  _only(g.step(), new_species=2 * W['new_species'])
  _only(g.step(), no_progress=-W['no_progress'])


def test_depositing_a_mon_is_not_hp_lost():
  g = Game(party=(PIKA, RATTA))
  g.party([PIKA])
  _only(g.step(), no_progress=-W['no_progress'])


def test_evolution_keeps_identity():
  g = Game()
  g.party([dict(PIKA, species=0x55, hp=50, max_hp=60, exp=1100)])
  _only(g.step(), xp=100 * W['xp'])


def _battle(g, kind, enemy_hps, end):
  """Runs a battle of `kind` in which the enemy's HP goes through `enemy_hps`, ending with
  wIsInBattle = `end` values in turn; returns the terms of the last step."""
  g.mem[rm.IS_IN_BATTLE] = kind
  for hp in enemy_hps:
    gt.put_u16(g.mem, rm.ENEMY_MON_HP, hp)
    g.step()
  for value in end:
    g.mem[rm.IS_IN_BATTLE] = value
    terms = g.step()
  return terms


@pytest.mark.parametrize('kind', [rm.BATTLE_WILD, rm.BATTLE_TRAINER])
def test_battle_won(kind):
  g = Game()
  _only(_battle(g, kind, [20, 5, 0], [0]), battle_won=W['battle_won'])


def test_trainer_battle_with_two_mons_won_once():
  g = Game()
  _only(_battle(g, rm.BATTLE_TRAINER, [20, 0, 30, 0], [0]), battle_won=W['battle_won'])
  _only(g.step(), no_progress=-W['no_progress'])


def test_blackout_is_not_a_win():
  g = Game()
  # The enemy's first mon fainted, so only the way the battle ends tells a loss from a win: neither
  # the step to 0xFF nor the one back to 0 wins.
  _only(_battle(g, rm.BATTLE_TRAINER, [20, 0, 30], [0xFF]), no_progress=-W['no_progress'])
  g.mem[rm.IS_IN_BATTLE] = rm.BATTLE_NONE
  _only(g.step(), no_progress=-W['no_progress'])


def test_running_away_is_not_a_win():
  g = Game()
  # A stale 0 from the last battle before the new enemy loads must not count as a faint.
  _only(_battle(g, rm.BATTLE_WILD, [0, 20, 20], [0]), no_progress=-W['no_progress'])


def test_weights_from_config_scale_terms():
  g = Game(weights=dict(new_map=3.0, no_progress=0.5))
  _only(g.step(), no_progress=-0.5)
  g.mem[rm.CUR_MAP] = 9
  _only(g.step(), new_map=3.0)


def test_a_zero_weight_switches_a_term_off():
  g = Game(weights=dict(no_progress=0))
  _only(g.step())


def test_bad_weights_are_one_sentence():
  with pytest.raises(UserError, match=r"unknown reward term\(s\) \['badges'\]"):
    rewards.reward_weights({'badges': 1.0})
  with pytest.raises(UserError, match='hp_lost=-1.0 is not a non-negative number'):
    rewards.reward_weights({'hp_lost': -1.0})
  # A YAML or flag typo: True would silently count as weight 1.
  with pytest.raises(UserError, match='badge=True is not a non-negative number'):
    rewards.reward_weights({'badge': True})


def test_reset_starts_a_fresh_episode():
  g = Game()
  g.mem[rm.X_COORD] = 6
  g.step()
  g.mem[rm.CUR_MAP] = 2
  g.step()
  g.mem[rm.CUR_MAP], g.mem[rm.X_COORD] = 1, 5
  g.step()
  g.step()
  assert g.tracker.steps_without_progress == 2
  g.tracker.reset(state_lib.read_snapshot(g.mem))
  assert g.tracker.steps_without_progress == 0
  # The last episode's tile (6, 5) and map 2 are new again; a standing step counts from 1 again.
  _only(g.step(), no_progress=-W['no_progress'])
  assert g.tracker.steps_without_progress == 1
  g.mem[rm.X_COORD] = 6
  _only(g.step())
  g.mem[rm.CUR_MAP] = 2
  _only(g.step(), new_map=W['new_map'])


@pytest.mark.parametrize('restart', ['reset', 'rebase'])
def test_a_battle_before_a_restart_is_not_won_after_it(restart):
  g = Game()
  g.mem[rm.IS_IN_BATTLE] = rm.BATTLE_WILD
  for hp in (20, 0):  # The enemy fainted; the battle has not ended yet.
    gt.put_u16(g.mem, rm.ENEMY_MON_HP, hp)
    g.step()
  # The new start is in a battle whose enemy is never seen alive (a stale 0): its end is no win.
  getattr(g.tracker, restart)(state_lib.read_snapshot(g.mem))
  g.mem[rm.IS_IN_BATTLE] = rm.BATTLE_NONE
  assert g.step()['battle_won'] == 0


def test_rebase_diffs_against_the_loaded_state_and_keeps_what_the_episode_earned():
  g = Game()
  before = state_lib.read_snapshot(g.mem)  # Pikachu at 1,000 exp; only dex #25 owned.
  gt.set_dex(g.mem, rm.POKEDEX_OWNED, [25, 19])
  g.party([dict(PIKA, exp=1250)])
  _only(g.step(), new_species=W['new_species'], xp=250 * W['xp'])
  # Loading the earlier state: exp is back at 1,000 and #19 not owned there.
  gt.set_dex(g.mem, rm.POKEDEX_OWNED, [25])
  g.party([PIKA])
  g.tracker.rebase(before)
  g.party([dict(PIKA, exp=1100)])
  _only(g.step(), xp=100 * W['xp'])  # 1,100 - 1,000, not measured from 1,250.
  gt.set_dex(g.mem, rm.POKEDEX_OWNED, [25, 19])
  _only(g.step(), no_progress=-W['no_progress'])  # #19 was already caught this episode.


def test_config_defaults_match_the_table():
  from configs import v3  # pylint: disable=g-import-not-at-top
  assert dict(v3.get_config().reward) == rewards.DEFAULT_WEIGHTS

"""Battle arithmetic and battle-menu choices for the scripted expert, by tinymon's rules.

tinymon's battles (games/tinymon/DESIGN.md, "Battles"): every mon has one attack of power 80; the
faster mon hits first (ties go to the player); damage = ((2L/5 + 2) x 80 x Atk / Def / 50 + 2) x
roll / 255 with roll in 217..255, at least 1; stats come from the species' base values and the level.
The expert uses this to foresee whether its party beats a trainer's whole party and whether its
next hit could faint a wild mon it wants to catch.
"""

from typing import NamedTuple

from dreamer_jax.envs import ram_map

MOVE_POWER = 80
ROLL_MIN, ROLL_MAX = 217, 255
FIGHT, BALL, RUN = range(3)   # Battle-menu items, top to bottom.

# tinymon's bot RAM (DESIGN.md, "Extra RAM for bots").
BALL_COUNT = ram_map.TINYMON_BALL_COUNT
BATTLE_MON_INDEX = 0xD906
ENEMY_SPECIES = ram_map.TINYMON_ENEMY_SPECIES
# Party struct offsets of the live stats (Pokémon Red's layout).
MON_ATTACK, MON_DEFENSE, MON_SPEED = 0x24, 0x26, 0x28


class Fighter(NamedTuple):
  level: int
  hp: int
  attack: int
  defense: int
  speed: int


def stat(base, level):
  return base * 2 * level // 100 + 5


def max_hp(base, level):
  return base * 2 * level // 100 + level + 10


def damage(level, attack, defense, roll):
  """HP one hit takes; `roll` in ROLL_MIN..ROLL_MAX."""
  return max(1, ((level * 2 // 5 + 2) * MOVE_POWER * attack // max(defense, 1) // 50 + 2) * roll // 255)


def species_fighter(species, level, hp=None):
  """A wild or trainer mon of `species` (a `tinymon.world.Species`) at `level`, full HP by default."""
  return Fighter(level, max_hp(species.hp, level) if hp is None else hp,
                 stat(species.attack, level), stat(species.defense, level), stat(species.speed, level))


def party_fighter(memory, slot, full=False):
  """Party slot `slot` as its stats stand in RAM (at full HP when `full`)."""
  def u16(offset):
    return ram_map.read_u16(memory, ram_map.party_mon_address(slot, offset))
  return Fighter(memory[ram_map.party_mon_address(slot, ram_map.MON_LEVEL)],
                 u16(ram_map.MON_MAX_HP) if full else u16(ram_map.MON_HP),
                 u16(MON_ATTACK), u16(MON_DEFENSE), u16(MON_SPEED))


def wins(ours, enemies, our_roll=ROLL_MIN, their_roll=ROLL_MAX):
  """Whether our mons, sent out in order, faint all `enemies` (fought one after another).

  With the default rolls every hit of ours is the weakest and every hit of theirs the strongest, so
  True means the fight is won whatever the RNG does (level-ups on the way are ignored).
  """
  ours = [m for m in ours if m.hp > 0]
  if not ours:
    return False
  i, hp = 0, ours[0].hp
  for enemy in enemies:
    enemy_hp = enemy.hp
    while enemy_hp > 0:
      mon = ours[i]
      if mon.speed >= enemy.speed:
        enemy_hp -= damage(mon.level, mon.attack, enemy.defense, our_roll)
        if enemy_hp <= 0:
          break
      hp -= damage(enemy.level, enemy.attack, mon.defense, their_roll)
      if hp <= 0:
        i += 1
        if i == len(ours):
          return False
        hp = ours[i].hp
        continue
      if mon.speed < enemy.speed:
        enemy_hp -= damage(mon.level, mon.attack, enemy.defense, our_roll)
  return True


def menu_choice(memory, world, flee, run_fraction, catch=True):
  """FIGHT, BALL or RUN for the battle menu now showing.

  Trainer battles are fought. In a wild battle a species not owned yet is caught (unless `catch` is
  False): weakened to half HP unless our next hit could faint it, then balls (a ball's chance rises
  as the target's HP falls). Otherwise the expert fights, or runs when `flee` or when the active
  mon's HP is below `run_fraction`.
  """
  if memory[ram_map.IS_IN_BATTLE] != ram_map.BATTLE_WILD:
    return FIGHT
  species = memory[ENEMY_SPECIES]
  hp = ram_map.read_u16(memory, ram_map.ENEMY_MON_HP)
  half = ram_map.read_u16(memory, ram_map.ENEMY_MON_MAX_HP) // 2
  own_hp = ram_map.read_u16(memory, ram_map.BATTLE_MON_HP)
  low = own_hp < run_fraction * ram_map.read_u16(memory, ram_map.BATTLE_MON_MAX_HP)
  if catch and not ram_map.dex_flag(memory, ram_map.POKEDEX_OWNED, species) and (
      memory[BALL_COUNT] > 0):
    ours = party_fighter(memory, memory[BATTLE_MON_INDEX])
    defense = stat(world.species_by_id(species).defense, memory[ram_map.ENEMY_MON_LEVEL])
    if low or hp <= half or damage(ours.level, ours.attack, defense, ROLL_MAX) >= hp:
      return BALL
    return FIGHT
  return RUN if flee or low else FIGHT

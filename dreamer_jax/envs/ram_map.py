"""Work-RAM addresses the agent reads, shared by Pokémon Red/Blue and tinymon.

tinymon keeps every field below at Pokémon Red's address and in its encoding, so one map serves both
games (source: ../shared/reference/pokered_ram.md, sections 1 and 2, from the pret/pokered symbols).
Multi-byte numbers are big-endian; money is 6-digit BCD. Readers take any `memory[address]`-indexable
object (PyBoy's memory, or a numpy array of 0x10000 bytes as fake memory) and return Python ints.
"""

# Core fields.
CUR_MAP = 0xD35E            # wCurMap: map id.
Y_COORD = 0xD361            # wYCoord: player Y in 16x16-pixel cells, updated when a step finishes.
X_COORD = 0xD362            # wXCoord.
OBTAINED_BADGES = 0xD356    # wObtainedBadges: bit i = badge i.
PARTY_COUNT = 0xD163        # wPartyCount: 0..6.
PARTY_SPECIES = 0xD164      # wPartySpecies: 6 species bytes then 0xFF.
PARTY_MONS = 0xD16B         # wPartyMon1: 6 structs of PARTY_MON_SIZE bytes.
PARTY_MON_SIZE = 0x2C
POKEDEX_OWNED = 0xD2F7      # wPokedexOwned: 19 bytes, dex n -> byte (n-1)>>3, bit (n-1)&7.
POKEDEX_SEEN = 0xD30A       # wPokedexSeen: same encoding.
POKEDEX_BYTES = 19
IS_IN_BATTLE = 0xD057       # wIsInBattle: 0 none, 1 wild, 2 trainer, 0xFF lost.
ENEMY_MON_HP = 0xCFE6       # wEnemyMonHP (2 bytes).
ENEMY_MON_LEVEL = 0xCFF3
ENEMY_MON_MAX_HP = 0xCFF4   # (2 bytes).
BATTLE_MON_HP = 0xD015      # wBattleMonHP (2 bytes).
BATTLE_MON_LEVEL = 0xD022
BATTLE_MON_MAX_HP = 0xD023  # (2 bytes).
PLAYER_MONEY = 0xD347       # wPlayerMoney: 3 bytes BCD.
EVENT_FLAGS = 0xD747        # wEventFlags: 320 bytes, event e -> byte e//8, bit e%8.
EVENT_FLAGS_BYTES = 320
FONT_LOADED = 0xCFC4        # wFontLoaded: bit 0 set while a text box or the START menu is up.
WALK_COUNTER = 0xCFC5       # wWalkCounter: non-zero while a step is in progress.
LAST_MAP = 0xD365           # wLastMap.
LAST_BLACKOUT_MAP = 0xD719  # wLastBlackoutMap.
JOY_IGNORE = 0xCD6B         # wJoyIgnore.
CURRENT_MENU_ITEM = 0xCC26  # wCurrentMenuItem: the item under any menu's cursor (0 = top).
# tinymon's own bot bytes (games/tinymon/DESIGN.md), outside Pokémon Red's mirrored fields.
TINYMON_BATTLE_CURSOR = 0xD901   # wBattleCursor: 0 FIGHT, 1 BALL, 2 RUN.
TINYMON_BATTLE_PHASE = 0xD902    # wBattlePhase: 1 a message waits for A, 2 the menu waits.
TINYMON_BALL_COUNT = 0xD905      # Balls in the bag.
TINYMON_ENEMY_SPECIES = 0xD907   # The enemy's species as its dex number (1-based).
# Pokémon Red's bag: wNumBagItems, then (item id, quantity) pairs; Master/Ultra/Great/Poké Ball.
NUM_BAG_ITEMS = 0xD31D
BAG_ITEMS = 0xD31E
BAG_CAPACITY = 20
BALL_ITEMS = (0x01, 0x02, 0x03, 0x04)
PLAYER_FACING = 0xC109      # 0 down, 4 up, 8 left, 0x0C right.
H_WY = 0xFFB0               # hWY.

# Offsets inside one party struct.
MON_SPECIES = 0x00
MON_HP = 0x01               # 2 bytes.
MON_BOX_LEVEL = 0x03
MON_STATUS = 0x04
MON_EXP = 0x0E              # 3 bytes.
MON_LEVEL = 0x21
MON_MAX_HP = 0x22           # 2 bytes.

BATTLE_NONE, BATTLE_WILD, BATTLE_TRAINER, BATTLE_LOST = 0, 1, 2, 0xFF

# Every byte the agent reads; tinymon's build checks that no other variable overlaps them.
MIRRORED_RANGES = (
    (CUR_MAP, 1), (Y_COORD, 2), (OBTAINED_BADGES, 1), (PARTY_COUNT, 1), (PARTY_SPECIES, 7),
    (PARTY_MONS, 6 * PARTY_MON_SIZE), (POKEDEX_OWNED, POKEDEX_BYTES), (POKEDEX_SEEN, POKEDEX_BYTES),
    (IS_IN_BATTLE, 1), (ENEMY_MON_HP, 2), (ENEMY_MON_LEVEL, 1), (ENEMY_MON_MAX_HP, 2),
    (BATTLE_MON_HP, 2), (BATTLE_MON_LEVEL, 1), (BATTLE_MON_MAX_HP, 2), (PLAYER_MONEY, 3),
    (EVENT_FLAGS, EVENT_FLAGS_BYTES), (FONT_LOADED, 1), (WALK_COUNTER, 1), (LAST_MAP, 1),
    (LAST_BLACKOUT_MAP, 1),
)


def party_mon_address(slot, offset):
  """Address of `offset` inside party slot `slot` (0..5)."""
  return PARTY_MONS + slot * PARTY_MON_SIZE + offset


def read_u8(memory, address):
  # int(): a numpy uint8 would overflow when shifted and is not JSON-serialisable.
  return int(memory[address])


def read_u16(memory, address):
  return (int(memory[address]) << 8) | int(memory[address + 1])


def read_u24(memory, address):
  return (int(memory[address]) << 16) | (int(memory[address + 1]) << 8) | int(memory[address + 2])


def read_bcd(memory, address, num_bytes):
  value = 0
  for i in range(num_bytes):
    byte = int(memory[address + i])
    value = value * 100 + (byte >> 4) * 10 + (byte & 0x0F)
  return value


def dex_flag(memory, base, dex_number):
  """Whether dex number `dex_number` (1-based) is set in the bitfield at `base`."""
  n = dex_number - 1
  return bool(int(memory[base + (n >> 3)]) >> (n & 7) & 1)


def bag_ball_count(memory):
  """Pokémon Red: the balls of every kind in the bag (a bad item count reads as the capacity)."""
  items = min(int(memory[NUM_BAG_ITEMS]), BAG_CAPACITY)
  return sum(int(memory[BAG_ITEMS + 2 * i + 1]) for i in range(items)
             if int(memory[BAG_ITEMS + 2 * i]) in BALL_ITEMS)


def dex_count(memory, base):
  return sum(bin(int(memory[base + i])).count('1') for i in range(POKEDEX_BYTES))


def event_flag(memory, event):
  return bool(int(memory[EVENT_FLAGS + event // 8]) >> (event % 8) & 1)

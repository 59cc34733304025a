"""Helpers for the environment tests: tiny ROMs made on the spot and RAM writers.

The writers take any `memory[address] = value` target: a numpy array of 0x10000 bytes (fake memory
for Pokémon Red, which is never in the repository) or PyBoy's memory (tinymon).
"""

import numpy as np

from dreamer_jax.envs import ram_map as rm

_LOGO = bytes.fromhex('CEED6666CC0D000B03730083000C000D0008111F8889000EDCCC6EE6DDDDD999BBBB67636E0EE'
                      'CCCDDDC999FBBB9333E')
# ld a, 1; ld (0xD900), a; loop: jr loop. Sets tinymon's wGameMode to "overworld" and idles.
OVERWORLD_CODE = bytes([0x3E, 0x01, 0xEA, 0x00, 0xD9, 0x18, 0xFE])


def make_rom(path, code=OVERWORLD_CODE, title=b'TESTROM'):
  """Writes a valid 32 KiB Game Boy ROM that jumps to `code` at 0x150; returns the path."""
  rom = bytearray(32 * 1024)
  rom[0x100:0x104] = bytes([0x00, 0xC3, 0x50, 0x01])  # nop; jp 0x150
  rom[0x104:0x134] = _LOGO
  rom[0x134:0x134 + len(title)] = title
  x = 0
  for b in rom[0x134:0x14D]:
    x = (x - b - 1) & 0xFF
  rom[0x14D] = x
  rom[0x150:0x150 + len(code)] = code
  with open(path, 'wb') as f:
    f.write(rom)
  return str(path)


def fake_memory():
  return np.zeros(0x10000, np.uint8)


def put_u16(memory, address, value):
  memory[address] = value >> 8
  memory[address + 1] = value & 0xFF


def put_u24(memory, address, value):
  memory[address] = value >> 16
  put_u16(memory, address + 1, value & 0xFFFF)


def put_mon(memory, slot, species, hp, max_hp, level, exp, ot_id=0, dvs=0):
  """Writes party slot `slot` (its species also into wPartySpecies)."""
  memory[rm.PARTY_SPECIES + slot] = species
  memory[rm.party_mon_address(slot, rm.MON_SPECIES)] = species
  put_u16(memory, rm.party_mon_address(slot, rm.MON_HP), hp)
  put_u16(memory, rm.party_mon_address(slot, rm.MON_MAX_HP), max_hp)
  memory[rm.party_mon_address(slot, rm.MON_LEVEL)] = level
  memory[rm.party_mon_address(slot, rm.MON_BOX_LEVEL)] = level
  put_u24(memory, rm.party_mon_address(slot, rm.MON_EXP), exp)
  put_u16(memory, rm.party_mon_address(slot, 0x0C), ot_id)
  put_u16(memory, rm.party_mon_address(slot, 0x1B), dvs)


def put_party(memory, mons):
  """Writes a whole party: `mons` is a list of put_mon keyword dicts."""
  memory[rm.PARTY_COUNT] = len(mons)
  for slot, mon in enumerate(mons):
    put_mon(memory, slot, **mon)
  memory[rm.PARTY_SPECIES + len(mons)] = 0xFF


def put_money(memory, amount):
  digits = f'{amount:06d}'
  for i in range(3):
    memory[rm.PLAYER_MONEY + i] = int(digits[2 * i]) << 4 | int(digits[2 * i + 1])


def set_dex(memory, base, dex_numbers):
  """Sets the Pokédex bits of `dex_numbers` (1-based) in the bitfield at `base`, clearing the rest."""
  for i in range(rm.POKEDEX_BYTES):
    memory[base + i] = 0
  for n in dex_numbers:
    memory[base + ((n - 1) >> 3)] = int(memory[base + ((n - 1) >> 3)]) | 1 << ((n - 1) & 7)

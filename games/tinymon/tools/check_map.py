"""Fails the build when the linker put a variable inside the RAM mirror.

Usage: python3 check_map.py build/tinymon.map src/ram.c

The agent reads Pokémon Red's addresses (dreamer_jax/envs/ram_map.py: MIRRORED_RANGES); only the
fields defined with __at(...) in src/ram.c may live there. This script reads the linker map, and fails
if a RAM area (_DATA, _INITIALIZED, _BSS, _HEAP) overlaps a reserved range, or a symbol other than a
ram.c field sits inside one. The range list is duplicated from ram_map.MIRRORED_RANGES (this script
must run with the stdlib only): keep the two in sync.
"""

import re
import sys

# (start, length), copied from dreamer_jax/envs/ram_map.py MIRRORED_RANGES.
MIRRORED_RANGES = (
    (0xD35E, 1), (0xD361, 2), (0xD356, 1), (0xD163, 1), (0xD164, 7), (0xD16B, 6 * 0x2C),
    (0xD2F7, 19), (0xD30A, 19), (0xD057, 1), (0xCFE6, 2), (0xCFF3, 1), (0xCFF4, 2), (0xD015, 2),
    (0xD022, 1), (0xD023, 2), (0xD347, 3), (0xD747, 320), (0xCFC4, 1), (0xCFC5, 1), (0xD365, 1),
    (0xD719, 1),
)
# Also kept free: the shadow OAM, other fixed fields in ram.c (facing, wJoyIgnore, bot bytes).
OTHER_RESERVED = ((0xC000, 0xA0), (0xC109, 1), (0xCD6B, 1), (0xD900, 0x20))
RAM_AREAS = ('_DATA', '_INITIALIZED', '_BSS', '_HEAP', '_BSEG')


def overlaps(start, size, ranges):
  return [(s, n) for s, n in ranges if start < s + n and s < start + size]


def main():
  map_path, ram_c = sys.argv[1], sys.argv[2]
  with open(ram_c, encoding='utf-8') as f:
    allowed = set(re.findall(r'__at\(0x[0-9A-Fa-f]+\)\s+\w+\s+(\w+)', f.read()))
  with open(map_path, encoding='utf-8') as f:
    text = f.read()
  problems = []
  reserved = MIRRORED_RANGES + OTHER_RESERVED
  for area, addr, size in re.findall(r'^(_\w+)\s+([0-9A-F]{8})\s+([0-9A-F]{8})', text, re.M):
    start, n = int(addr, 16), int(size, 16)
    if area in RAM_AREAS and n and overlaps(start, n, reserved):
      problems.append(f'area {area} at {start:#06x}+{n} overlaps a reserved RAM range')
  for addr, name in re.findall(r'^\s+([0-9A-F]{8})\s+(_\w+)', text, re.M):
    a = int(addr, 16)
    if overlaps(a, 1, MIRRORED_RANGES) and name[1:] not in allowed:
      problems.append(f'symbol {name} at {a:#06x} lies inside the RAM mirror')
  if problems:
    sys.exit('check_map: ' + '; '.join(problems))
  if not allowed:
    sys.exit(f'check_map: found no __at fields in {ram_c}')


if __name__ == '__main__':
  main()

"""Reading and checking Game Boy ROM files before the emulator sees them.

A wrong file should end in one sentence that names it and says what was expected, never in an
emulator crash: `read_rom` checks existence, the cartridge header's checksum and that the file is as
long as its header says.
"""

import dataclasses
import hashlib
import os

from dreamer_jax.errors import UserError

HEADER_END = 0x150
_TITLE = slice(0x134, 0x144)
_ROM_SIZE_BYTE = 0x148
_HEADER_CHECKSUM = 0x14D

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINYMON_ROM = os.path.join(REPO_ROOT, 'games', 'tinymon', 'tinymon.gb')


@dataclasses.dataclass(frozen=True)
class RomInfo:
  path: str
  data: bytes
  sha1: str
  title: str


def header_checksum(data):
  """The cartridge header checksum over 0x134..0x14C, as the boot ROM computes it."""
  x = 0
  for b in data[0x134:0x14D]:
    x = (x - b - 1) & 0xFF
  return x


def read_rom(path):
  """Reads and checks a Game Boy ROM file; raises `UserError` with one clear sentence if it is not one."""
  path = os.fspath(path)
  if not os.path.exists(path):
    raise UserError(f'ROM file {path!r} does not exist; expected a Game Boy ROM (.gb) file.')
  if not os.path.isfile(path):
    raise UserError(f'ROM path {path!r} is not a file; expected a Game Boy ROM (.gb) file.')
  with open(path, 'rb') as f:
    data = f.read()
  if len(data) < HEADER_END:
    raise UserError(
        f'ROM file {path!r} is {len(data)} bytes, too short to hold a Game Boy cartridge header '
        f'(expected at least {HEADER_END} bytes; is it truncated?).')
  if header_checksum(data) != data[_HEADER_CHECKSUM]:
    raise UserError(
        f'ROM file {path!r} has no valid Game Boy cartridge header (header checksum mismatch); '
        'expected a Game Boy ROM (.gb) file.')
  size_code = data[_ROM_SIZE_BYTE]
  expected = (32 * 1024) << size_code if size_code <= 8 else None
  if expected is None:
    raise UserError(f'ROM file {path!r} declares an unknown ROM size code {size_code:#04x} in its header.')
  if len(data) < expected:
    raise UserError(
        f'ROM file {path!r} is {len(data)} bytes but its header declares {expected} bytes; '
        'the file is truncated.')
  title = data[_TITLE].split(b'\0')[0].decode('ascii', errors='replace')
  return RomInfo(path=path, data=data, sha1=hashlib.sha1(data).hexdigest(), title=title)

"""The RAM feature vector every model reads, and its decoding back to game quantities (probe targets).

Pure numpy over `state.Snapshot`s: the world model imports this without gymnasium or PyBoy.

Layout of `ram_features` (float32, values in [0, 1], named by `RAM_FEATURE_NAMES`, in this order):
  0 map_id/255, 1 x/255, 2 y/255, 3 wild battle, 4 trainer battle, 5 dialog open,
  6..13 badge bits 0..7, 14 party HP fraction (sum HP / sum max HP, 0 for no party),
  15 party count/6, 16..21 level/100 of slots 0..5, 22..27 HP fraction of slots 0..5,
  28 enemy HP fraction (0 outside battle), 29 enemy level/100 (0 outside battle),
  30 money/999999, 31..34 facing down/up/left/right, 35 Pokédex owned/151, 36 seen/151,
  37 walking (mid-step), 38 buttons ignored (a cutscene), 39..42 menu cursor on item 0..3 (one-hot;
  an item past 3 reads as 3), 43 a battle message waits for A, 44 the battle menu waits for input,
  45 a wild battle against a species not owned yet, 46 balls in the bag (min(n, 10) / 10).
  Empty party slots read 0. The menu, species and ball fields read 0 where the game spec names no
  such byte.

The vector only grows at its end: a model trained on an older, shorter layout reads its prefix (the
world model keeps the length it was trained on, `model.WorldModel.ram_size`).
"""

import numpy as np

from dreamer_jax.envs import ram_map as rm
from dreamer_jax.envs import state as state_lib

RAM_FEATURE_NAMES = (
    ('map_id', 'x', 'y', 'battle_wild', 'battle_trainer', 'dialog_open')
    + tuple(f'badge_{i}' for i in range(8))
    + ('party_hp_frac', 'party_count')
    + tuple(f'level_{i}' for i in range(6))
    + tuple(f'hp_frac_{i}' for i in range(6))
    + ('enemy_hp_frac', 'enemy_level', 'money', 'facing_down', 'facing_up', 'facing_left',
       'facing_right', 'dex_owned', 'dex_seen', 'walking', 'joy_ignored')
    + tuple(f'menu_cursor_{i}' for i in range(4))
    + ('battle_message', 'battle_menu', 'enemy_new', 'balls')
)
RAM_FEATURES = len(RAM_FEATURE_NAMES)
_FACING_INDEX = {code: RAM_FEATURE_NAMES.index(f'facing_{name}')
                 for code, name in ((0x00, 'down'), (0x04, 'up'), (0x08, 'left'), (0x0C, 'right'))}
_CURSOR0 = RAM_FEATURE_NAMES.index('menu_cursor_0')
# Badge byte -> its 8 bits as floats, bit 0 first.
_BADGE_BITS = tuple(tuple(float(b >> i & 1) for i in range(8)) for b in range(256))


def _frac(num, den):
  return min(num / den, 1.0) if den else 0.0


def ram_features(snap):
  """The normalised feature vector of a `state.Snapshot`: float32 (RAM_FEATURES,) in [0, 1]."""
  # Plain Python floats into one np.array call: this runs on every agent step.
  party = snap.party
  pad = [0.0] * (6 - len(party))
  in_battle = snap.in_battle
  battle = in_battle in (rm.BATTLE_WILD, rm.BATTLE_TRAINER)
  values = [
      snap.map_id / 255.0, snap.x / 255.0, snap.y / 255.0,
      float(in_battle == rm.BATTLE_WILD), float(in_battle == rm.BATTLE_TRAINER),
      float(state_lib.dialog_open(snap)),
      *_BADGE_BITS[snap.badge_bits],
      _frac(sum(m.hp for m in party), sum(m.max_hp for m in party)), len(party) / 6.0,
      *[min(m.level / 100.0, 1.0) for m in party], *pad,
      *[_frac(m.hp, m.max_hp) for m in party], *pad,
      _frac(snap.enemy_hp, snap.enemy_max_hp) if battle else 0.0,
      min(snap.enemy_level / 100.0, 1.0) if battle else 0.0,
      min(snap.money / 999999.0, 1.0),
      0.0, 0.0, 0.0, 0.0,
      min(bin(snap.dex_owned).count('1') / 151.0, 1.0),
      min(bin(snap.dex_seen).count('1') / 151.0, 1.0),
      float(snap.walking), float(snap.joy_ignore != 0),
      0.0, 0.0, 0.0, 0.0,
      float(snap.menu_phase == 1), float(snap.menu_phase == 2),
      float(snap.enemy_new), min(snap.balls, 10) / 10.0,
  ]
  facing = _FACING_INDEX.get(snap.facing)
  if facing is not None:
    values[facing] = 1.0
  values[_CURSOR0 + min(snap.menu_cursor, 3)] = 1.0
  return np.array(values, dtype=np.float32)


DEX_OWNED = RAM_FEATURE_NAMES.index('dex_owned')
DEX_MAX = 151


def decode_probe_targets(ram):
  """Decodes the fixed first 16 features back to game quantities (and the Pokédex count where the
  vector has it).

  Args:
    ram: float array [..., R] of `ram_features` vectors.

  Returns:
    dict of numpy arrays over the leading dims: map_id, x, y (int32), in_battle (int32, 0/1/2),
    dialog_open (bool), badge_bits [..., 8] (bool), party_hp_frac (float32); dex_owned (int32,
    species owned, 0..151) where R > 35.
  """
  ram = np.asarray(ram)
  if ram.shape[-1] < 16:
    raise ValueError(f'ram features have shape {ram.shape}; expected [..., R] with R >= 16.')
  as_int = lambda i: np.rint(ram[..., i] * 255.0).astype(np.int32)
  out = {
      'map_id': as_int(0),
      'x': as_int(1),
      'y': as_int(2),
      'in_battle': np.where(ram[..., 3] > 0.5, 1, np.where(ram[..., 4] > 0.5, 2, 0)).astype(np.int32),
      'dialog_open': ram[..., 5] > 0.5,
      'badge_bits': ram[..., 6:14] > 0.5,
      'party_hp_frac': ram[..., 14].astype(np.float32),
  }
  if ram.shape[-1] > DEX_OWNED:
    out['dex_owned'] = np.rint(ram[..., DEX_OWNED] * DEX_MAX).astype(np.int32)
  return out

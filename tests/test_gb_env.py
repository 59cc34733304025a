"""GameBoyEnv: the gymnasium API, observations, rewards through PyBoy's memory, states, errors.

A tiny ROM made here that only idles stands in for Pokémon Red (read with its RAM map): bytes written
into PyBoy's memory stay put, so every field goes through the real emulator path. tinymon runs for
what needs a real game (start, determinism).
"""

import os
import subprocess
import sys

import gymnasium as gym
from gymnasium.utils.env_checker import check_env
import numpy as np
import pytest

from configs import v3
from dreamer_jax.envs import emulator as emulator_lib
from dreamer_jax.envs import gb_env
from dreamer_jax.envs import ram_map as rm
from dreamer_jax.envs import rewards
from dreamer_jax.envs import start_states
from dreamer_jax.errors import UserError
from tests import gb_testing as gt


@pytest.fixture(scope='module')
def idle(tmp_path_factory):
  """(rom path, start state path) of an idling ROM read as Pokémon Red."""
  folder = tmp_path_factory.mktemp('idle')
  rom = gt.make_rom(folder / 'idle.gb')
  state = folder / 'idle.state'
  start_states.play_and_save(rom, state, window='null', max_frames=60, allow_unknown_rom='pokered')
  return rom, str(state)


def _env(idle, **kwargs):
  rom, state = idle
  return gb_env.GameBoyEnv(game='pokered', rom_path=rom, state_path=state,
                           allow_unknown_rom='pokered', **kwargs)


def test_gymnasium_checker_and_spaces(idle):
  env = _env(idle)
  check_env(env, skip_render_check=True)
  assert env.action_space == gym.spaces.Discrete(8)
  obs, info = env.reset(seed=0)
  assert obs['frame'].shape == (144, 160) and obs['frame'].dtype == np.uint8
  assert obs['ram'].shape == (gb_env.RAM_FEATURES,) and obs['ram'].dtype == np.float32
  assert set(info) == {'state', 'reward_terms', 'frames'}
  assert info['frames'] == 0 and set(info['reward_terms']) == set(rewards.TERMS)
  _, _, terminated, truncated, info = env.step(emulator_lib.NOOP)
  assert (terminated, truncated, info['frames']) == (False, False, 24)
  env.close()


def test_ram_features_and_state_through_pyboy_memory(idle):
  env = _env(idle)
  env.reset()
  mem = env.emulator.memory
  mem[rm.CUR_MAP], mem[rm.X_COORD], mem[rm.Y_COORD] = 0x0C, 17, 200
  mem[rm.IS_IN_BATTLE] = rm.BATTLE_TRAINER
  mem[rm.OBTAINED_BADGES] = 0b10000011
  gt.put_party(mem, [dict(species=1, hp=10, max_hp=20, level=50, exp=5),
                     dict(species=2, hp=30, max_hp=60, level=7, exp=5, dvs=1)])
  gt.put_u16(mem, rm.ENEMY_MON_HP, 5)
  gt.put_u16(mem, rm.ENEMY_MON_MAX_HP, 20)
  gt.put_money(mem, 3000)
  mem[rm.PLAYER_FACING] = 0x08
  obs, _, _, _, info = env.step(emulator_lib.NOOP)
  ram = obs['ram']
  f = dict(zip(gb_env.RAM_FEATURE_NAMES, ram))
  assert f['map_id'] == pytest.approx(12 / 255) and f['y'] == pytest.approx(200 / 255)
  assert (f['battle_wild'], f['battle_trainer'], f['dialog_open']) == (0, 1, 0)
  assert [f[f'badge_{i}'] for i in range(8)] == [1, 1, 0, 0, 0, 0, 0, 1]
  assert f['party_hp_frac'] == pytest.approx(40 / 80) and f['party_count'] == pytest.approx(2 / 6)
  assert (f['level_0'], f['level_1'], f['level_2']) == pytest.approx((0.5, 0.07, 0.0))
  assert (f['hp_frac_0'], f['hp_frac_1'], f['hp_frac_5']) == pytest.approx((0.5, 0.5, 0.0))
  assert f['enemy_hp_frac'] == pytest.approx(0.25) and f['money'] == pytest.approx(3000 / 999999)
  assert (f['facing_down'], f['facing_left']) == (0, 1)
  assert ram.min() >= 0 and ram.max() <= 1 and env.observation_space.contains(obs)
  target = gb_env.decode_probe_targets(ram)
  assert (target['map_id'], target['x'], target['y'], target['in_battle']) == (12, 17, 200, 2)
  assert target['badge_bits'].tolist() == [True, True, False, False, False, False, False, True]
  assert not target['dialog_open'] and target['party_hp_frac'] == pytest.approx(0.5)
  st = info['state']
  assert (st['map_name'], st['x'], st['y'], st['badges']) == ('Route 1', 17, 200, 3)
  assert st['in_battle'] == 2
  assert (st['party_hp'], st['party_levels'], st['money']) == ([10, 30], [50, 7], 3000)
  env.close()


def test_decode_probe_targets_on_batches():
  ram = np.zeros((3, 5, gb_env.RAM_FEATURES), np.float32)
  ram[1, 2, 0], ram[1, 2, 3], ram[2, 0, 5], ram[0, 4, 7] = 37 / 255, 1, 1, 1
  t = gb_env.decode_probe_targets(ram)
  assert t['map_id'].shape == (3, 5) and t['badge_bits'].shape == (3, 5, 8)
  assert t['map_id'][1, 2] == 37 and t['in_battle'][1, 2] == 1 and t['dialog_open'][2, 0]
  assert t['badge_bits'][0, 4].tolist() == [False, True] + [False] * 6
  assert gb_env.RAM_FEATURE_NAMES[:16] == (
      'map_id', 'x', 'y', 'battle_wild', 'battle_trainer', 'dialog_open',
      *(f'badge_{i}' for i in range(8)), 'party_hp_frac', 'party_count')


def test_reward_terms_through_the_env(idle):
  env = _env(idle, reward_weights={'new_map': 2.0})
  env.reset()
  _, reward, _, _, info = env.step(emulator_lib.NOOP)
  assert reward == pytest.approx(-0.001) and info['state']['steps_without_progress'] == 1
  env.emulator.memory[rm.CUR_MAP] = 5
  _, reward, _, _, info = env.step(emulator_lib.NOOP)
  assert reward == pytest.approx(2.0) and info['reward_terms']['new_map'] == pytest.approx(2.0)
  assert info['state']['steps_without_progress'] == 0
  env.reset()  # A new episode forgets the maps seen.
  env.emulator.memory[rm.CUR_MAP] = 5
  assert env.step(emulator_lib.NOOP)[1] == pytest.approx(2.0)
  env.close()


def test_truncation_and_from_config(idle):
  config = v3.get_config()
  config.env.game, (config.env.rom_path, config.env.state_path) = 'pokered', idle
  config.env.max_episode_steps, config.env.allow_unknown_rom = 3, 'pokered'
  env = gb_env.GameBoyEnv.from_config(config.env, config.reward)
  env.reset()
  assert [env.step(emulator_lib.NOOP)[3] for _ in range(3)] == [False, False, True]
  env.close()


def test_save_and_load_state(idle):
  env = _env(idle)
  env.reset()
  env.emulator.memory[rm.X_COORD] = 9
  saved = env.save_state()
  env.emulator.memory[rm.X_COORD] = 3
  env.load_state(saved)
  assert env.state()['x'] == 9
  obs, info = env.reset(options={'state': saved})
  assert info['state']['x'] == 9
  with pytest.raises(UserError, match='is corrupt'):
    env.load_state(saved[:-1] + bytes([saved[-1] ^ 1]))
  env.close()


def test_states_of_another_rom_or_damaged_are_one_sentence(idle, tmp_path):
  rom, state = idle
  other = gt.make_rom(tmp_path / 'other.gb', title=b'OTHER')
  with pytest.raises(UserError, match=r"state '.*idle.state' was saved with the ROM of SHA-1 \w+, "
                                      r'not this ROM'):
    gb_env.GameBoyEnv(game='pokered', rom_path=other, state_path=state, allow_unknown_rom='pokered')
  cut = tmp_path / 'cut.state'
  cut.write_bytes(open(state, 'rb').read()[:5000])
  with pytest.raises(UserError, match='the file is truncated or was cut'):
    gb_env.GameBoyEnv(game='pokered', rom_path=rom, state_path=str(cut), allow_unknown_rom='pokered')
  with pytest.raises(UserError, match='needs a start state file'):
    gb_env.GameBoyEnv(game='pokered', rom_path=rom, allow_unknown_rom='pokered')


def test_bad_arguments_are_one_sentence(idle):
  with pytest.raises(UserError, match='max_episode_steps=0 must be a positive integer'):
    _env(idle, max_episode_steps=0)
  with pytest.raises(UserError, match=r'press_frames=30 must be in 1..frames_per_step \(24\)'):
    _env(idle, press_frames=30)
  with pytest.raises(UserError, match=r"unknown game 'mario'"):
    gb_env.GameBoyEnv(game='mario')


def test_registered_ids(idle):
  rom, state = idle
  env = gym.make('dreamer_jax/PokemonRed-v0', rom_path=rom, state_path=state,
                 allow_unknown_rom='pokered')
  obs, _ = env.reset(seed=1)
  assert obs['frame'].shape == (144, 160)
  env.close()
  assert gym.spec('dreamer_jax/Tinymon-v0').kwargs == {'game': 'tinymon'}


def test_inspect_state_reads_a_state_file(idle, tmp_path):
  rom, _ = idle
  emu = emulator_lib.Emulator(rom)
  emu.step(emulator_lib.NOOP)
  emu.memory[rm.CUR_MAP], emu.memory[rm.X_COORD] = 0x28, 4
  gt.put_party(emu.memory, [dict(species=0xB0, hp=19, max_hp=20, level=5, exp=135)])
  path = tmp_path / 'lab.state'
  start_states.write_state_file(path, emu.save_state(), emu.rom.sha1)
  emu.close()
  st = gb_env.inspect_state(rom, str(path), steps=2, allow_unknown_rom='pokered')
  assert (st['map_name'], st['x'], st['party_hp'], st['party_levels']) == ("Oak's Lab", 4, [19], [5])


def test_entry_point_prints_one_sentence_for_a_missing_rom(tmp_path):
  proc = subprocess.run(
      [sys.executable, '-m', 'experiments.inspect_state', f'--rom={tmp_path}/missing.gb'],
      capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)), check=False)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1] == (
      f"error: ROM file '{tmp_path}/missing.gb' does not exist; expected a Game Boy ROM (.gb) file.")
  assert 'Traceback' not in proc.stderr


@pytest.fixture(scope='module')
def tinymon_cache(tmp_path_factory):
  """A fresh start-state cache for the module: the tinymon start is generated once, here."""
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv('DREAMER_JAX_CACHE', str(tmp_path_factory.mktemp('cache')))
    yield


def test_tinymon_starts_in_leaf_town(tinymon_cache):
  env = gb_env.GameBoyEnv()
  obs, info = env.reset()
  st = info['state']
  assert (st['map_name'], st['party_count'], st['party_levels'], st['money']) == (
      'LEAF TOWN', 1, [6], 3000)
  assert (st['in_battle'], st['dialog_open'], st['badges']) == (0, False, 0)
  assert len(np.unique(obs['frame'])) > 1  # A drawn overworld, not a blank screen.
  env.close()


def test_frame_shades_follow_the_palette_after_steps_and_loads(tinymon_cache):
  env = gb_env.GameBoyEnv()
  env.reset()
  saved = env.save_state()
  for action in (emulator_lib.UP, emulator_lib.RIGHT, emulator_lib.START):
    env.step(action)
  env.load_state(saved)
  for _ in range(2):
    obs = env.step(emulator_lib.NOOP)[0]
    red = env.emulator.rgba()[:, :, 0]
    expected = np.full(red.shape, 255, np.uint8)
    for shade, color in enumerate(emulator_lib.PALETTE):
      expected[red == color >> 16] = shade
    np.testing.assert_array_equal(obs['frame'], expected)
  env.close()


def test_tinymon_moves_one_cell_per_press(tinymon_cache):
  env = gb_env.GameBoyEnv()
  moved = 0
  for action, (dx, dy) in zip(range(4), [(0, 1), (-1, 0), (1, 0), (0, -1)]):
    _, info = env.reset()
    x, y = info['state']['x'], info['state']['y']
    _, reward, _, _, info = env.step(action)
    nx, ny = info['state']['x'], info['state']['y']
    assert (nx, ny) in ((x, y), (x + dx, y + dy))
    if (nx, ny) != (x, y):
      moved += 1
      assert info['reward_terms']['no_progress'] == 0.0 and reward == 0.0  # A new tile.
  assert moved >= 1
  env.close()


def test_tinymon_is_deterministic(tinymon_cache):
  actions = [0, 3, 2, 2, 1, 6, 7, 4, 5, 3, 3, 0, 7, 2] * 3

  def run(env):
    env.reset()
    out = [env.step(a) for a in actions]
    return np.stack([o[0]['frame'] for o in out]), [o[1] for o in out]

  env = gb_env.GameBoyEnv()
  frames, rewards_a = run(env)
  frames2, rewards_b = run(env)
  other = gym.make('dreamer_jax/Tinymon-v0')
  frames3, rewards_c = run(other.unwrapped)
  np.testing.assert_array_equal(frames, frames2)
  np.testing.assert_array_equal(frames, frames3)
  assert rewards_a == rewards_b == rewards_c
  assert len({f.tobytes() for f in frames}) > 1
  env.close()
  other.close()


def test_tinymon_rewards_from_bytes_written_into_pyboy(tinymon_cache):
  env = gb_env.GameBoyEnv()
  env.reset()
  mem = env.emulator.memory
  mem[rm.OBTAINED_BADGES] = 0b1
  owned = [n for n in range(1, 152) if rm.dex_flag(mem, rm.POKEDEX_OWNED, n)]
  new = min(set(range(1, 152)) - set(owned))
  gt.set_dex(mem, rm.POKEDEX_OWNED, owned + [new])
  exp = rm.read_u24(mem, rm.party_mon_address(0, rm.MON_EXP))
  gt.put_u24(mem, rm.party_mon_address(0, rm.MON_EXP), exp + 40)
  hp = rm.read_u16(mem, rm.party_mon_address(0, rm.MON_HP))
  gt.put_u16(mem, rm.party_mon_address(0, rm.MON_HP), hp - 3)
  _, reward, _, _, info = env.step(emulator_lib.NOOP)
  w = rewards.DEFAULT_WEIGHTS
  assert info['reward_terms'] == pytest.approx(dict(
      badge=w['badge'], new_species=w['new_species'], new_map=0.0, battle_won=0.0,
      xp=40 * w['xp'], hp_lost=-3 * w['hp_lost'], no_progress=0.0))
  assert info['state']['badges'] == 1 and info['state']['pokedex_owned'] == len(owned) + 1
  env.close()


def test_tinymon_battle_won_only_when_the_enemy_fainted(tinymon_cache):
  # The scripted expert plays; tinymon itself is the oracle: experience is only given when an enemy
  # faints, a catch sets a dex bit, and a lost battle passes through 0xFF.
  from dreamer_jax.tinymon import world as tinymon_world  # pylint: disable=g-import-not-at-top
  from dreamer_jax.tinymon.expert import ScriptedExpert  # pylint: disable=g-import-not-at-top
  env = gb_env.GameBoyEnv()
  env.reset()
  expert = ScriptedExpert(tinymon_world.load_world())
  mem = env.emulator.memory
  battles, current = [], None
  for _ in range(400):
    _, _, _, _, info = env.step(expert.act(mem))
    st, terms = info['state'], info['reward_terms']
    if st['in_battle'] in (1, 2, 0xFF):
      if current is None:
        current = dict(xp=0.0, lost=False, owned=st['pokedex_owned'])
      current['xp'] += terms['xp']
      current['lost'] |= st['in_battle'] == 0xFF
      assert terms['battle_won'] == 0.0
    elif current is not None:
      current.update(xp=current['xp'] + terms['xp'], won=terms['battle_won'],
                     caught=st['pokedex_owned'] > current['owned'])
      battles.append(current)
      current = None
  assert len(battles) >= 3
  for b in battles:
    assert b['won'] == (rewards.DEFAULT_WEIGHTS['battle_won'] if b['xp'] > 0 and not b['lost']
                        else 0.0), b
  assert any(b['won'] for b in battles) and any(b['caught'] and not b['won'] for b in battles)
  env.close()


def test_tinymon_menu_cursor_and_phase_reach_the_ram_vector(tinymon_cache):
  # System 1 must see the battle menu's cursor (a clone without it never leaves FIGHT): the one-hot
  # cursor and the phase flags follow tinymon's bytes through a real battle, cursor moves included.
  from dreamer_jax.envs.features import RAM_FEATURE_NAMES  # pylint: disable=g-import-not-at-top
  from dreamer_jax.tinymon import world as tinymon_world  # pylint: disable=g-import-not-at-top
  from dreamer_jax.tinymon.expert import ScriptedExpert  # pylint: disable=g-import-not-at-top
  env = gb_env.GameBoyEnv()
  env.reset()
  expert = ScriptedExpert(tinymon_world.load_world())
  mem = env.emulator.memory
  cursor = [RAM_FEATURE_NAMES.index(f'menu_cursor_{i}') for i in range(4)]
  message, menu = RAM_FEATURE_NAMES.index('battle_message'), RAM_FEATURE_NAMES.index('battle_menu')
  seen_cursor, seen_phase = set(), set()
  for _ in range(400):
    obs, *_ = env.step(expert.act(mem))
    ram = obs['ram']
    assert ram[cursor].sum() == 1.0 and ram[cursor].argmax() == min(mem[rm.TINYMON_BATTLE_CURSOR], 3)
    assert ram[message] == float(mem[rm.TINYMON_BATTLE_PHASE] == 1)
    assert ram[menu] == float(mem[rm.TINYMON_BATTLE_PHASE] == 2)
    if mem[rm.TINYMON_BATTLE_PHASE] == 2:
      seen_cursor.add(int(ram[cursor].argmax()))
    seen_phase.add(int(mem[rm.TINYMON_BATTLE_PHASE]))
  assert {1, 2} <= seen_phase and len(seen_cursor) >= 2, (seen_phase, seen_cursor)
  env.close()


def test_tinymon_enemy_new_and_balls_reach_the_ram_vector(tinymon_cache):
  # The expert throws a ball exactly at a wild species it does not own while it has balls: both
  # must be in System 1's input, read from tinymon's bytes, through real battles.
  from dreamer_jax.envs.features import RAM_FEATURE_NAMES  # pylint: disable=g-import-not-at-top
  from dreamer_jax.tinymon import world as tinymon_world  # pylint: disable=g-import-not-at-top
  from dreamer_jax.tinymon.expert import ScriptedExpert  # pylint: disable=g-import-not-at-top
  env = gb_env.GameBoyEnv()
  env.reset()
  expert = ScriptedExpert(tinymon_world.load_world())
  mem = env.emulator.memory
  new, balls = RAM_FEATURE_NAMES.index('enemy_new'), RAM_FEATURE_NAMES.index('balls')
  seen_new, seen_owned = 0, 0
  for _ in range(600):
    obs, *_ = env.step(expert.act(mem))
    ram = obs['ram']
    assert ram[balls] == min(mem[rm.TINYMON_BALL_COUNT], 10) / 10.0
    wild = mem[rm.IS_IN_BATTLE] == rm.BATTLE_WILD
    owned = rm.dex_flag(mem, rm.POKEDEX_OWNED, mem[rm.TINYMON_ENEMY_SPECIES])
    assert ram[new] == float(wild and not owned)
    seen_new += wild and not owned
    seen_owned += wild and owned
  assert seen_new and seen_owned, (seen_new, seen_owned)
  env.close()


def test_pokered_balls_are_counted_from_the_bag():
  from dreamer_jax.envs import games  # pylint: disable=g-import-not-at-top
  from dreamer_jax.envs import state as state_lib  # pylint: disable=g-import-not-at-top
  mem = np.zeros(0x10000, np.uint8)
  mem[rm.NUM_BAG_ITEMS] = 3
  mem[rm.BAG_ITEMS:rm.BAG_ITEMS + 7] = [0x04, 5, 0x14, 9, 0x02, 2, 0xFF]   # Poké x5, Potion, Ultra x2.
  mem[rm.IS_IN_BATTLE] = rm.BATTLE_WILD
  snap = state_lib.read_snapshot(mem, games.get_game('pokered'))
  assert snap.balls == 7
  assert not snap.enemy_new   # Pokémon Red's enemy species is an internal index: not read.
  assert state_lib.read_snapshot(mem).balls == 0   # No game spec: the field reads 0.


def test_pokered_menu_cursor_is_wcurrentmenuitem(idle):
  env = _env(idle)
  env.reset()
  env.emulator.memory[rm.CURRENT_MENU_ITEM] = 2
  env.emulator.memory[rm.TINYMON_BATTLE_PHASE] = 2   # Not Pokémon Red's byte: the phase stays 0.
  obs, *_ = env.step(emulator_lib.NOOP)
  from dreamer_jax.envs.features import RAM_FEATURE_NAMES  # pylint: disable=g-import-not-at-top
  names = dict(zip(RAM_FEATURE_NAMES, obs['ram']))
  assert [names[f'menu_cursor_{i}'] for i in range(4)] == [0.0, 0.0, 1.0, 0.0]
  assert names['battle_message'] == names['battle_menu'] == 0.0
  env.close()

"""Demonstrations: the collect_demos entry point, and how a human's buttons become actions."""

import io
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from dreamer_jax.envs import demos
from dreamer_jax.envs import emulator as emulator_lib
from dreamer_jax.envs import gb_env
from dreamer_jax.envs import replay as replay_lib
from dreamer_jax.errors import UserError
from dreamer_jax.planner import goals

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_collect_demos_random_writes_a_readable_replay(tmp_path):
  out = tmp_path / 'demos'
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.collect_demos', '--policy', 'random', '--episodes', '2',
       '--max_steps', '5', '--out', str(out)],
      cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 0, result.stderr
  assert 'recorded 2 episodes, 12 steps' in result.stdout
  episodes = list(replay_lib.Replay(out).episodes())
  assert len(episodes) == 2
  for episode in episodes:
    assert episode['frame'].shape == (6, 144, 160) and episode['frame'].max() <= 3
    assert episode['ram'].shape == (6, gb_env.RAM_FEATURES)
    assert episode['is_first'][0] and episode['is_last'][-1] and not episode['is_last'][:-1].any()
    assert ((0 <= episode['action']) & (episode['action'] < 8)).all()


@pytest.mark.parametrize('args,message', [
    (['--policy', 'random', '--episodes', '0'],
     'error: --episodes (0) and --max_steps (None) must be positive.'),
    (['--policy', 'explore', '--epsilon', '1.5'],
     'error: --epsilon is 1.5; expected a probability in [0, 1].'),
])
def test_bad_arguments_end_in_one_sentence(tmp_path, args, message):
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.collect_demos', *args, '--out', str(tmp_path)],
      cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  assert result.stderr.strip() == message


def _headless_pyboy(rom):
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    from pyboy import PyBoy  # pylint: disable=g-import-not-at-top
    return PyBoy(io.BytesIO(rom.data), window='null', sound_emulated=False, log_level='ERROR',
                 cgb=False)


def test_held_buttons_reads_the_joypad_without_disturbing_it():
  emulator = emulator_lib.Emulator()
  pyboy = emulator.pyboy
  pyboy.tick(60, False)
  assert not demos.held_buttons(emulator.memory).any()
  for name in ('up', 'b'):
    pyboy.button_press(name)
  pyboy.tick(1, False)
  before = emulator.memory[0xFF00]
  held = demos.held_buttons(emulator.memory)
  assert emulator.memory[0xFF00] == before
  np.testing.assert_array_equal(
      np.flatnonzero(held), [emulator_lib.ACTIONS.index('up'), emulator_lib.ACTIONS.index('b')])
  emulator.close()


def test_a_person_s_held_button_is_recorded_as_the_step_action():
  env = gb_env.GameBoyEnv()
  human = demos.attach_human(env, _headless_pyboy(env.rom))
  facing_left = gb_env.RAM_FEATURE_NAMES.index('facing_left')
  env.reset()
  human.take_action()
  obs, *_ = env.step(emulator_lib.NOOP)
  assert human.take_action() == emulator_lib.NOOP and obs['ram'][facing_left] == 0
  # The person holds LEFT for the whole step and taps A for one frame: LEFT was held longest, and
  # the game itself saw LEFT (the player turned).
  human.button_press('left')
  human.button('a', 1)
  obs, *_ = env.step(emulator_lib.NOOP)
  assert human.take_action() == emulator_lib.LEFT
  assert obs['ram'][facing_left] == 1
  env.close()


class _ScriptedPerson:
  """A headless PyBoy standing in for a person's window: holds buttons over frame ranges, then is
  closed at `close_frame` (tick returns False, as PyBoy's does when its window is closed)."""

  def __init__(self, pyboy, holds, close_frame):
    self._pyboy, self._holds, self._close, self.frame = pyboy, holds, close_frame, 0

  def tick(self, count=1, render=True, sound=True):
    for _ in range(count):
      self.frame += 1
      if self.frame >= self._close:
        return False
      for name, (first, last) in self._holds.items():
        if self.frame == first:
          self._pyboy.button_press(name)
        elif self.frame == last + 1:
          self._pyboy.button_release(name)
      self._pyboy.tick(1, render, sound)
    return True

  def __getattr__(self, name):
    return getattr(self._pyboy, name)


def test_human_demos_label_each_step_with_the_person_s_button(tmp_path, monkeypatch):
  # 24 frames a step: LEFT held through steps 1-2, A through step 3, nothing in step 4, the window
  # closed in step 5.
  holds = {'left': (1, 30), 'a': (49, 72)}
  monkeypatch.setattr(demos, 'open_window',
                      lambda rom: _ScriptedPerson(_headless_pyboy(rom), holds, close_frame=100))
  result = demos.record('human', 3, str(tmp_path / 'me'), progress=False)
  assert result['episodes'] == 1     # Closing the window ends the recording.
  episode = next(replay_lib.Replay(tmp_path / 'me').episodes())
  action, label = episode['action'], episode['expert_action']
  assert list(action[:4]) == [emulator_lib.LEFT, emulator_lib.LEFT, emulator_lib.A,
                              emulator_lib.NOOP]
  # The person's button is the behaviour-cloning label of every step that has an action.
  np.testing.assert_array_equal(label[:-1], action[:-1])
  assert label[-1] == -1
  # Each step's goal is the one Red's offline System 2 would set (out of battle here: 'explore'),
  # so behaviour cloning keeps the steps: it drops those without a goal.
  explore = goals.GOAL_KINDS.index('explore')
  np.testing.assert_array_equal(episode['goal'][:-1], [[explore, -1, -1, -1]] * (len(action) - 1))
  assert replay_lib.Replay(tmp_path / 'me').labelled_steps() == len(action) - 1


def test_expert_demos_replay_exactly_in_a_fresh_env(tmp_path):
  result = demos.record('expert', 1, tmp_path, max_steps=40, progress=False)
  assert result['episodes'] == 1 and result['steps'] == 41
  (episode,) = replay_lib.Replay(tmp_path).episodes()
  assert (episode['action'][:-1] != emulator_lib.NOOP).any()
  # Behaviour cloning relies on it: the recorded actions, replayed in the env, give the frames.
  env = gb_env.GameBoyEnv()
  obs, _ = env.reset()
  np.testing.assert_array_equal(obs['frame'], episode['frame'][0])
  for t, action in enumerate(episode['action'][:-1]):
    obs, reward, *_ = env.step(action)
    np.testing.assert_array_equal(obs['frame'], episode['frame'][t + 1])
    np.testing.assert_array_equal(replay_lib.stored_ram(obs['ram']), episode['ram'][t + 1])
    assert reward == episode['reward'][t + 1]
  env.close()


def test_expert_episodes_are_different_playthroughs(tmp_path):
  # Behaviour cloning needs varied demonstrations: episode i plays with expert seed `seed + i`.
  demos.record('expert', 2, tmp_path, max_steps=300, progress=False)
  first, second = replay_lib.Replay(tmp_path).episodes()
  assert len(first['action']) == len(second['action']) == 301
  assert (first['action'] != second['action']).any()


def test_explore_is_the_expert_with_random_actions(tmp_path):
  # The world model needs coverage beyond the expert's routes: 'explore' replaces a share of the
  # expert's actions with random ones; with epsilon 0 it is exactly the expert.
  for name, policy, epsilon in (('expert', 'expert', 0.25), ('eps0', 'explore', 0.0),
                                ('eps5', 'explore', 0.5)):
    demos.record(policy, 1, tmp_path / name, max_steps=200, progress=False, epsilon=epsilon)
  read = lambda name: next(replay_lib.Replay(tmp_path / name).episodes())['action']
  expert, eps0, eps5 = read('expert'), read('eps0'), read('eps5')
  np.testing.assert_array_equal(expert, eps0)
  assert len(eps5) == 201 and (eps5 != expert).mean() > 0.2



def test_planner_demos_store_goals_and_the_controllers_labels(tmp_path):
  from configs import v3  # pylint: disable=g-import-not-at-top
  from dreamer_jax.planner.goals import GOAL_KINDS  # pylint: disable=g-import-not-at-top
  from dreamer_jax.tinymon import world as tinymon_world  # pylint: disable=g-import-not-at-top
  config = v3.get_config()
  out = tmp_path / 'bc'
  demos.record('planner', 1, str(out), config.env, config.reward, max_steps=60, epsilon=0.5,
               planner_config=config.planner, progress=False)
  episode = next(replay_lib.Replay(out).episodes())
  label, action, goal = episode['expert_action'], episode['action'], episode['goal']
  # Every step but the last carries the controller's choice and the goal it pursued.
  assert (label[:-1] >= 0).all() and label[-1] == -1 and (goal[-1] == -1).all()
  assert ((0 <= goal[:-1, 0]) & (goal[:-1, 0] < len(GOAL_KINDS))).all()
  maps = set(tinymon_world.load_world().map_names)
  assert all(m in maps for m in goal[:-1, 1] if m >= 0)
  # With ε = 0.5 the executed action often differs from the label; the label is never the noise.
  assert 0.15 < (label[:-1] != action[:-1]).mean() < 0.8
  # A bad share of species left to catch goals is one sentence naming the config field; nothing is
  # added to the replay.
  before = len(replay_lib.Replay(out))
  with pytest.raises(UserError, match=r'^config.dreamer.demo_skip_catch is 1.5; expected a share '
                     r'in \[0, 1\]\.$'):
    demos.record('planner', 1, str(out), config.env, config.reward, max_steps=60,
                 planner_config=config.planner, progress=False, skip_catch=1.5)
  assert len(replay_lib.Replay(out)) == before > 0


def test_replays_without_labels_still_open_with_no_labels(tmp_path):
  out = tmp_path / 'old'
  demos.record('random', 1, str(out), max_steps=5, progress=False)
  # A chunk as written before labels existed: the same arrays without expert_action and goal.
  (path,) = [os.path.join(out, n) for n in os.listdir(out)]
  with np.load(path) as data:
    old = {k: data[k] for k in data.files if k not in replay_lib.LABEL_KEYS}
  with open(path, 'wb') as f:
    np.savez(f, **old)
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    episode = next(replay_lib.Replay(out).episodes())
  assert len(episode['action']) == 6
  assert (episode['expert_action'] == -1).all() and (episode['goal'] == -1).all()
  # The random player knows no expert: its new recordings carry no labels either.
  demos.record('random', 1, str(out), max_steps=3, progress=False)
  batch = replay_lib.Replay(out).sample(2, 3, np.random.default_rng(0))
  assert batch['goal'].shape == (2, 3, 4) and (batch['expert_action'] == -1).all()

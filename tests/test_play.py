"""experiments.play as a user runs it: a window under Xvfb in agent mode and in --dream mode, driven
by scripted keys through the window's event queue and screenshotted; --record headless; and the
mistakes that end in one sentence (no checkpoint, no display, a bad ROM or state, a bad extension).

The workdir holds a small (configs/v3.py:small) world model and System 1 actor at their initial
weights, written with the training loops' own checkpoint code: these tests check the window, the
keys and the files, not what the networks learned, and training would add a minute of compiling.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from configs import v3
from dreamer_jax.agent import learner
from dreamer_jax.agent import train as agent_train
from dreamer_jax.envs.emulator import NUM_ACTIONS
from dreamer_jax.envs.features import RAM_FEATURES
from dreamer_jax.errors import UserError
from dreamer_jax.play import session as session_lib
from dreamer_jax.play import view
from dreamer_jax.world_model import model as model_lib
from dreamer_jax.world_model import train as wm_train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XVFB = '/usr/bin/Xvfb'
SHADES = {tuple(c) for c in view.SHADES_RGB.tolist()}


@pytest.fixture(scope='module')
def workdirs(tmp_path_factory):
  """(a workdir with a world model and an agent, one with the world model only)."""
  root = tmp_path_factory.mktemp('play')
  config = v3.get_config('small')
  wm = model_lib.from_config(config.world_model)
  state = wm_train.create_state(wm, wm_train.make_optimizer(config.world_model),
                                jax.random.PRNGKey(0), RAM_FEATURES)
  ckpt = wm_train.Checkpoints(root / 'wm_only')
  ckpt.save(0, state, dict(config=config.to_dict(), ram_size=RAM_FEATURES,
                           replay_dir=str(root / 'replay')))
  ckpt.close()
  shutil.copytree(root / 'wm_only', root / 'agent')
  actor, critic = learner.networks_from_config(config.agent, NUM_ACTIONS)
  agent = learner.create_state(actor, critic, config.agent, wm.deter + wm.stoch * wm.classes,
                               jax.random.PRNGKey(1))
  agent.update({c: jnp.zeros((), jnp.int32) for c in agent_train.COUNTERS})
  ckpt = wm_train.Checkpoints(root / 'agent' / 'agent')
  ckpt.save(0, agent, dict(config=config.to_dict(), world_model_workdir=str(root / 'agent')))
  ckpt.close()
  return root / 'agent', root / 'wm_only'


@pytest.fixture(scope='module')
def compile_cache(tmp_path_factory):
  """A persistent XLA cache shared by this module's subprocesses: each compiles the same networks."""
  return str(tmp_path_factory.mktemp('xla_cache'))


@pytest.fixture(scope='module')
def display():
  """An Xvfb display for the module; its DISPLAY value."""
  if not os.path.exists(XVFB):
    pytest.skip(f'{XVFB} is not installed (apt-get install xvfb): the window cannot be tested')
  for number in range(90, 120):
    if not os.path.exists(f'/tmp/.X11-unix/X{number}') and not os.path.exists(f'/tmp/.X{number}-lock'):
      break
  proc = subprocess.Popen([XVFB, f':{number}', '-screen', '0', '1280x800x24', '-nolisten', 'tcp'],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 20
  while not os.path.exists(f'/tmp/.X11-unix/X{number}'):
    assert proc.poll() is None and time.monotonic() < deadline, 'Xvfb did not start'
    time.sleep(0.05)
  yield f':{number}'
  proc.terminate()
  proc.wait(10)


def play(cache, *args, display_value=None, video_driver=None):
  """Runs `python -m experiments.play ARGS`; the display is `display_value` or none at all."""
  env = {k: v for k, v in os.environ.items()
         if k not in ('DISPLAY', 'WAYLAND_DISPLAY', 'SDL_VIDEODRIVER')}
  env.update(JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='-1')
  if display_value:
    env['DISPLAY'] = display_value
  if video_driver:
    env['SDL_VIDEODRIVER'] = video_driver
  return subprocess.run([sys.executable, '-m', 'experiments.play', *map(str, args)], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=120, check=False)


def summary(proc):
  assert proc.returncode == 0, f'exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}'
  return json.loads(proc.stdout)


def colours(picture, box):
  x, y, w, h = box
  region = np.asarray(picture.convert('RGB'))[y:y + h, x:x + w].reshape(-1, 3)
  return {tuple(c) for c in np.unique(region, axis=0).tolist()}


def assert_frames_drawn(picture, forecast_steps=4):
  """The game region shows a Game Boy frame and every forecast box an imagined one."""
  lay = view.layout(forecast_steps)
  assert picture.size == lay.size
  game = colours(picture, lay.game)
  assert len(game) >= 3 and game <= SHADES, game       # A real screen: >= 3 of the 4 DMG shades.
  for box in lay.thumbs:
    drawn = colours(picture, box)
    assert drawn <= SHADES and view.BACKGROUND not in drawn, drawn


def by_key(events):
  return {e['key']: e for e in events}


def test_agent_mode_window(workdirs, compile_cache, display, tmp_path):
  shot = tmp_path / 'agent.png'
  # Frames (display frames, one agent step each at --speed max): take over, pause for 20 frames,
  # resume, show the dream, back to the real game.
  proc = play(compile_cache, '--workdir', workdirs[0], '--steps', 12, '--speed', 'max',
              '--keys', '3:TAB,4:LEFT,5:P,25:P,27:D,29:D', '--screenshot', shot, '--json',
              display_value=display)
  out = summary(proc)
  assert out['steps'] == 12 and out['has_agent'] and out['game'] == 'tinymon'
  events = out['events']
  assert [e['key'] for e in events] == ['TAB', 'P', 'P', 'D', 'D']
  assert events[0]['control'] == 'person' and out['control'] == 'person'
  assert events[1]['paused'] and not events[2]['paused']
  assert events[2]['frame'] - events[1]['frame'] >= 20
  assert events[1]['step'] == events[2]['step']          # No step while paused.
  assert events[3]['view'] == 'dream' and events[4]['view'] == 'real' == out['view']
  assert out['dream_steps'] == out['steps'] - events[3]['step']   # The dream ran beside the game.
  assert out['button_presses'] == 1
  assert_frames_drawn(Image.open(shot))


def test_dream_mode_window(workdirs, compile_cache, display, tmp_path):
  shot = tmp_path / 'dream.png'
  proc = play(compile_cache, '--workdir', workdirs[0], '--dream', '--steps', 8, '--speed', 'max',
              '--keys', '2:TAB,3:RIGHT,4:C,5:R,6:D,7:D', '--screenshot', shot, '--json',
              display_value=display)
  out = summary(proc)
  events = by_key(out['events'])
  assert out['view'] == 'dream' and events['TAB']['control'] == 'person'
  assert events['C']['context'] == 16                     # 8 -> 16.
  assert events['D']['view'] == 'dream'                   # The last D brought the dream back.
  # R restarted the dream at its step: it has run every step since.
  assert out['dream_steps'] == out['steps'] - events['R']['step']
  picture = Image.open(shot)
  lay = view.layout(4)
  dream = colours(picture, lay.game)
  assert dream <= SHADES and view.BACKGROUND not in dream   # The decoded frame in DMG shades.
  for box in lay.thumbs:
    assert view.BACKGROUND not in colours(picture, box)


def test_record_gif_headless(workdirs, compile_cache, tmp_path):
  gif = tmp_path / 'play.gif'
  out = summary(play(compile_cache, '--workdir', workdirs[1], '--record', gif, '--steps', 5,
                     '--json'))
  assert out['frames_written'] == 5 and not out['has_agent'] and out['control'] == 'person'
  assert any('random actions drive' in note for note in out['notes'])
  with Image.open(gif) as image:
    assert image.n_frames == 5 and image.size == view.layout(4).size
    image.seek(4)
    assert_frames_drawn(image)


def test_scripted_keys_parse_in_frame_order():
  assert session_lib.parse_keys('30:tab, 5:P,,10:LEFT') == [(5, 'P'), (10, 'LEFT'), (30, 'TAB')]
  assert session_lib.parse_keys('') == []
  for bad in ('TAB', 'x:P', '3:Q'):
    with pytest.raises(UserError, match='--keys item'):
      session_lib.parse_keys(bad)


def assert_one_sentence(proc, *words):
  assert proc.returncode == 2, f'exit {proc.returncode}\n{proc.stderr[-3000:]}'
  assert 'Traceback' not in proc.stderr, proc.stderr
  errors = [line for line in proc.stderr.splitlines() if line.startswith('error: ')]
  assert len(errors) == 1 and errors[0].endswith('.'), proc.stderr
  for word in words:
    assert word in errors[0], errors[0]


def test_mistakes_end_in_one_sentence(workdirs, compile_cache, tmp_path):
  bad_rom = tmp_path / 'bad.gb'
  bad_rom.write_bytes(b'not a Game Boy ROM' * 100)
  bad_state = tmp_path / 'bad.state'
  bad_state.write_bytes(b'not a state' * 10)
  work = workdirs[0]
  assert_one_sentence(play(compile_cache, '--workdir', tmp_path / 'nothing', '--headless',
                           '--steps', 1), 'no world-model checkpoint', 'nothing')
  assert not (tmp_path / 'nothing').exists()                # Nothing was created for the typo.
  # --steps 1: were a window opened somewhere invisible, the run would end (exit 0) and fail here.
  assert_one_sentence(play(compile_cache, '--workdir', work, '--steps', 1), 'no window can be opened',
                      '--record out.gif --steps N')
  assert_one_sentence(play(compile_cache, '--workdir', work, '--record', tmp_path / 'x.avi',
                           '--steps', 1), 'x.avi', '.gif')
  assert_one_sentence(play(compile_cache, '--workdir', work, '--headless', '--steps', 1,
                           '--rom', bad_rom), 'bad.gb')
  assert_one_sentence(play(compile_cache, '--workdir', work, '--headless', '--steps', 1,
                           '--state', bad_state), 'bad.state')

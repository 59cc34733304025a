"""The env benchmark: `python -m experiments.benchmark --suite env --json`.

On the config's game (tinymon by default), in one run: raw PyBoy frames/s (the env's tick calls and
nothing else), the same frames through `GameBoyEnv`, their ratio (target >= 0.9), collector steps/s
with 1, 2, config.collector.num_workers (0: one per core) and os.cpu_count() workers (save states
every config.collector.save_every steps), and the replay's bytes per stored step at
config.replay.chunk_size (target <= 6,000).
"""

import io
import os
import tempfile
import time
import warnings

from absl import logging
import numpy as np

from dreamer_jax.envs import collector as collector_lib
from dreamer_jax.envs import emulator as emulator_lib
from dreamer_jax.envs import replay as replay_lib
from dreamer_jax.envs import start_states

ENV_OVER_RAW_TARGET = 0.9
BYTES_PER_STEP_TARGET = 6000


def _raw_pyboy(rom):
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    from pyboy import PyBoy  # pylint: disable=g-import-not-at-top
    pyboy = PyBoy(io.BytesIO(rom.data), window='null', sound_emulated=False, no_input=True,
                  log_level='ERROR', cgb=False)
  pyboy.set_emulation_speed(0)
  return pyboy


def _raw_frames_per_s(pyboy, actions, frames_per_step, press_frames):
  """The env's tick calls alone: press, tick unrendered, release, tick rendering the last frame."""
  names = emulator_lib.ACTIONS
  start = time.perf_counter()
  for a in actions:
    if a != emulator_lib.NOOP:
      pyboy.button_press(names[a])
      pyboy.tick(press_frames, False, False)
      pyboy.button_release(names[a])
      pyboy.tick(frames_per_step - press_frames, True, False)
    else:
      pyboy.tick(frames_per_step, True, False)
  return len(actions) * frames_per_step / (time.perf_counter() - start)


def _env_frames_per_s(env, actions):
  start = time.perf_counter()
  for a in actions:
    env.step(a)
  return len(actions) * env.emulator.frames_per_step / (time.perf_counter() - start)


def _collector_steps_per_s(env_fn, num_workers, save_every, steps_per_worker, replay):
  """Steady-state lockstep steps/s over all workers, random policy, writing a real replay."""
  rng = np.random.default_rng(0)
  policy = lambda obs: rng.integers(0, emulator_lib.NUM_ACTIONS, size=len(obs['frame']))
  with collector_lib.Collector(env_fn, num_workers, replay, save_every=save_every) as collector:
    collector.collect(policy, 4 * num_workers)  # Warm-up: caches, first save states.
    return collector.collect(policy, steps_per_worker * num_workers)['steps_per_s']


def _bytes_per_step(replay):
  """Disk bytes per step over the replay's full chunks (the steady state; a last partial chunk
  carries the same per-file overhead over fewer steps)."""
  full = [i for i in replay.chunk_ids() if replay.chunk_length(i) == replay.chunk_size]
  ids = full or replay.chunk_ids()
  size = sum(os.path.getsize(replay_lib.chunk_path(replay.directory, i)) for i in ids)
  return size / sum(replay.chunk_length(i) for i in ids)


def run(config, quick=False):
  """Runs the env suite on `config` (env, reward, replay and collector sections); returns
  {figure: value}. `quick` shrinks every measurement."""
  steps = 200 if quick else 2000
  rounds = 1 if quick else 3
  env_fn = collector_lib.env_factory(config.env, config.reward)
  env = env_fn()
  fps, press = env.emulator.frames_per_step, env.emulator.press_frames
  start = start_states.start_state(env.rom, env.game, config.env.state_path)
  pyboy = _raw_pyboy(env.rom)
  actions = np.random.default_rng(0).integers(0, emulator_lib.NUM_ACTIONS, size=steps).tolist()
  raw, through_env = [], []
  # Alternating rounds, best of each: other processes on the machine slow both alike.
  for r in range(rounds):
    pyboy.load_state(io.BytesIO(start))
    raw.append(_raw_frames_per_s(pyboy, actions, fps, press))
    env.reset()
    through_env.append(_env_frames_per_s(env, actions))
    logging.info('round %d: raw %.0f frames/s, env %.0f frames/s', r, raw[-1], through_env[-1])
  pyboy.stop(save=False)
  env.close()
  results = dict(
      raw_pyboy_frames_per_s=max(raw), env_frames_per_s=max(through_env),
      env_over_raw=max(through_env) / max(raw), env_over_raw_target=ENV_OVER_RAW_TARGET,
      num_cpus=os.cpu_count())
  results['env_steps_per_s'] = results['env_frames_per_s'] / fps
  chunk_size = config.replay.chunk_size
  # With the 4 warm-up steps, at least one full chunk per worker (the bytes are measured on those).
  per_worker = max(chunk_size - 4, 252 if quick else 400)
  with tempfile.TemporaryDirectory() as tmp:
    for n in sorted({1, 2, collector_lib.resolve_workers(config.collector.num_workers),
                     os.cpu_count()}):
      replay = replay_lib.Replay(os.path.join(tmp, f'workers{n}'), chunk_size=chunk_size)
      rate = _collector_steps_per_s(env_fn, n, config.collector.save_every, per_worker, replay)
      results[f'collector_steps_per_s_{n}_workers'] = rate
      logging.info('%d workers: %.0f steps/s', n, rate)
    results['bytes_per_step'] = _bytes_per_step(replay)
  results['bytes_per_step_target'] = BYTES_PER_STEP_TARGET
  results['targets_met'] = bool(results['env_over_raw'] >= ENV_OVER_RAW_TARGET
                                and results['bytes_per_step'] <= BYTES_PER_STEP_TARGET)
  return results

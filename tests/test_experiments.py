"""Every entry point's command line runs once, as a user types it (`python -m experiments.NAME`), with
tiny arguments; the three benchmark suites run in their --quick mode and print the figures README
quotes; a user's mistake ends in one sentence with exit code 2.

One tiny replay and one workdir are shared by the module (collect_demos -> train_world_model ->
evaluate), so the world model is compiled twice (train, evaluate) and nothing else is.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dreamer_jax.envs import replay as replay_lib
from dreamer_jax.envs import rom as rom_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = '--config=configs/v3.py:small'

# The keys README's results table is read from (the benchmark rows), per suite.
README_KEYS = {
    'env': {'raw_pyboy_frames_per_s', 'env_over_raw', 'collector_steps_per_s_1_workers',
            'collector_steps_per_s_2_workers', 'bytes_per_step', 'targets_met'},
    'world_model': {'model_params', 'model_megabytes_f32', 'train_seconds_per_update', 'batch',
                    'sequence_length', 'image_size'},
    'agent': {'policy_hz', 'imagined_steps_per_s', 'agent_update_s', 'batch', 'horizon'},
    'replay': {'replay_peak_rss_mb', 'replay_peak_rss_mb_in_memory', 'replay_samples_per_s',
               'replay_samples_per_s_in_memory', 'replay_speed_over_in_memory', 'targets_met'},
    'planner': {'poll_us_offline', 'poll_us_llm_in_flight', 'llm_call_was_in_flight',
                'offline_propose_ms', 'play_badges', 'play_steps', 'play_steps_per_s'},
}


def run(module, *args, timeout=300):
  """Runs `python -m experiments.MODULE ARGS` from the repository root; returns the completed process.

  The environment is this process's: conftest's fake devices and the temporary start-state cache.
  """
  return subprocess.run([sys.executable, '-m', f'experiments.{module}', *map(str, args)], cwd=REPO,
                        capture_output=True, text=True, timeout=timeout, check=False)


def ok(proc):
  assert proc.returncode == 0, f'exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}'
  return proc.stdout


def assert_one_sentence(proc, *words):
  """Exit code 2, no traceback, and one `error: ...` line ending in a full stop naming `words`."""
  assert proc.returncode == 2, f'exit {proc.returncode}\n{proc.stderr[-3000:]}'
  assert 'Traceback' not in proc.stderr, proc.stderr
  errors = [line for line in proc.stderr.splitlines() if line.startswith('error: ')]
  assert len(errors) == 1 and errors[0].endswith('.'), proc.stderr
  for word in words:
    assert word in errors[0], errors[0]
  return errors[0]


@pytest.fixture(scope='module')
def demos(tmp_path_factory):
  """A tiny random-play replay, written by collect_demos through its capacity: 3 episodes of 41
  steps (123) into 96 steps of room, so its oldest chunk is evicted (config.replay.capacity is what
  the replay keeps)."""
  out = tmp_path_factory.mktemp('demos') / 'random'
  proc = run('collect_demos', '--policy', 'random', '--episodes', 3, '--max_steps', 40, '--out', out,
             SMALL, '--config.replay.capacity=96')
  return out, ok(proc)


@pytest.fixture(scope='module')
def workdir(demos, tmp_path_factory):
  path = tmp_path_factory.mktemp('wm')
  stdout = ok(run('train_world_model', SMALL, '--workdir', path, '--replay', demos[0], '--steps', 2))
  return path, stdout


def test_collect_demos_writes_a_replay_within_capacity(demos):
  out, stdout = demos
  assert 'recorded 3 episodes, 123 steps' in stdout
  assert 0 < len(replay_lib.Replay(out, chunk_size=32)) <= 96
  assert min(replay_lib.Replay(out, chunk_size=32).chunk_ids()) > 0  # The first chunk was evicted.


def test_train_world_model_then_evaluate(workdir, demos, tmp_path):
  path, stdout = workdir
  assert 'loss=' in stdout
  assert os.path.isdir(os.path.join(path, 'checkpoints'))
  png = tmp_path / 'drift.png'
  out = json.loads(ok(run('evaluate', '--workdir', path, '--replay', demos[0], '--windows', 2,
                          '--png', png)))
  assert isinstance(out, dict) and out
  assert png.is_file()


@pytest.mark.slow
def test_train_agent_then_evaluate_agent_only(workdir, demos):
  path, _ = workdir
  budgets = ['--config.agent.critic_warmup=0', '--config.agent.imagine_steps=2']
  stdout = ok(run('train_agent', SMALL, '--workdir', path, '--replay', demos[0], '--phase',
                  'imagine', *budgets))
  assert json.loads(stdout)['counters'] == dict(bc_steps=0, critic_steps=0, imagine_steps=2)
  out = json.loads(ok(run('evaluate', '--workdir', path, '--agent_only', '--episodes', 1,
                          '--max_steps', 5, '--fixed_length', '--json')))
  assert out['episodes'][0]['steps'] == 5 and out['random']['episodes'][0]['steps'] == 5
  assert {'badges', 'species_owned', 'mean_return', 'policy_hz', 'reached_target'} <= set(out)
  assert out['episodes'][0]['steps_to_target'] is None   # No badge in 5 steps.
  # Held-out accuracy needs labels: a replay without them is one sentence naming it.
  assert_one_sentence(run('evaluate', '--workdir', path, '--agent_only', '--episodes', 1,
                          '--max_steps', 2, '--replay', demos[0]), 'no expert labels', str(demos[0]))
  # Behaviour cloning on a replay without expert labels: one sentence naming the replay.
  assert_one_sentence(run('train_agent', SMALL, '--workdir', path, '--replay', demos[0], '--phase',
                          'bc'), 'no expert labels', str(demos[0]))


def test_expert():
  out = json.loads(ok(run('expert', '--json', '--max_steps', 30, '--noprogress')))
  assert out['steps'] == 30
  assert {'badges', 'species_owned', 'frames', 'won'} <= set(out)


def test_make_start_state_headless_then_inspect_state(tmp_path):
  state = tmp_path / 'start.state'
  stdout = ok(run('make_start_state', '--rom', rom_lib.TINYMON_ROM, '--out', state,
                  '--window', 'null', '--max_frames', 60))
  assert f'saved {state}' in stdout and state.is_file()
  out = json.loads(ok(run('inspect_state', '--rom', rom_lib.TINYMON_ROM, '--state', state,
                          '--steps', 1)))
  assert {'map_id', 'x', 'y', 'badges'} <= set(out)


def test_plan_offline():
  out = json.loads(ok(run('plan', '--backend', 'offline')))
  assert out['goal_spec']['kind'] and out['goal']
  assert np.isfinite(out['goal_embedding']).all()


# The world_model and agent suites (~1 minute each on 2 cores, mostly compiling) run outside the
# suite: `python -m experiments.benchmark --suite world_model --quick` prints the same keys.
@pytest.mark.parametrize('suite', ['env', 'planner', 'replay'])
def test_benchmark_quick_prints_readme_keys(suite):
  out = json.loads(ok(run('benchmark', '--suite', suite, '--json', '--quick')))
  assert README_KEYS[suite] <= set(out), README_KEYS[suite] - set(out)
  small = suite in ('world_model', 'agent')
  assert out['config'] == ('configs/v3.py:small' if small else 'configs/v3.py')


@pytest.mark.parametrize('module,args,words', [
    ('expert', ['--max_steps=many'], ['--max_steps']),
    ('benchmark', ['--suite=gpu'], ['--suite']),
    ('make_start_state', ['--rom', rom_lib.TINYMON_ROM, '--out', 'x.state', '--window', 'null'],
     ['--max_frames']),
    ('collect_demos', ['--policy', 'random'], ['--out']),
    ('inspect_state', ['--rom', 'no/such.gb'], ['no/such.gb']),
])
def test_bad_arguments_end_in_one_sentence(module, args, words):
  assert_one_sentence(run(module, *args), *words)


def test_evaluate_without_checkpoint_ends_in_one_sentence(tmp_path):
  assert_one_sentence(run('evaluate', '--workdir', tmp_path), 'checkpoint', str(tmp_path))


def test_evaluate_dream_prints_fidelity(workdir):
  # The tiny replay's episodes are 41 steps: after 4 observed steps the horizon falls to 10.
  out = json.loads(ok(run('evaluate', '--workdir', workdir[0], '--dream', '--windows', 2,
                          '--horizon', 200, '--json')))
  assert out['horizon'] == 10 and out['steps'] == [1, 10]
  for name in ('mode', 'sample'):
    assert set(out[name]['accuracy']) == {'1', '10'} and out[name]['map_right_steps_median'] >= 1
  assert out['goal']['met'] == {'mode': False, 'sample': False}

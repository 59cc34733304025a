"""experiments.dreamer end to end on the ':smoke' preset: a SIGKILL mid-run, the resume, the outputs,
damaged checkpoints, a changed model config.

One smoke run (~2 minutes on 2 CPU cores) serves every test: it is killed once its world model has
been checkpointed, then re-run to completion on the same workdir.
"""

import glob
import json
import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from configs import v3
from dreamer_jax import loop
from dreamer_jax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _chunks(workdir):
  return set(os.path.basename(p) for p in glob.glob(os.path.join(workdir, 'replay', '*.npz')))


def _progress(workdir):
  try:
    with open(os.path.join(workdir, 'progress.json')) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
  """The smoke run, SIGKILLed after its first world-model checkpoint and re-run to the end."""
  workdir = str(tmp_path_factory.mktemp('smoke') / 'run')
  cmd = [sys.executable, '-m', 'experiments.dreamer', '--config=configs/v3.py:smoke',
         f'--workdir={workdir}']
  # The resumed run compiles the same functions again: a persistent XLA cache shared by the two
  # processes spares it most of that.
  env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(tmp_path_factory.mktemp('xla_cache')),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='-1')
  first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  deadline = time.monotonic() + 600
  while _progress(workdir).get('wm_step', 0) < 12:   # The pre-training phase's checkpoint.
    assert first.poll() is None, first.stdout.read().decode()[-3000:]
    assert time.monotonic() < deadline, 'no world-model checkpoint within 10 minutes'
    time.sleep(0.2)
  first.send_signal(signal.SIGKILL)
  first.wait()
  killed = dict(progress=_progress(workdir), chunks=_chunks(workdir))
  second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert second.returncode == 0, second.stderr[-3000:]
  return dict(workdir=workdir, killed=killed, log=second.stderr,
              result=json.loads(second.stdout))


def test_a_killed_run_resumes_and_loses_no_chunk(smoke):
  killed = smoke['killed']
  assert killed['progress']['wm_step'] == 12 and killed['chunks']
  assert 'world model resumed at update 12' in smoke['log']
  assert 'demos' not in ' '.join(line for line in smoke['log'].splitlines() if 'phase ' in line)
  assert killed['chunks'] <= _chunks(smoke['workdir'])      # Every chunk written before the kill.
  done = _progress(smoke['workdir'])
  assert done['demos_done'] == killed['progress']['demos_done']   # Not recorded twice.
  assert done['cycle'] == 2 and done['env_steps'] == 64 and done['wm_step'] > 12
  # System 2's state, one per emulator, saved with the checkpoint the resumed sitting wrote.
  assert len(done['planners']) == 2 and all(p['goal_count'] >= 1 for p in done['planners'])
  assert 'planners' not in killed['progress']   # Killed before any collection.


def test_the_resumed_run_continues_the_sampler(smoke):
  # A run restored from the workdir draws from the saved sampler state, not a re-seeded stream.
  config = v3.get_config('smoke')
  run = loop._Run(config, smoke['workdir'])
  saved = _progress(smoke['workdir'])['wm_sampler']
  assert run.wm_rng.bit_generator.state == saved
  assert saved != np.random.default_rng(config.seed).bit_generator.state
  # The players of a resumed run start from System 2's saved state.
  run.open_replay()
  run.build()
  run.players = loop._Players(run)
  planners = _progress(smoke['workdir'])['planners']
  assert [p.state_dict() for p in run.players.planners] == planners
  run.close()


def test_the_run_leaves_logs_pictures_and_the_target_metrics(smoke):
  workdir, result = smoke['workdir'], smoke['result']
  for key in ('badges', 'species_owned', 'mean_return', 'episodes', 'bc', 'env_steps',
              'world_model_mb', 'wall_seconds', 'wm_updates'):
    assert key in result, key
  assert result['env_steps'] == 64 and len(result['episodes']) == 2   # Played at once.
  assert [e['steps'] for e in result['episodes']] == [40, 40] and result['bc']['episodes']
  assert 0 < result['world_model_mb'] < 100
  assert os.path.getsize(os.path.join(workdir, 'eval', 'final.gif')) > 1000
  assert os.path.getsize(os.path.join(workdir, 'eval', 'progress.png')) > 1000
  assert glob.glob(os.path.join(workdir, 'tb', 'events.out.tfevents.*'))
  phases = {json.loads(line)['phase'] for line in open(os.path.join(workdir, 'metrics.jsonl'))}
  assert {'world_model', 'bc_steps', 'critic_steps', 'imagine', 'loop', 'eval', 'system2'} <= phases
  system2 = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))
             if json.loads(line)['phase'] == 'system2']
  assert {'calls', 'failed', 'cost_usd', 'goals'} <= set(system2[-1]) and system2[-1]['goals'] >= 2
  # Every step carries its goal (the planner's demonstrations and the agent's own steps) except
  # the random play's 64 + 1 steps and the planner episode's last step (no action follows it).
  from dreamer_jax.envs.replay import Replay  # pylint: disable=g-import-not-at-top
  replay = Replay(os.path.join(workdir, 'replay'))
  goals = np.concatenate([replay.chunk(i)['goal'][:, 0] for i in replay.chunk_ids()])
  assert (goals < 0).sum() == 66 and len(goals) >= 64 + 65 + 100
  # Every phase done: a re-run prints the same evaluation without training again.
  again = loop.train_and_evaluate(v3.get_config('smoke'), workdir, progress=False)
  assert again['wall_seconds'] == result['wall_seconds']


def _damage(directory, step):
  for root, _, files in os.walk(os.path.join(directory, str(step), 'state')):
    for name in files:
      with open(os.path.join(root, name), 'wb') as f:
        f.write(b'garbage')


def test_damaged_checkpoints_fall_back_then_are_one_sentence(smoke, tmp_path, caplog):
  import shutil  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'copy')
  shutil.copytree(smoke['workdir'], workdir)
  config = v3.get_config('smoke')
  ckpts = os.path.join(workdir, 'checkpoints')
  steps = sorted(int(s) for s in os.listdir(ckpts) if s.isdigit())
  _damage(ckpts, steps[-1])
  run = loop._Run(config, workdir)
  run.open_replay()
  with caplog.at_level(logging.WARNING):
    run.build()
  assert run.wm_updates == steps[-2]
  assert f'falling back to checkpoint {steps[-2]}' in caplog.text
  run.close()
  for s in steps[:-1]:
    _damage(ckpts, s)
  run = loop._Run(config, workdir)
  run.open_replay()
  with pytest.raises(UserError, match=r'every checkpoint in .*checkpoints is damaged'):
    run.build()
  run.close()


def test_a_changed_model_or_a_damaged_progress_file_is_one_sentence(smoke, tmp_path):
  config = v3.get_config('smoke')
  config.world_model.deter = 32
  with pytest.raises(UserError, match=r'other model sizes: world_model.deter \(64 -> 32\)'):
    loop.check_config(config, smoke['workdir'])
  bad = tmp_path / 'bad'
  bad.mkdir()
  (bad / 'progress.json').write_text('{"cycle": ')
  with pytest.raises(UserError, match='progress file .* is unreadable'):
    loop._Run(v3.get_config('smoke'), str(bad))


def test_red_without_demonstrations_is_one_sentence(tmp_path):
  config = v3.get_config('smoke')
  config.env.game, config.env.rom_path = 'pokered', str(tmp_path / 'red.gb')
  with pytest.raises(UserError) as e:
    loop.train_and_evaluate(config, str(tmp_path / 'run'), progress=False)
  message = str(e.value)
  assert message.count('. ') == 0 and message.endswith('.'), message   # One sentence.
  assert "config.env.game='pokered'" in message and '--config.dreamer.demos=DIR' in message
  assert '--policy human' in message and not os.path.exists(tmp_path / 'run')


def test_evaluate_prints_the_target_metrics_of_the_workdir(smoke):
  # In process (experiments.evaluate calls exactly this for a workdir with progress.json).
  out = loop.evaluate_workdir(smoke['workdir'], episodes=1, max_steps=20, progress=False)
  for key in ('badges', 'species_owned', 'drift_50_tiles', 'world_model_mb', 'policy_hz',
              'env_steps', 'wall_seconds', 'episodes', 'bc', 'random'):
    assert key in out, key
  assert out['env_steps'] == 64 and len(out['episodes']) == 1 and out['episodes'][0]['steps'] == 20
  assert out['bc']['episodes'][0]['steps'] == 20 and out['policy_hz'] > 0
  from dreamer_jax.agent import evaluate as agent_evaluate  # pylint: disable=g-import-not-at-top
  acc = agent_evaluate.heldout_accuracy(smoke['workdir'], os.path.join(smoke['workdir'], 'replay'),
                                        batches=2)
  assert 0.0 <= acc['actor'] <= 1.0 and 0.0 <= acc['bc'] <= 1.0 and acc['steps'] > 100


def test_an_exported_workdir_is_smaller_and_plays(smoke, tmp_path):
  out = str(tmp_path / 'pretrained')
  proc = subprocess.run([sys.executable, '-m', 'experiments.export', f'--workdir={smoke["workdir"]}',
                         f'--out={out}'], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  shipped = json.loads(proc.stdout)
  checkpoints = lambda d: sum(os.path.getsize(os.path.join(r, f)) for sub in ('checkpoints', 'agent')
                              for r, _, fs in os.walk(os.path.join(d, sub)) for f in fs)
  assert shipped['bytes'] < checkpoints(smoke['workdir']) / 3   # One checkpoint, no optimisers, f16.
  from dreamer_jax.agent import evaluate as agent_evaluate  # pylint: disable=g-import-not-at-top
  from dreamer_jax.agent import train as agent_train  # pylint: disable=g-import-not-at-top
  played = agent_evaluate.run(out, episodes=1, max_steps=5, progress=False)
  assert played['episodes'][0]['steps'] == 5 and 'bc' in played
  # The exported networks are the trained ones, to half precision.
  _, wm, _, _, actor_params = agent_train.load_agent(smoke['workdir'])
  _, _, _, _, shipped_params = agent_train.load_agent(out)
  import jax  # pylint: disable=g-import-not-at-top
  for a, b in zip(jax.tree_util.tree_leaves(actor_params), jax.tree_util.tree_leaves(shipped_params)):
    assert b.dtype == np.float32
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-3, atol=1e-4)
  again = subprocess.run([sys.executable, '-m', 'experiments.export', f'--workdir={smoke["workdir"]}',
                          f'--out={out}'], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert again.returncode == 2 and 'is not empty' in again.stderr

"""World model end to end on a tiny synthetic replay: train, resume, open-loop drift, picture."""

import logging
import os

import jax
import numpy as np
import pytest

from configs import v3
from dreamer_jax.errors import UserError
from dreamer_jax.world_model import evaluate
from dreamer_jax.world_model import train
from tests import synthetic_replay


def _write_replay(directory, episodes=3, length=40):
  synthetic_replay.write(directory, episodes, length)
  return directory


def test_drift_metrics_by_hand():
  pred = dict(x=np.array([[1, 2], [5, 5]]), y=np.array([[0, 0], [5, 9]]),
              map_id=np.array([[3, 3], [3, 4]]))
  true = dict(x=np.array([[1, 3], [5, 6]]), y=np.array([[0, 2], [5, 5]]),
              map_id=np.array([[3, 3], [3, 3]]))
  last = dict(x=np.array([1, 5]), y=np.array([0, 5]))
  m = evaluate.drift_metrics(pred, true, np.array([True, False]), last)
  assert m['drift'] == 3.0                    # |2 - 3| + |0 - 2| on the one same-map window.
  assert m['drift_curve'] == [0.0, 3.0]
  assert m['hold_still_drift'] == 4.0         # |1 - 3| + |0 - 2|.
  assert m['hold_still_curve'] == [0.0, 4.0]
  assert m['map_mismatch_rate'] == 0.0 and m['map_mismatch_rate_all'] == 0.5


def test_train_resume_and_evaluate_end_to_end(tmp_path, caplog):
  replay_dir = _write_replay(str(tmp_path / 'replay'))
  workdir = str(tmp_path / 'wm')
  config = v3.get_config('small')
  config.world_model.checkpoint_every = 100   # Only the final and the budget's checkpoints.
  state, metrics = train.train(config, workdir, replay_dir, steps=2)
  assert int(state['step']) == 2 and np.isfinite(metrics['loss'])
  # Resumes at step 2 with a 1-minute budget on a fake clock: 0 s at the start, 30 s before update
  # 3 (time left: it runs and the loop goes on), 61 s before update 4 (spent: it still runs, then
  # the loop checkpoints and stops). A fourth reading (before an update 5) would raise IndexError.
  readings = [0.0, 30.0, 61.0]
  clock = lambda: readings.pop(0)
  state, _ = train.train(config, workdir, replay_dir, steps=50, minutes=1.0, clock=clock)
  assert int(state['step']) == 4 and not readings
  ckpt = train.Checkpoints(workdir)
  assert sorted(ckpt.manager.all_steps()) == [2, 4]  # 4 is the budget's save, not a periodic one.
  ckpt.close()
  # Stopped at 2 and resumed to 4 equals 4 straight: the resumed run drew batches 3 and 4 (the
  # sampler's state is saved beside each checkpoint), not the first run's 1 and 2 again.
  straight, _ = train.train(config, str(tmp_path / 'straight'), replay_dir, steps=4)
  for a, b in zip(jax.tree_util.tree_leaves(straight['params']),
                  jax.tree_util.tree_leaves(state['params'])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  result = evaluate.run(workdir, num_windows=4)
  wm = config.world_model
  assert result['step'] == 4 and result['horizon'] == wm.eval_horizon
  assert len(result['drift_curve']) == wm.eval_horizon
  assert 0 <= result['drift'] and 0 <= result['map_mismatch_rate'] <= 1
  # The headline follows the prior's most likely latent; the sampled rollout is reported beside it.
  assert result['latent'] == 'mode' and result['drift_sample'] >= 0
  assert 0 <= result['map_mismatch_rate_sample'] <= 1
  assert result['params'] > 0 and result['checkpoint_bytes'] > 4 * result['params']
  assert os.path.getsize(result['picture']) > 1000
  # A damaged newest checkpoint: named in the log, the one before it is restored; all damaged is
  # one sentence.
  _damage(workdir, 4)
  with caplog.at_level(logging.WARNING):
    *_, step = evaluate.load_trained(workdir)
  assert step == 2 and 'falling back to checkpoint 2' in caplog.text
  assert 'checkpoint 4' in caplog.text and 'unreadable' in caplog.text
  _damage(workdir, 2)
  with pytest.raises(UserError, match=r'every checkpoint in .* is damaged \(steps 4, 2\)'):
    evaluate.load_trained(workdir)


def test_missing_checkpoint_and_replay_are_user_errors(tmp_path):
  with pytest.raises(UserError, match='no checkpoint'):
    evaluate.run(str(tmp_path))
  with pytest.raises(UserError, match='holds 0 steps'):
    train.train(v3.get_config('small'), str(tmp_path / 'wm'), str(tmp_path / 'empty'), steps=1)


def _damage(workdir, step):
  for root, _, files in os.walk(os.path.join(workdir, 'checkpoints', str(step), 'state')):
    for name in files:
      with open(os.path.join(root, name), 'wb') as f:
        f.write(b'garbage')


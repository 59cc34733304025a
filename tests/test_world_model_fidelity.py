"""Dream fidelity: the figures by hand, windows that stay inside episodes, and the measurement end to
end on a tiny world model trained a few steps on a synthetic replay."""

import numpy as np
import pytest

from configs import v3
from dreamer_jax.errors import UserError
from dreamer_jax.world_model import fidelity
from dreamer_jax.world_model import train
from tests import synthetic_replay


def _write_replay(directory, episodes, length, streams=True):
  return synthetic_replay.write(directory, episodes, length, streams)


def test_first_mismatch_and_tally_by_hand():
  pred_map = np.array([[3, 3, 4, 3], [3, 3, 3, 3]])
  true_map = np.array([[3, 3, 3, 3], [3, 3, 3, 3]])
  np.testing.assert_array_equal(fidelity.first_mismatch(pred_map, true_map), [3, 4])
  tally = fidelity.Tally(steps=(1, 4), horizon=50)
  frames = np.zeros((2, 50, 2, 2), np.uint8)
  pred_frames = frames.copy()
  pred_frames[0, 0, 0, 0] = 1     # Step 1: 7 of 8 pixels right.
  pred_frames[:, 3] = 2           # Step 4: all wrong.
  xy = np.zeros((2, 50), np.int32)
  pred_x = xy.copy()
  pred_x[:, 49] = [2, 5]          # Step 50: 2 and 5 tiles off; only sequence 0 stayed on its map.
  same_map = np.ones((2, 50), bool)
  same_map[1, 30:] = False
  maps = np.full((2, 50), 3)
  pred_maps = maps.copy()
  pred_maps[0, 9] = 4             # Sequence 0's map is wrong at step 10; sequence 1's never.
  tally.add(dict(frame=pred_frames, probes=dict(map_id=pred_maps, x=pred_x, y=xy)), frames,
            dict(map_id=maps, x=xy, y=xy), same_map)
  out = tally.result()
  assert out['accuracy'] == {'1': 7 / 8, '4': 0.0}
  assert out['map_right_steps_median'] == (10 + 50) / 2
  assert out['map_right_whole_horizon'] == 0.5
  assert out['drift_tiles'] == {'50': 2.0} and out['drift_sequences'] == {'50': 1}


def test_windows_stay_inside_episodes(tmp_path):
  # One stream of 4 episodes of 30 steps: runs cross episode starts, windows must not.
  replay = _write_replay(str(tmp_path / 'one_stream'), episodes=4, length=30, streams=False)
  windows = fidelity.sample_windows(replay, 20, 16, np.random.default_rng(0))
  assert windows['frame'].shape == (16, 20, 144, 160)
  assert not windows['is_first'][:, 1:].any()   # A window may begin mid-episode, never cross one.
  # Longer than any episode: None (the caller shortens the horizon), however long the stream.
  assert fidelity.sample_windows(replay, 31, 4, np.random.default_rng(0)) is None
  assert fidelity.horizons(200) == [200, 100, 50, 10, 1]
  assert fidelity.horizons(30) == [30, 10, 1]


def test_fidelity_end_to_end_on_a_tiny_model(tmp_path):
  replay_dir = str(tmp_path / 'replay')
  _write_replay(replay_dir, episodes=3, length=70)
  workdir = str(tmp_path / 'wm')
  config = v3.get_config('small')
  train.train(config, workdir, replay_dir, steps=2)
  result = fidelity.run(workdir, num_sequences=4, context=4)
  # 4 + 50 steps fit in a 70-step episode, 4 + 100 do not: the report stops at step 50.
  assert result['horizon'] == 50 and result['steps'] == [1, 10, 50]
  assert result['context'] == 4 and result['sequences'] == 4 and result['step'] == 2
  for name in ('mode', 'sample'):
    r = result[name]
    assert set(r['accuracy']) == {'1', '10', '50'}
    assert all(0.0 <= v <= 1.0 for v in r['accuracy'].values())
    assert 1 <= r['map_right_steps_median'] <= 50
    # The synthetic task never changes map, so every sequence counts for the drift at 50.
    assert r['drift_sequences'] == {'50': 4} and r['drift_tiles']['50'] >= 0
  # Repeating the last frame gets most pixels right on a light screen with one small square.
  assert result['hold_still_accuracy']['1'] > 0.9
  assert result['goal']['map_right_steps'] == 200 and result['goal']['met'] == dict(
      mode=False, sample=False)   # The horizon is below 200 steps: the bar cannot be met.
  with pytest.raises(UserError, match='holds no episode of 71 steps'):
    fidelity.run(workdir, num_sequences=4, context=70)
  with pytest.raises(UserError, match='does not exist'):
    fidelity.run(workdir, replay_dir=str(tmp_path / 'nothing'))

"""The world model's input pipeline: which reward the reward head learns."""

import numpy as np
import pytest

from dreamer_jax.errors import UserError
from dreamer_jax.world_model import data


def test_reward_head_target_is_the_sum_of_the_chosen_terms():
  # Two steps with terms (badge, new_map, xp) = (10, 0.5, 0.02) and (0, 0.5, 0): the history-free
  # target keeps badge + xp: 10.02 and 0.
  raw = data.synthetic_batch(np.random.default_rng(0), 1, 2)
  raw['reward'] = np.array([[10.52, 0.5]], np.float32)
  raw['reward_terms'] = np.array([[[10.0, 0.5, 0.02], [0.0, 0.5, 0.0]]], np.float32)
  names = ('badge', 'new_map', 'xp')
  columns = data.reward_columns(names, ('badge', 'xp'))
  np.testing.assert_allclose(data.prepare_batch(raw, columns)['reward'], [[10.02, 0.0]], rtol=1e-6)
  np.testing.assert_allclose(data.prepare_batch(raw)['reward'], [[10.52, 0.5]], rtol=1e-6)
  assert data.reward_columns(names, ()) is None and data.reward_columns((), ('badge',)) is None
  with pytest.raises(UserError, match=r"reward_terms names \['gold'\]"):
    data.reward_columns(names, ('gold',))


def test_training_refuses_a_reward_term_the_replay_lacks(tmp_path):
  from configs import v3  # pylint: disable=g-import-not-at-top
  from dreamer_jax.envs import demos  # pylint: disable=g-import-not-at-top
  from dreamer_jax.world_model import train  # pylint: disable=g-import-not-at-top
  demos.record('random', 1, str(tmp_path / 'r'), max_steps=20, progress=False)
  config = v3.get_config('small')
  config.world_model.reward_terms = ('badge', 'gold')
  with pytest.raises(UserError, match=r"reward_terms names \['gold'\]"):
    train.train(config, str(tmp_path / 'wm'), str(tmp_path / 'r'), steps=1)

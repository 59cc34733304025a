"""The shipped agent (pretrained/tinymon) loads on a fresh clone and plays: what README promises."""

import os

import jax
import numpy as np

from dreamer_jax.agent import evaluate as agent_evaluate
from dreamer_jax.agent import train as agent_train
from dreamer_jax.envs.features import RAM_FEATURES
from dreamer_jax.world_model import train as wm_train

PRETRAINED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          'pretrained', 'tinymon')


def test_pretrained_tinymon_loads_and_plays():
  config, wm, _, _, actor_params = agent_train.load_agent(PRETRAINED)
  assert wm.deter + wm.stoch * wm.classes == 1536   # The seed's feature width.
  assert config.agent.goal_dim == config.planner.goal_embedding_dim
  assert all(x.dtype == np.float32 for x in jax.tree_util.tree_leaves(actor_params))
  ckpt = wm_train.Checkpoints(PRETRAINED)
  # Today's RAM layout or a prefix of it (the vector only grows at its end).
  assert ckpt.meta(ckpt.latest_step())['ram_size'] <= RAM_FEATURES
  ckpt.close()
  size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(PRETRAINED) for f in fs)
  assert size <= 60 * 2**20
  out = agent_evaluate.run(PRETRAINED, episodes=1, max_steps=30, progress=False, clone=False)
  assert out['episodes'][0]['steps'] == 30 and out['policy_hz'] > 0

"""experiments.train_agent's library loop on a tiny labelled tinymon replay: BC, critic warm-up and
imagination, checkpoints, resuming, and the user's mistakes in one sentence."""

import shutil

import jax
import numpy as np
import pytest

from configs import v3
from dreamer_jax.agent import train as agent_train
from dreamer_jax.envs import demos
from dreamer_jax.errors import UserError
from dreamer_jax.world_model import train as wm_train


def _config():
  config = v3.get_config('small')
  ag = config.agent
  ag.bc_steps, ag.critic_warmup, ag.imagine_steps, ag.log_every, ag.checkpoint_every = 3, 2, 3, 1, 2
  return config


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  root = tmp_path_factory.mktemp('agent')
  config = _config()
  demos.record('planner', 1, str(root / 'bc'), config.env, config.reward, max_steps=40,
               epsilon=0.25, planner_config=config.planner, progress=False, chunk_size=32)
  demos.record('random', 1, str(root / 'plain'), max_steps=40, progress=False, chunk_size=32)
  wm_train.train(config, str(root / 'wm'), str(root / 'bc'), steps=1)
  shutil.copytree(root / 'wm', root / 'wm_only')   # A world model with no agent yet.
  return root


def test_phases_run_checkpoint_and_resume(workdir):
  config = _config()
  state, metrics = agent_train.train(config, str(workdir / 'wm'), str(workdir / 'bc'),
                                     progress=False)
  assert metrics['counters'] == dict(bc_steps=3, critic_steps=2, imagine_steps=3)
  assert 0.0 <= metrics['bc_steps']['bc_accuracy'] <= 1.0
  assert np.isfinite(metrics['imagine_steps']['actor_loss'])
  # The clone was frozen when RL began: it differs from the actor after imagination updates.
  leaves = lambda tree: np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(tree)])
  assert not np.allclose(leaves(state['clone']), leaves(state['actor']))
  # Re-running resumes at the budgets' end: nothing more to do, the same actor.
  again, metrics = agent_train.train(config, str(workdir / 'wm'), str(workdir / 'bc'),
                                     progress=False)
  assert metrics['counters'] == dict(bc_steps=3, critic_steps=2, imagine_steps=3)
  np.testing.assert_array_equal(leaves(again['actor']), leaves(state['actor']))
  # A larger budget continues from the checkpoint.
  config.agent.imagine_steps = 4
  _, metrics = agent_train.train(config, str(workdir / 'wm'), str(workdir / 'bc'), progress=False)
  assert metrics['counters']['imagine_steps'] == 4
  _, wm, _, _, actor_params = agent_train.load_agent(str(workdir / 'wm'))
  assert wm.deter == config.world_model.deter and actor_params


@pytest.mark.parametrize('phase', ['bc', 'imagine'])
def test_data_parallel_agent_steps_match_one_device(workdir, phase):
  # The batch split over the two fake CPU devices (tests/conftest.py), the state replicated: the
  # same update as on one device, up to float reassociation in the gradient all-reduce.
  from dreamer_jax.agent import learner  # pylint: disable=g-import-not-at-top
  from dreamer_jax.envs.replay import Replay  # pylint: disable=g-import-not-at-top
  from dreamer_jax.world_model import evaluate as wm_evaluate  # pylint: disable=g-import-not-at-top
  assert len(jax.devices()) == 2, 'tests/conftest.py should give JAX two CPU devices'
  config = _config()
  ac = config.agent
  _, wm, wm_params, _, _ = wm_evaluate.load_trained(str(workdir / 'wm'))
  batch = agent_train.agent_batch(Replay(str(workdir / 'bc')).sample(
      int(ac.batch_size), int(ac.sequence_length), np.random.default_rng(0)))
  actor, critic = learner.networks_from_config(ac, wm.num_actions)
  make = lambda: learner.create_state(actor, critic, ac, wm.deter + wm.stoch * wm.classes,
                                      jax.random.PRNGKey(1))
  build = ((lambda mesh: learner.make_bc_step(wm, actor, ac, mesh)) if phase == 'bc' else
           (lambda mesh: learner.make_imagine_step(wm, actor, critic, ac, mesh=mesh)))
  single_state, single = build(None)(make(), wm_params, batch)
  mesh = wm_train.make_mesh()
  sharded_batch = wm_train.shard_batch(batch, mesh, 'agent.batch_size')
  assert sharded_batch['label'].sharding.shard_shape(batch['label'].shape)[0] == ac.batch_size // 2
  sharded_state, sharded = build(mesh)(make(), wm_params, sharded_batch)
  assert set(sharded_state['actor']['params']) and all(
      x.sharding.is_fully_replicated for x in jax.tree_util.tree_leaves(sharded_state))
  for key in single:
    np.testing.assert_allclose(float(sharded[key]), float(single[key]), rtol=1e-3, atol=1e-5,
                               err_msg=key)
  lr = ac.bc_lr if phase == 'bc' else max(ac.actor_lr, ac.critic_lr)
  for name in ('actor', 'critic'):
    for a, b in zip(jax.tree_util.tree_leaves(single_state[name]),
                    jax.tree_util.tree_leaves(sharded_state[name])):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=0.1 * lr, err_msg=name)


def test_an_agent_batch_not_divisible_by_devices_is_one_sentence(workdir):
  config = _config()
  config.agent.batch_size = 3
  with pytest.raises(UserError, match='agent.batch_size is 3; expected a multiple of the 2'):
    agent_train.train(config, str(workdir / 'wm'), str(workdir / 'bc'), progress=False)


def test_user_mistakes_end_in_one_sentence(workdir, tmp_path):
  config = _config()
  with pytest.raises(UserError, match='has no expert labels'):
    agent_train.train(config, str(workdir / 'wm'), str(workdir / 'plain'), phase='bc',
                      progress=False)
  with pytest.raises(UserError, match='no checkpoint'):
    agent_train.train(config, str(tmp_path / 'nothing'), str(workdir / 'bc'), progress=False)
  other = _config()
  other.world_model.deter = 32
  with pytest.raises(UserError, match=r'other world_model settings \(deter\)'):
    agent_train.train(other, str(workdir / 'wm'), str(workdir / 'bc'), progress=False)
  with pytest.raises(UserError, match="--phase 'rl'"):
    agent_train.train(config, str(workdir / 'wm'), str(workdir / 'bc'), phase='rl', progress=False)
  with pytest.raises(UserError, match='no agent checkpoint'):
    agent_train.load_agent(str(workdir / 'wm_only'))


def test_the_agent_evaluation_plays_a_game_without_world_data(tmp_path, monkeypatch):
  # An idling ROM read as Pokémon Red: no world data, so System 2 checks goals against Red's map
  # names and explores, and an episode ends at Red's 8 badges, not tinymon's 3.
  from dreamer_jax.agent import evaluate as agent_evaluate  # pylint: disable=g-import-not-at-top
  from dreamer_jax.envs import gb_env  # pylint: disable=g-import-not-at-top
  from dreamer_jax.envs import ram_map  # pylint: disable=g-import-not-at-top
  from dreamer_jax.envs import start_states  # pylint: disable=g-import-not-at-top
  from tests import gb_testing  # pylint: disable=g-import-not-at-top
  rom = gb_testing.make_rom(tmp_path / 'idle.gb')
  state = str(tmp_path / 'idle.state')
  start_states.play_and_save(rom, state, window='null', max_frames=60, allow_unknown_rom='pokered')
  config = _config()
  config.env.game, config.env.rom_path, config.env.state_path = 'pokered', rom, state
  config.env.allow_unknown_rom, config.planner.backend = 'pokered', 'offline'
  made, make = [], gb_env.GameBoyEnv.from_config
  monkeypatch.setattr(gb_env.GameBoyEnv, 'from_config',
                      lambda *a, **k: made.append(make(*a, **k)) or made[-1])
  goals = []

  def act(obs, goal_spec, first):
    del obs, first
    goals.append(goal_spec)
    badges = {2: 0b111, 4: 0xFF}.get(len(goals))   # 3 badges after step 2, all 8 after step 4.
    if badges is not None:
      made[-1].emulator.memory[ram_map.OBTAINED_BADGES] = badges
    return 0

  episodes = agent_evaluate.play(config, act, episodes=1, max_steps=10, progress=False)
  assert [e['steps'] for e in episodes] == [4] and episodes[0]['badges'] == 8
  assert goals[0] == {'kind': 'explore', 'map': None, 'x': None, 'y': None}

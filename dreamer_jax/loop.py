"""The dual agent end to end (`python -m experiments.dreamer`): `train_and_evaluate(config, workdir)`.

demos (the planner-driven expert, with and without action noise, plus random play) -> world model
-> behaviour cloning -> critic warm-up -> cycles of { collect real steps with System 1 (the actor)
and System 2 (the planner) in the collector's parallel emulators, world-model updates on the
growing replay, actor-critic updates in imagination } -> evaluation.

This is the one impure loop: replay, collectors, planners, checkpoints, logs and pictures. The
workdir is the other commands' layout, so experiments.evaluate / train_agent / play accept it:

  config.json        the config of the first sitting (a later one must match its models)
  progress.json      phases done, cycle, env steps, both samplers' states, evaluation history,
                     System 2's state per emulator (call stats, goal count, recent goals)
  replay/            demonstrations and the agent's own steps (one replay)
  checkpoints/       the world model (orbax)      agent/checkpoints/  System 1 (orbax)
  metrics.jsonl      one JSON line per log        tb/  TensorBoard events (scalars, strips, goals)
  eval/              evaluation JSONs, an agent episode GIF each, progress.png
  process_<i>/       with several processes, process i > 0's own replay, progress, logs, eval

Resuming: every checkpoint saves the world model, then the agent, then progress.json (atomically
replaced), so a SIGKILL at any moment loses at most the work since the last checkpoint; replay
chunks reported written are on disk already. A damaged checkpoint falls back to the one before it.
"""

import json
import os
import shutil
import statistics
import time

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image
from PIL import ImageDraw
import tqdm

from dreamer_jax import distributed
from dreamer_jax.agent import evaluate as agent_evaluate
from dreamer_jax.agent import learner
from dreamer_jax.agent import train as agent_train
from dreamer_jax.agent.policy import Policy
from dreamer_jax.envs import demos as demos_lib
from dreamer_jax.envs.emulator import NUM_ACTIONS
from dreamer_jax.envs.emulator import PALETTE
from dreamer_jax.envs.replay import Replay
from dreamer_jax.errors import UserError
from dreamer_jax.world_model import data as data_lib
from dreamer_jax.world_model import evaluate as wm_evaluate
from dreamer_jax.world_model import model as model_lib
from dreamer_jax.world_model import train as wm_train

# The config fields whose change makes a workdir's checkpoints unusable.
_MODEL_KEYS = {'world_model': ('image_size', 'use_ram', 'cnn_depth', 'mlp_units', 'mlp_layers',
                               'deter', 'stoch', 'classes', 'reward_bins', 'image_loss',
                               'dex_probe'),
               'agent': ('layers', 'units', 'critic', 'critic_bins', 'goal_dim')}
_RGB = np.array([[(c >> 16) & 255, (c >> 8) & 255, c & 255] for c in PALETTE], np.uint8)


def default_workdir(config_path, preset, now=None):
  """runs/<config name>[_<preset>]_<UTC time>: a fresh directory per run unless one is given."""
  name = os.path.splitext(os.path.basename(config_path or 'config'))[0]
  stamp = time.strftime('%Y%m%d_%H%M%S', time.gmtime(now))
  return os.path.join('runs', f'{name}{"_" + preset if preset else ""}_{stamp}')


def _write_json(path, obj):
  """Atomic: a reader (or a resume after SIGKILL) sees the old file or the new one."""
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=1, sort_keys=True)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def _read_json(path, what):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise UserError(f'{what} {path} is unreadable ({type(e).__name__}); expected the JSON '
                    'experiments.dreamer wrote (delete the workdir to start afresh).') from e


def check_config(config, workdir):
  """Writes config.json on the first sitting; later sittings must keep the models' sizes."""
  path = os.path.join(workdir, 'config.json')
  given = json.loads(json.dumps(config.to_dict()))
  if not os.path.exists(path):
    _write_json(path, given)
    return
  saved = _read_json(path, 'config')
  differs = [f'{section}.{key} ({saved.get(section, {}).get(key)!r} -> {given[section][key]!r})'
             for section, keys in _MODEL_KEYS.items() for key in keys
             if saved.get(section, {}).get(key) != given[section].get(key)]
  if differs:
    raise UserError(f'workdir {workdir} was trained with other model sizes: {", ".join(differs)}; '
                    'expected the same config, or a new --workdir.')


def check_demos(config):
  """The recorded demonstrations come from tinymon's scripted controller: another game needs the
  user's own (config.dreamer.demos)."""
  if config.env.game != 'tinymon' and not config.dreamer.demos:
    raise UserError(
        f'config.env.game={config.env.game!r} needs your own demonstrations in '
        '--config.dreamer.demos=DIR (the recorded ones come from tinymon\'s scripted player); '
        'expected a replay recorded with python -m experiments.collect_demos --policy human '
        f'--config.env.game={config.env.game} --out DIR.')


class _Logs:
  """metrics.jsonl + TensorBoard (tensorboardX) side by side."""

  def __init__(self, workdir, tensorboard):
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self.tb = None
    if tensorboard:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self.tb = SummaryWriter(os.path.join(workdir, 'tb'))

  def scalars(self, phase, step, metrics, **extra):
    row = dict(phase=phase, step=int(step), time=round(time.time(), 3), **extra,
               **{k: float(v) for k, v in metrics.items()})
    with open(self.path, 'a') as f:
      f.write(json.dumps(row) + '\n')
    if self.tb is not None:
      for k, v in metrics.items():
        self.tb.add_scalar(f'{phase}/{k}', float(v), int(step))
      for k, v in extra.items():
        if isinstance(v, (int, float)):
          self.tb.add_scalar(f'loop/{k}', float(v), int(step))

  def image(self, tag, path, step):
    if self.tb is not None and os.path.exists(path):
      self.tb.add_image(tag, np.asarray(Image.open(path).convert('RGB')), int(step),
                        dataformats='HWC')

  def text(self, tag, text, step):
    if self.tb is not None:
      self.tb.add_text(tag, text, int(step))

  def close(self):
    if self.tb is not None:
      self.tb.close()


class _Run:
  """The loop's state in memory: models, optimisers, samplers, progress; and how it is saved."""

  def __init__(self, config, workdir):
    self.config, self.workdir = config, workdir
    self.wm_cfg, self.ac = config.world_model, config.agent
    # Process 0 keeps its files in the workdir, process i > 0 in workdir/process_<i>: its own
    # replay (a copy of config.dreamer.demos, which only process 0 appends to), progress and logs.
    self.own_dir = distributed.process_dir(workdir)
    self.replay_dir = os.path.join(self.own_dir, 'replay')
    if config.dreamer.demos and self.own_dir == workdir:
      self.replay_dir = config.dreamer.demos
    elif config.dreamer.demos and not os.path.isdir(self.replay_dir):
      shutil.copytree(config.dreamer.demos, self.replay_dir + '.partial', dirs_exist_ok=True)
      os.replace(self.replay_dir + '.partial', self.replay_dir)
    self.progress_path = os.path.join(self.own_dir, 'progress.json')
    self.progress = (_read_json(self.progress_path, 'progress file')
                     if os.path.exists(self.progress_path) else
                     dict(demos_done=[], cycle=0, env_steps=0, history=[], wall_seconds=0.0))
    # One process: one stream per sampler, its state saved in progress.json. Several: each its
    # own stream, drawn afresh per sitting in `build` (distributed.sampler_rng).
    self.wm_rng = np.random.default_rng(config.seed)
    self.ag_rng = np.random.default_rng(config.seed + 1)
    for key, rng in (('wm_sampler', self.wm_rng), ('agent_sampler', self.ag_rng)):
      if self.progress.get(key):
        rng.bit_generator.state = self.progress[key]
    # Each process samples its share of every batch; the shares are split over the local devices.
    self.wm_batch = distributed.local_batch_size(int(self.wm_cfg.batch_size))
    self.ag_batch = distributed.local_batch_size(int(self.ac.batch_size), 'agent.batch_size')
    self.model = model_lib.from_config(self.wm_cfg)
    self.optimizer = wm_train.make_optimizer(self.wm_cfg)
    self.mesh = wm_train.make_mesh()
    self.actor, self.critic = learner.networks_from_config(self.ac, NUM_ACTIONS)
    self.wm_ckpt = wm_train.Checkpoints(workdir)
    self.ag_ckpt = wm_train.Checkpoints(os.path.join(workdir, 'agent'))
    self.replay = None
    self.wm_state = self.agent = None
    self._wm_step = self._bc_step = None
    self._imagine_steps = {}
    self.players = None

  # Models.

  def open_replay(self):
    self.replay = Replay(self.replay_dir, capacity=self.config.replay.capacity,
                         chunk_size=self.config.replay.chunk_size)
    if len(self.replay) < max(self.wm_cfg.sequence_length, self.ac.sequence_length):
      raise UserError(f'replay {self.replay_dir} holds {len(self.replay)} steps; expected at least '
                      f'{max(self.wm_cfg.sequence_length, self.ac.sequence_length)} (one sequence).')
    self.columns = data_lib.reward_columns(self.replay.reward_term_names,
                                           tuple(self.wm_cfg.get('reward_terms', ())))

  def build(self):
    """Creates (or restores) the world model and the agent."""
    ram = self.replay.sample(1, self.wm_cfg.sequence_length, np.random.default_rng(0))['ram']
    self.ram_size = int(ram.shape[-1])
    key = jax.random.PRNGKey(self.config.seed)
    wm_state = wm_train.create_state(self.model, self.optimizer, key, self.ram_size)
    restored = self.wm_ckpt.restore_good(wm_train.abstract_like(wm_state))
    if restored is not None:
      wm_state = restored[0]
      logging.info('world model resumed at update %d', int(wm_state['step']))
    self.wm_state = wm_train.replicate(wm_state, self.mesh)
    feat = self.wm_cfg.deter + self.wm_cfg.stoch * self.wm_cfg.classes
    agent = learner.create_state(self.actor, self.critic, self.ac, feat,
                                 jax.random.PRNGKey(self.config.seed + 2))
    agent.update({c: jnp.zeros((), jnp.int32) for c in agent_train.COUNTERS})
    restored = self.ag_ckpt.restore_good(wm_train.abstract_like(agent))
    if restored is not None:
      agent = restored[0]
      logging.info('agent resumed: %s', {c: int(agent[c]) for c in agent_train.COUNTERS})
    self.agent = agent
    if jax.process_count() > 1:
      self.wm_rng = distributed.sampler_rng(self.config.seed, self.wm_updates)
      self.ag_rng = distributed.sampler_rng(
          self.config.seed + 1, sum(self.counter(c) for c in agent_train.COUNTERS))

  @property
  def wm_updates(self):
    return int(self.wm_state['step'])

  def counter(self, name):
    return int(self.agent[name])

  def wm_params(self):
    """The world model's parameters on one device (the agent's jitted steps and the policy)."""
    return jax.device_get(self.wm_state['params'])

  def actor_params(self, which='actor'):
    """The actor's (or the clone's) parameters in host memory, for the policy in the game."""
    return jax.device_get(self.agent[which])

  def wm_update(self):
    if self._wm_step is None:
      self._wm_step = wm_train.make_train_step(self.model, self.optimizer, self.wm_cfg, self.mesh)
    batch = data_lib.prepare_batch(
        self.replay.sample(self.wm_batch, self.wm_cfg.sequence_length, self.wm_rng),
        self.columns)
    self.wm_state, metrics = self._wm_step(self.wm_state, wm_train.shard_batch(batch, self.mesh))
    return metrics

  def agent_update(self, counter, wm_params):
    """One update of `counter` ('bc_steps', 'critic_steps' or 'imagine_steps')."""
    if counter == 'bc_steps':
      if self.counter('bc_steps') == 0 and self._bc_step is None:
        self.agent = learner.start_bc(self.agent, self.ac)
      if self._bc_step is None:
        self._bc_step = learner.make_bc_step(self.model, self.actor, self.ac, self.mesh)
      fn = self._bc_step
    else:
      if self.counter('bc_steps') and not agent_train.has_clone(self.agent):
        self.agent = learner.finish_bc(self.agent, self.ac)   # The clone is frozen once.
      actor_moves = counter == 'imagine_steps'
      if actor_moves not in self._imagine_steps:
        self._imagine_steps[actor_moves] = learner.make_imagine_step(
            self.model, self.actor, self.critic, self.ac, update_actor=actor_moves,
            mesh=self.mesh)
      fn = self._imagine_steps[actor_moves]
    batch = wm_train.shard_batch(agent_train.agent_batch(self.replay.sample(
        self.ag_batch, int(self.ac.sequence_length), self.ag_rng)), self.mesh, 'agent.batch_size')
    count = self.counter(counter)
    self.agent, metrics = fn(self.agent, wm_params, batch)
    self.agent[counter] = jnp.asarray(count + 1, jnp.int32)
    return metrics

  def save(self, wall_seconds):
    """World model, then agent, then progress.json: the last names what the first two hold."""
    meta = dict(config=self.config.to_dict(), ram_size=self.ram_size,
                replay_dir=os.path.abspath(self.replay_dir))
    if self.wm_updates not in self.wm_ckpt.manager.all_steps():
      self.wm_ckpt.save(self.wm_updates, self.wm_state, meta)
    agent_step = sum(self.counter(c) for c in agent_train.COUNTERS)
    if agent_step and agent_step not in self.ag_ckpt.manager.all_steps():
      self.ag_ckpt.save(agent_step, self.agent, dict(
          config=self.config.to_dict(), world_model_workdir=os.path.abspath(self.workdir)))
    if self.players is not None:   # System 2's stats and recent goals, one entry per emulator.
      self.progress['planners'] = [p.state_dict() for p in self.players.planners]
    self.progress.update(wm_sampler=self.wm_rng.bit_generator.state,
                         agent_sampler=self.ag_rng.bit_generator.state,
                         wm_step=self.wm_updates, agent_step=agent_step,
                         wall_seconds=round(wall_seconds, 1))
    _write_json(self.progress_path, self.progress)

  def close(self):
    if self.players is not None:
      self.players.close()   # Flushes every buffered step to the replay.
    self.wm_ckpt.close()
    self.ag_ckpt.close()


def _demo_recordings(d):
  """The demonstration recordings, in order: (name, policy, epsilon, episodes, max_steps)."""
  out = [(f'planner_eps{e:g}', 'planner', float(e), int(d.demo_episodes), int(d.demo_max_steps))
         for e in d.demo_epsilons]
  if d.random_episodes:
    out.append(('random', 'random', 0.0, int(d.random_episodes), int(d.random_max_steps)))
  return out


def _planners(config, n):
  """({map id: name}, n planners) for config.env.game (tinymon's world data, or Red's map table)."""
  from dreamer_jax.planner import async_planner  # pylint: disable=g-import-not-at-top
  world, names = async_planner.game_world(config.env.game)
  return names, [async_planner.build_planner(config.planner, world, map_names=names)
                 for _ in range(n)]


class _Players:
  """The collector's emulators with one planner each and the batched policy; they live across
  cycles, so episodes run on from cycle to cycle (a fresh collector would restart every game)."""

  def __init__(self, run):
    from dreamer_jax.envs import collector as collector_lib  # pylint: disable=g-import-not-at-top
    config = run.config
    self.n = collector_lib.resolve_workers(config.collector.num_workers)
    self.map_names, self.planners = _planners(config, self.n)
    saved = run.progress.get('planners')
    if saved is not None:   # A resumed run: System 2's state from the last checkpoint.
      if not isinstance(saved, list):
        raise UserError(f'progress file {run.progress_path} has planners of type '
                        f'{type(saved).__name__}; expected the list experiments.dreamer wrote '
                        '(delete the workdir to start afresh).')
      for planner, state in zip(self.planners, saved):   # More emulators than before: new ones.
        planner.load_state_dict(state)
    self.map_ids = {name: i for i, name in self.map_names.items()}
    self.policy = Policy(run.model, run.wm_params(), run.actor, run.actor_params(),
                         int(run.ac.goal_dim), self.map_names, batch_size=self.n,
                         seed=config.seed + run.progress['cycle'])
    # Streams 1.. (stream 0 is the demonstrations'); a new sitting's streams start new episodes.
    self.collector = collector_lib.Collector.from_config(config, run.replay, stream_offset=1)
    self.seen = dict(badges=0, species=0)

  def act(self, obs):
    specs = []
    for i, (planner, info) in enumerate(zip(self.planners, self.collector.infos())):
      state = info['state']
      self.seen['badges'] = max(self.seen['badges'], state['badges'])
      self.seen['species'] = max(self.seen['species'], state['pokedex_owned'])
      plan = planner.poll(state, obs['frame'][i])
      specs.append(plan.goal_spec if plan is not None else
                   {'kind': 'explore', 'map': None, 'x': None, 'y': None})
    self.policy.is_first = self.policy.is_first | np.asarray(obs['is_first'], bool)
    actions = self.policy(obs['frame'], obs['ram'], specs)
    goal = np.array([demos_lib.goal_fields(s, self.map_ids) for s in specs], np.int16)
    return actions, dict(goal=goal)

  def close(self):
    self.collector.close()
    for p in self.planners:
      p.close()


def collect(run, steps, logs):
  """`steps` real steps with System 1 (the actor) and System 2 (one planner per emulator)."""
  if run.players is None:
    run.players = _Players(run)
  players = run.players
  players.policy.wm_params, players.policy.actor_params = run.wm_params(), run.actor_params()
  figures = players.collector.collect(players.act, steps)
  planners = players.planners
  logs.scalars('system2', run.progress['env_steps'], dict(
      calls=sum(p.stats['calls'] for p in planners),
      failed=sum(p.stats['failed'] for p in planners),
      cost_usd=sum(p.stats['cost_usd'] for p in planners),
      goals=sum(p.goal_count for p in planners)))
  plan = planners[0].current
  if plan is not None:
    logs.text('system2/goal', f'{plan.goal} ({plan.source}): {plan.rationale}',
              run.progress['env_steps'])
  return dict(figures, **players.seen)


def _gif(path, frames):
  images = [Image.fromarray(_RGB[f]) for f in frames]
  images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)


def _plot(path, history):
  """badges, species and return against env steps, one panel each (PIL: no plotting library)."""
  w, h, pad = 300, 160, 30
  image = Image.new('RGB', (3 * w, h), 'white')
  draw = ImageDraw.Draw(image)
  xs = [r['env_steps'] for r in history]
  for panel, key in enumerate(('badges', 'species_owned', 'mean_return')):
    ys = [float(r[key]) for r in history]
    x0 = panel * w
    draw.rectangle([x0 + pad, 10, x0 + w - 10, h - pad], outline='black')
    draw.text((x0 + pad, h - pad + 4), f'{key} vs env steps (max {max(xs)})', fill='black')
    lo, hi = min(ys + [0.0]), max(ys + [1.0])
    span_x = max(max(xs) - min(xs), 1)
    pts = [(x0 + pad + (x - min(xs)) / span_x * (w - pad - 10),
            h - pad - (y - lo) / (hi - lo) * (h - pad - 10)) for x, y in zip(xs, ys)]
    if len(pts) > 1:
      draw.line(pts, fill='blue', width=2)
    for x, y in pts:
      draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill='blue')
    draw.text((x0 + 2, 10), f'{hi:g}', fill='black')
    draw.text((x0 + 2, h - pad - 10), f'{lo:g}', fill='black')
  image.save(path)


def evaluate(run, logs, label, gif_steps=0, progress=False):
  """System 1 with the config's planner in the real game: agent and BC clone; a GIF; a strip."""
  config, d = run.config, run.config.dreamer
  from dreamer_jax.planner import async_planner  # pylint: disable=g-import-not-at-top
  _, names = async_planner.game_world(config.env.game)
  wm_params = run.wm_params()
  eval_dir = os.path.join(run.own_dir, 'eval')
  os.makedirs(eval_dir, exist_ok=True)
  frames = []

  n = agent_evaluate.emulators(d.eval_episodes, d.get('eval_workers', 1))
  policy_fn = lambda params, keep_frames: agent_evaluate.actor_act_fn(
      run.model, wm_params, run.actor, params, int(run.ac.goal_dim), names, seed=config.seed,
      frames=(frames, gif_steps) if keep_frames else None, batch_size=n)

  agent = agent_evaluate.summary(agent_evaluate.play(
      config, policy_fn(run.actor_params(), True), int(d.eval_episodes), int(d.eval_max_steps),
      desc='eval agent', progress=progress, workers=n))
  out = dict(agent, env_steps=run.progress['env_steps'], wm_updates=run.wm_updates,
             cycle=run.progress['cycle'])
  if agent_train.has_clone(run.agent):
    out['bc'] = agent_evaluate.summary(agent_evaluate.play(
        config, policy_fn(run.actor_params('clone'), False), int(d.eval_episodes),
        int(d.eval_max_steps), desc='eval clone', progress=progress, workers=n))
  if frames:
    out['gif'] = os.path.join(eval_dir, f'{label}.gif')
    _gif(out['gif'], frames)
  strip = os.path.join(eval_dir, f'{label}_open_loop.png')
  wm = run.wm_cfg
  try:
    drift = wm_evaluate.evaluate(run.model, wm_params, run.replay, wm.eval_context,
                                 wm.eval_horizon, int(wm.eval_sequences), config.seed, strip,
                                 wm.get('eval_latent', 'mode'))
    out['drift_tiles'] = drift['drift']
    logs.image('world_model/open_loop', strip, run.progress['env_steps'])
  except UserError as e:   # Episodes shorter than a window: no strip this time.
    logging.info('no open-loop strip: %s', e)
  _write_json(os.path.join(eval_dir, f'{label}.json'), out)
  return out


def _record_eval(run, logs, result):
  """Adds an evaluation to the history, TensorBoard and eval/progress.png."""
  env = run.progress['env_steps']
  row = dict(env_steps=env, badges=result['badges'], species_owned=result['species_owned'],
             mean_return=result['mean_return'], cycle=run.progress['cycle'])
  run.progress['history'].append(row)
  logs.scalars('eval', env, {k: v for k, v in row.items() if k != 'cycle'})
  path = os.path.join(run.own_dir, 'eval', 'progress.png')
  _plot(path, run.progress['history'])
  logs.image('eval/progress', path, env)


def train_and_evaluate(config, workdir, progress=True, clock=time.monotonic):
  """The whole product on `config` in `workdir`; resumes whatever a previous sitting left.

  Returns:
    dict: the final evaluation (see `evaluate`) when every phase is done, else
    {'stopped': reason, ...progress}.
  """
  d = config.dreamer
  check_demos(config)
  os.makedirs(workdir, exist_ok=True)
  check_config(config, workdir)
  began = clock()
  run = _Run(config, workdir)
  os.makedirs(run.own_dir, exist_ok=True)
  sitting_before = float(run.progress.get('wall_seconds', 0.0))
  wall = lambda: sitting_before + clock() - began
  out_of_time = lambda: bool(d.minutes) and clock() - began > 60 * float(d.minutes)
  logs = _Logs(run.own_dir, bool(d.tensorboard))
  phase_line = lambda name, detail: logging.info('phase %s: %s', name, detail)
  try:
    # 1. Demonstrations.
    if not d.demos:
      for name, policy, eps, episodes, max_steps in _demo_recordings(d):
        if name in run.progress['demos_done']:
          continue
        phase_line('demos', f'{name}: {episodes} episodes of <= {max_steps} steps')
        figures = demos_lib.record(
            policy, episodes, run.replay_dir, config.env, config.reward, max_steps=max_steps,
            seed=config.seed + len(run.progress['demos_done']) * 100 + 10_000 * jax.process_index(),
            epsilon=eps,
            chunk_size=config.replay.chunk_size, capacity=config.replay.capacity,
            planner_config=config.planner, progress=progress,
            skip_catch=float(d.get('demo_skip_catch', 0.0)))
        run.progress['demos_done'].append(name)
        run.progress['demo_steps'] = run.progress.get('demo_steps', 0) + figures['steps']
        _write_json(run.progress_path, run.progress)
    run.open_replay()
    run.build()
    if int(config.agent.bc_steps):
      run.replay.require_labels()
    last_save = clock()

    def maybe_save(force=False):
      nonlocal last_save
      if force or clock() - last_save > 60 * float(d.checkpoint_minutes):
        run.save(wall())
        last_save = clock()

    def stop(reason):
      run.save(wall())
      logging.info('stopped (%s); re-run the same command to continue', reason)
      return dict(stopped=reason, **{k: run.progress[k] for k in ('cycle', 'env_steps')},
                  wm_updates=run.wm_updates)

    # 2. World model on the demonstrations, 3. cloning, 4. critic warm-up.
    stages = (('world_model', lambda: run.wm_updates, int(d.wm_pretrain_steps)),
              ('bc_steps', lambda: run.counter('bc_steps'), int(config.agent.bc_steps)),
              ('critic_steps', lambda: run.counter('critic_steps'),
               int(config.agent.critic_warmup)))
    wm_params = None
    for name, done, budget in stages:
      if done() >= budget:
        continue
      phase_line(name, f'{done()} -> {budget} updates')
      if name != 'world_model':
        wm_params = run.wm_params()
      bar = tqdm.tqdm(initial=done(), total=budget, desc=name, unit='update', disable=not progress)
      every = int(config.world_model.log_every if name == 'world_model' else config.agent.log_every)
      while done() < budget:
        metrics = run.wm_update() if name == 'world_model' else run.agent_update(name, wm_params)
        bar.update()
        if done() % every == 0 or done() == budget:
          metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
          logs.scalars(name, done(), metrics)
          bar.set_postfix_str(' '.join(f'{k}={v:.3g}' for k, v in list(metrics.items())[:3]),
                              refresh=False)
        if done() == budget:
          maybe_save(force=True)
        elif out_of_time():
          bar.close()
          return stop('time budget')
        else:
          maybe_save()
      bar.close()

    # 5. Cycles: System 1 + System 2 collect, the world model refreshes, the actor-critic learns.
    cycles = int(d.cycles)
    bt_wm = config.world_model.batch_size * config.world_model.sequence_length
    updates = max(1, round(int(d.collect_steps) * float(d.train_ratio) / bt_wm))
    if run.progress['cycle'] < cycles:
      phase_line('cycles', f'{run.progress["cycle"]} -> {cycles} cycles of {d.collect_steps} '
                 f'real steps, {updates} world-model and {updates * int(d.imagine_per_update)} '
                 'actor-critic updates each')
    bar = tqdm.tqdm(initial=run.progress['cycle'], total=cycles, desc='cycles', unit='cycle',
                    disable=not progress or run.progress['cycle'] >= cycles)
    while run.progress['cycle'] < cycles:
      t0 = time.perf_counter()
      figures = collect(run, int(d.collect_steps), logs)
      run.progress['env_steps'] += figures['steps']
      run.progress['best'] = dict(badges=max(run.progress.get('best', {}).get('badges', 0),
                                             figures['badges']),
                                  species=max(run.progress.get('best', {}).get('species', 0),
                                              figures['species']))
      t1 = time.perf_counter()
      for _ in range(updates):
        wm_metrics = run.wm_update()
      wm_params = run.wm_params()
      for _ in range(updates * int(d.imagine_per_update)):
        ac_metrics = run.agent_update('imagine_steps', wm_params)
      t2 = time.perf_counter()
      run.progress['cycle'] += 1
      env = run.progress['env_steps']
      logs.scalars('world_model', run.wm_updates, jax.device_get(wm_metrics))
      logs.scalars('imagine', run.counter('imagine_steps'), jax.device_get(ac_metrics))
      logs.scalars('loop', env, {}, env_steps_per_s=round(figures['steps'] / (t1 - t0), 2),
                   updates_per_s=round(updates * (1 + int(d.imagine_per_update)) / (t2 - t1), 3),
                   badges=figures['badges'], species=figures['species'], env_steps=env)
      bar.update()
      bar.set_postfix_str(f'env {env}  {updates * 2 / (t2 - t1):.2f} upd/s  badges '
                          f'{run.progress["best"]["badges"]}  species '
                          f'{run.progress["best"]["species"]}', refresh=False)
      cycle = run.progress['cycle']
      if cycle % int(d.eval_every) == 0 and cycle < cycles:   # The last one is the final's.
        _record_eval(run, logs, evaluate(run, logs, f'cycle{cycle:05d}', int(d.gif_steps)))
      maybe_save(force=True)
      if out_of_time() and run.progress['cycle'] < cycles:
        bar.close()
        return stop('time budget')
    bar.close()

    # 6. The final evaluation (once; a re-run of a finished workdir prints it again).
    final_path = os.path.join(run.own_dir, 'eval', 'final.json')
    if os.path.exists(final_path):
      final = _read_json(final_path, 'evaluation')
      if (final.get('cycle'), final.get('wm_updates')) == (run.progress['cycle'], run.wm_updates):
        return final   # Nothing trained since: the same evaluation.
    phase_line('evaluate', f'{d.eval_episodes} episodes of <= {d.eval_max_steps} steps')
    result = evaluate(run, logs, 'final', int(d.gif_steps), progress=progress)
    _record_eval(run, logs, result)
    result.update(world_model_mb=round(sum(
        x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(run.wm_params())) / 2**20, 2),
                  wall_seconds=round(wall(), 1))
    run.save(wall())
    _write_json(final_path, result)
    return result
  finally:
    logs.close()
    run.close()


def evaluate_workdir(workdir, episodes=3, max_steps=20000, seed=0, progress=True, workers=1):
  """The seed's target metrics of a main-command workdir, in one dict (experiments.evaluate).

  badges and species_owned are medians over `episodes` episodes from the start state, with System 1
  (the actor) and the config's System 2, no human; the BC clone's and a uniform-random policy's
  figures beside them; drift_50_tiles on the workdir's replay; world_model_mb at float32;
  policy_hz; env_steps (the agent's own real steps) and wall_seconds from progress.json.
  """
  progress_path = os.path.join(workdir, 'progress.json')
  if not os.path.exists(progress_path):
    raise UserError(f'{workdir} has no progress.json; expected a workdir of experiments.dreamer.')
  done = _read_json(progress_path, 'progress file')
  out = agent_evaluate.run(workdir, episodes, max_steps, seed=seed, progress=progress,
                           workers=workers)
  _, _, params, replay_dir, _ = wm_evaluate.load_trained(workdir)
  out['world_model_mb'] = round(wm_evaluate.model_size(params)['megabytes_f32'], 2)
  if replay_dir and os.path.isdir(replay_dir):
    drift = wm_evaluate.run(workdir, seed=seed + 1)
    out.update(drift_50_tiles=drift['drift'], drift_horizon=drift['horizon'])
  else:   # An exported workdir ships no replay: drift needs one (evaluate --replay DIR).
    out.update(drift_50_tiles=None, drift_note='no replay in this workdir; pass --replay')
  out.update(
             env_steps=done.get('env_steps', 0), demo_steps=done.get('demo_steps', 0),
             wm_updates=done.get('wm_step', 0), wall_seconds=done.get('wall_seconds', 0.0))
  return out

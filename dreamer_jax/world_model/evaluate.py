"""Open-loop evaluation: observe K real steps, imagine H steps from the prior with the real actions,
and measure how far the decoded position drifts from the true one; a picture for a person; sizes.
"""

import functools
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from PIL import Image
from PIL import ImageDraw

from dreamer_jax.envs.emulator import PALETTE
from dreamer_jax.envs.features import decode_probe_targets
from dreamer_jax.errors import UserError
from dreamer_jax.world_model import data as data_lib
from dreamer_jax.world_model import heads as heads_lib
from dreamer_jax.world_model import model as model_lib
from dreamer_jax.world_model import train as train_lib
from dreamer_jax.world_model.networks import num_params
from dreamer_jax.world_model.rssm import feature

_RGB = np.array([[(c >> 16) & 255, (c >> 8) & 255, c & 255] for c in PALETTE], np.uint8)


EVAL_LATENTS = ('mode', 'sample')


@functools.partial(jax.jit, static_argnums=(0, 3, 5))
def open_loop(model, params, batch, context, key, mode=False):
  """Observes `context` steps, then imagines the rest of the window from the prior alone.

  Args:
    batch: prepared batch (`data.prepare_batch`) of windows [B, K + H].
    context: K.
    mode: take the most likely latent at every step (posterior and prior) instead of sampling it.

  Returns:
    dict over the H imagined steps: probes (`heads.probe_decode` format) [B, H, ...] and
    frame uint8 [B, H, h, w] (the decoder's most likely shades, or the rounded mean for 'mse').
  """
  b = batch['action'].shape[0]
  frame = data_lib.downsample(batch['frame'][:, :context], model.image_size)
  flat = lambda x: x.reshape((-1,) + x.shape[2:])
  embed = model.apply(params, flat(frame), flat(batch['ram'][:, :context]),
                      method=model_lib.WorldModel.encode).reshape(b, context, -1)
  obs_key, img_key = jax.random.split(key)
  carry, _, _, _ = model_lib.observe(
      model, params, embed, batch['action'][:, :context], batch['is_first'][:, :context],
      model_lib.initial_carry(model, b), obs_key, mode=mode)
  _, states, _ = model_lib.imagine(model, params, carry, batch['action'][:, context:], img_key,
                                   mode=mode)
  horizon = batch['action'].shape[1] - context
  out = model.apply(params, flat(feature(states)), method=model_lib.WorldModel.heads)
  if model.image_loss == 'categorical':
    shades = jnp.argmax(out['image'], -1)
  else:
    shades = jnp.clip(jnp.round(out['image'] * 3), 0, 3)
  unflat = lambda x: x.reshape((b, horizon) + x.shape[1:])
  return dict(probes=jax.tree_util.tree_map(unflat, heads_lib.probe_decode(out['probes'])),
              frame=unflat(shades.astype(jnp.uint8)))


def sample_windows(replay, length, count, rng):
  """Up to `count` windows of `length` steps inside single episodes, at random positions.

  Returns:
    (batch dict of [N, length] arrays as from `Replay.sample`, bool [N]: the window stays on one map).
  """
  # Only the windows' steps are read, never whole episodes (a replay's frames are ~6 GB at 1M steps).
  spans = [s for s in replay.episode_spans(include_partial=True) if s[2] - s[1] >= length]
  if not spans:
    raise UserError(f'the replay in {replay.directory} holds no episode of {length} steps; '
                    'expected longer episodes for the open-loop evaluation.')
  windows = []
  for i in rng.integers(0, len(spans), count):
    run, begin, end = spans[i]
    windows.append(replay.window(run, begin + rng.integers(0, end - begin - length + 1), length))
  batch = {k: np.stack([w[k] for w in windows]) for k in windows[0]}
  map_id = decode_probe_targets(batch['ram'])['map_id']
  return batch, np.all(map_id == map_id[:, :1], axis=1)


def drift_metrics(pred, true, same_map, last_context):
  """Drift figures from decoded and true probes over the H imagined steps.

  Args:
    pred, true: dicts with x, y, map_id int [N, H]; same_map bool [N];
    last_context: dict with x, y int [N], the true position at the last observed step.

  Returns:
    dict: drift (mean |dx| + |dy| in tiles at step H, same-map windows), drift_curve [H],
    hold_still_drift (the same for a model that predicts no movement: the bar to beat) and its
    hold_still_curve [H], map_mismatch_rate (same-map windows, step H), map_mismatch_rate_all (all
    windows, step H).
  """
  err = np.abs(pred['x'] - true['x']) + np.abs(pred['y'] - true['y'])
  still = (np.abs(last_context['x'][:, None] - true['x'])
           + np.abs(last_context['y'][:, None] - true['y']))
  mismatch = pred['map_id'][:, -1] != true['map_id'][:, -1]
  if not same_map.any():
    raise UserError('no evaluation window stays on one map; expected episodes with long walks on '
                    'a single map.')
  return dict(
      drift=float(err[same_map, -1].mean()),
      drift_curve=[float(v) for v in err[same_map].mean(0)],
      hold_still_drift=float(still[same_map, -1].mean()),
      hold_still_curve=[float(v) for v in still[same_map].mean(0)],
      map_mismatch_rate=float(mismatch[same_map].mean()),
      map_mismatch_rate_all=float(mismatch.mean()),
      windows=int(len(same_map)), same_map_windows=int(same_map.sum()))


def write_picture(path, true_frames, imagined_frames, columns=10):
  """A grid over the H steps; each cell is the true frame (left) beside the imagined one (right).

  true_frames, imagined_frames: uint8 shades [H, h, w].
  """
  horizon, h, w = imagined_frames.shape
  gap, label = 4, 12
  rows = -(-horizon // columns)
  canvas = Image.new('RGB', (columns * (2 * w + 3 * gap), rows * (h + label + gap)), (255, 255, 255))
  draw = ImageDraw.Draw(canvas)
  for i in range(horizon):
    x0 = (i % columns) * (2 * w + 3 * gap)
    y0 = (i // columns) * (h + label + gap)
    draw.text((x0, y0), f'+{i + 1} true | imagined', fill=(0, 0, 0))
    canvas.paste(Image.fromarray(_RGB[true_frames[i]]), (x0, y0 + label))
    canvas.paste(Image.fromarray(_RGB[imagined_frames[i]]), (x0 + w + gap, y0 + label))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  canvas.save(path)


def evaluate(model, params, replay, context, horizon, num_windows, seed, png_path=None,
             latent='mode'):
  """The open-loop drift evaluation on `num_windows` random windows of a replay (see `drift_metrics`);
  writes the picture of the first same-map window to `png_path` when given.

  `latent` picks the headline rollout: 'mode' takes the most likely latent at every step, observed
  and imagined (the model's single best guess of a deterministic game); 'sample' samples them as
  imagination for the actor does.
  The other one's figures are added as drift_<other> and map_mismatch_rate_<other>.
  """
  if latent not in EVAL_LATENTS:
    raise UserError(f'world_model.eval_latent is {latent!r}; expected one of {EVAL_LATENTS}.')
  rng = np.random.default_rng(seed)
  raw, same_map = sample_windows(replay, context + horizon, num_windows, rng)
  batch = data_lib.prepare_batch(raw)
  true = {k: v[:, context:] for k, v in batch['probes'].items()}
  last = {k: batch['probes'][k][:, context - 1] for k in ('x', 'y')}
  key = jax.random.PRNGKey(seed)
  rollouts = {name: jax.device_get(open_loop(model, params, batch, context, key, name == 'mode'))
              for name in EVAL_LATENTS}
  metrics = drift_metrics(rollouts[latent]['probes'], true, same_map, last)
  for name in EVAL_LATENTS:
    if name != latent:
      other = drift_metrics(rollouts[name]['probes'], true, same_map, last)
      metrics.update({f'drift_{name}': other['drift'],
                      f'map_mismatch_rate_{name}': other['map_mismatch_rate']})
  metrics['latent'] = latent
  if png_path:
    i = int(np.argmax(same_map))
    true_frames = np.asarray(data_lib.downsample(batch['frame'][i, context:], model.image_size))
    write_picture(png_path, true_frames, rollouts[latent]['frame'][i])
    metrics['picture'] = os.path.abspath(png_path)
  return metrics


def model_size(params):
  """Parameter count and megabytes at float32."""
  n = num_params(params)
  return dict(params=n, megabytes_f32=n * 4 / 2**20)


def directory_bytes(path):
  return sum(os.path.getsize(os.path.join(root, f))
             for root, _, files in os.walk(path) for f in files)


def load_trained(workdir):
  """Restores a workdir written by `train.train` -> (config, model, params, replay_dir, step).

  The newest checkpoint that reads back whole is used; a damaged one is named in the log and the
  one before it is taken instead.
  """
  ckpt = train_lib.Checkpoints(workdir)
  holder = {}

  def abstract(meta):
    holder['config'] = config = ml_collections.ConfigDict(meta['config'])
    model = holder['model'] = model_lib.from_config(config.world_model).clone(
        ram_size=int(meta['ram_size']))
    optimizer = train_lib.make_optimizer(config.world_model)
    full = jax.eval_shape(lambda: train_lib.create_state(
        model, optimizer, jax.random.PRNGKey(0), meta['ram_size']))
    if meta.get('export_dtype'):   # An exported checkpoint (experiments.export): parameters only.
      return train_lib.export_abstract(full, ('params',), meta['export_dtype'])
    return full

  restored = ckpt.restore_good(abstract)
  ckpt.close()
  if restored is None:
    raise UserError(f'no checkpoint in {ckpt.directory}; expected a workdir written by '
                    'experiments.train_world_model or experiments.dreamer.')
  state, step, meta = restored
  return (holder['config'], holder['model'], train_lib.as_float32(state['params']),
          meta['replay_dir'], step)


def run(workdir, replay_dir=None, png_path=None, num_windows=None, seed=1):
  """Loads `workdir`'s latest checkpoint and evaluates it: drift figures, sizes, checkpoint bytes."""
  from dreamer_jax.envs.replay import Replay  # Only the entry point touches the disk format.
  config, model, params, train_replay, step = load_trained(workdir)
  wm = config.world_model
  replay_dir = replay_dir or train_replay
  if not os.path.isdir(replay_dir):
    raise UserError(f'replay directory {replay_dir} does not exist; expected a replay from '
                    'experiments.collect_demos.')
  png_path = png_path or os.path.join(workdir, 'open_loop.png')
  metrics = evaluate(model, params, Replay(replay_dir), wm.eval_context, wm.eval_horizon,
                     num_windows or wm.eval_sequences, seed, png_path,
                     wm.get('eval_latent', 'mode'))
  metrics.update(model_size(params), step=step, replay=os.path.abspath(replay_dir),
                 context=wm.eval_context, horizon=wm.eval_horizon,
                 checkpoint_bytes=directory_bytes(os.path.join(workdir, 'checkpoints', str(step))))
  return metrics

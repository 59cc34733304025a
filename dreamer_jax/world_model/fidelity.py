"""Dream fidelity: how long the world model's dream stays faithful to the real game.

For held-out real sequences, the model observes K context steps and then imagines with the real
actions (the prior alone, as in `experiments.play --dream`). The imagined frames are compared with
the real ones at the model's resolution, pixel by pixel in the 4 DMG shades, and the RAM probes'
decoded map and position with the real RAM, for the most likely ('mode') and the sampled latents.

The seed's bar for a playable dream: for the median sequence the imagined map stays right for at
least 200 steps and the frame accuracy at step 50 is at least 95% (`GOAL`).
"""

import os

import jax
import numpy as np

from dreamer_jax.errors import UserError
from dreamer_jax.world_model import data as data_lib
from dreamer_jax.world_model import evaluate as evaluate_lib

REPORT_STEPS = (1, 10, 50, 100, 200)
DRIFT_STEPS = (50, 200)
GOAL = dict(map_right_steps=200, accuracy_at_50=0.95)
# Rounds of `Replay.sample` per batch before a horizon is judged not to fit the replay's episodes:
# windows that cross an episode start are thrown away, and a replay of episodes shorter than the
# window would otherwise be sampled forever.
_SAMPLE_ROUNDS = 20


def horizons(max_horizon):
  """The horizons to try, longest first: `max_horizon`, then the report steps below it."""
  return sorted({max_horizon} | {s for s in REPORT_STEPS if s < max_horizon}, reverse=True)


def sample_windows(replay, length, count, rng):
  """`count` windows of `length` steps that stay inside one episode, or None if the replay's
  episodes are too short for them.

  Only the sampled windows are unpacked (`Replay.sample`); the replay stays packed in memory.

  Returns:
    a `Replay.sample` dict of [count, length] arrays, or None.
  """
  kept = []
  for _ in range(_SAMPLE_ROUNDS):
    try:
      batch = replay.sample(count, length, rng)
    except UserError:      # No run of one stream's consecutive steps is `length` long.
      return None
    inside = ~batch['is_first'][:, 1:].any(1)
    kept += [{k: v[i] for k, v in batch.items()} for i in np.flatnonzero(inside)]
    if len(kept) >= count:
      return {k: np.stack([w[k] for w in kept[:count]]) for k in kept[0]}
  return None


def first_mismatch(pred_map, true_map):
  """The 1-based imagined step at which the map first differs, per sequence; the horizon H where it
  never does. int [N, H] -> int [N]."""
  wrong = pred_map != true_map
  horizon = wrong.shape[1]
  return np.where(wrong.any(1), np.argmax(wrong, 1) + 1, horizon)


class Tally:
  """Sums over batches of sequences for one latent kind (`measure` has the figures' meaning)."""

  def __init__(self, steps, horizon):
    self.steps = steps
    self.correct = {s: 0.0 for s in steps}
    self.pixels = {s: 0 for s in steps}
    self.map_right = []
    self.map_never_wrong = []
    self.drift = {s: [] for s in DRIFT_STEPS if s <= horizon}

  def add(self, pred, true_frames, true_probes, same_map_until):
    for s in self.steps:
      self.correct[s] += float((pred['frame'][:, s - 1] == true_frames[:, s - 1]).sum())
      self.pixels[s] += true_frames[:, s - 1].size
    probes = pred['probes']
    self.map_right += first_mismatch(probes['map_id'], true_probes['map_id']).tolist()
    self.map_never_wrong += (probes['map_id'] == true_probes['map_id']).all(1).tolist()
    err = np.abs(probes['x'] - true_probes['x']) + np.abs(probes['y'] - true_probes['y'])
    for s in self.drift:
      self.drift[s] += err[same_map_until[:, s - 1], s - 1].tolist()

  def result(self):
    return dict(
        accuracy={str(s): self.correct[s] / self.pixels[s] for s in self.steps},
        map_right_steps_median=float(np.median(self.map_right)),
        map_right_whole_horizon=float(np.mean(self.map_never_wrong)),
        drift_tiles={str(s): (float(np.mean(v)) if v else None) for s, v in self.drift.items()},
        drift_sequences={str(s): len(v) for s, v in self.drift.items()})


def measure(model, params, replay, context, max_horizon, num_sequences, seed, batch_size=8):
  """Dream fidelity on `num_sequences` windows of `replay` (see the module docstring).

  The horizon is the longest of `horizons(max_horizon)` whose windows fit inside the replay's
  episodes; the figures are reported at the `REPORT_STEPS` within it. Windows are sampled and
  evaluated `batch_size` at a time, so memory holds one batch of unpacked frames, never the replay.

  Returns:
    a JSON-able dict: context, horizon, sequences, steps, and per latent kind ('mode', 'sample'):
    accuracy {step: share of pixels whose imagined shade equals the real one}, map_right_steps_median
    (the step at which the imagined map id first differs from the real one, the horizon if never),
    map_right_whole_horizon (the share of sequences whose map never differs), drift_tiles {50, 200
    (those within the horizon): mean |dx| + |dy| between the imagined and real position, over the
    sequences whose real map stayed the same until then; None if none did} and drift_sequences
    (how many such sequences); hold_still_accuracy {step: the same accuracy for
    repeating the last observed frame, the bar to beat}; goal (GOAL and whether each kind meets it).
  """
  if context < 1 or max_horizon < 1 or num_sequences < 1:
    raise UserError(f'dream fidelity needs a positive context ({context}), horizon ({max_horizon}) '
                    f'and number of sequences ({num_sequences}).')
  rng = np.random.default_rng(seed)
  batch_size = min(batch_size, num_sequences)
  horizon, first = None, None
  for h in horizons(max_horizon):
    first = sample_windows(replay, context + h, batch_size, rng)
    if first is not None:
      horizon = h
      break
  if horizon is None:
    raise UserError(f'the replay in {replay.directory} holds no episode of {context + 1} steps; '
                    f'expected episodes longer than the context ({context}) for dream fidelity.')
  steps = tuple(s for s in REPORT_STEPS if s <= horizon)
  tallies = {name: Tally(steps, horizon) for name in evaluate_lib.EVAL_LATENTS}
  still_correct = {s: 0.0 for s in steps}
  still_pixels = {s: 0 for s in steps}
  batches = -(-num_sequences // batch_size)
  for i in range(batches):
    raw = first if i == 0 else sample_windows(replay, context + horizon, batch_size, rng)
    if raw is None:
      raise UserError(f'the replay in {replay.directory} ran out of episodes of '
                      f'{context + horizon} steps; expected a replay with longer episodes.')
    batch = data_lib.prepare_batch(raw)
    small = np.asarray(data_lib.downsample(batch['frame'], model.image_size))
    true_frames = small[:, context:]
    true_probes = {k: v[:, context:] for k, v in batch['probes'].items()}
    # Drift is measured where the real map has not changed since the last observed step: across
    # maps, coordinates are not comparable.
    last_map = batch['probes']['map_id'][:, context - 1:context]
    same_map_until = np.cumprod(true_probes['map_id'] == last_map, axis=1).astype(bool)
    for s in steps:
      still_correct[s] += float((small[:, context - 1] == true_frames[:, s - 1]).sum())
      still_pixels[s] += true_frames[:, s - 1].size
    key = jax.random.PRNGKey(seed + i)
    for name, tally in tallies.items():
      pred = jax.device_get(evaluate_lib.open_loop(model, params, batch, context, key,
                                                   name == 'mode'))
      tally.add(pred, true_frames, true_probes, same_map_until)
  out = dict(context=int(context), horizon=int(horizon), sequences=batches * batch_size,
             steps=list(steps),
             hold_still_accuracy={str(s): still_correct[s] / still_pixels[s] for s in steps})
  for name, tally in tallies.items():
    out[name] = tally.result()
  met = {}
  for name in tallies:
    acc50 = out[name]['accuracy'].get('50')
    met[name] = bool(out[name]['map_right_steps_median'] >= GOAL['map_right_steps']
                     and acc50 is not None and acc50 >= GOAL['accuracy_at_50'])
  out['goal'] = dict(GOAL, met=met)
  return out


def run(workdir, replay_dir=None, num_sequences=None, seed=1, context=None, max_horizon=200):
  """Loads `workdir`'s latest world model and measures its dream fidelity on `replay_dir` (default
  the training replay; pass held-out data for the honest figure)."""
  from dreamer_jax.envs.replay import Replay  # Only the entry point touches the disk format.
  config, model, params, train_replay, step = evaluate_lib.load_trained(workdir)
  wm = config.world_model
  replay_dir = replay_dir or train_replay
  if not os.path.isdir(replay_dir):
    raise UserError(f'replay directory {replay_dir} does not exist; expected a replay from '
                    'experiments.collect_demos.')
  result = measure(model, params, Replay(replay_dir), context or wm.eval_context, max_horizon,
                   num_sequences or wm.eval_sequences, seed)
  result.update(step=step, replay=os.path.abspath(replay_dir), workdir=os.path.abspath(workdir))
  return result

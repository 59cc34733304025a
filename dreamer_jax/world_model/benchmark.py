"""World-model speed and size: `python -m experiments.benchmark --suite world_model [--quick] --json`.

Figures for the config handed in (the entry point's default is configs/v3.py, with --quick its
':small' preset): train update time at batch B x T, imagination throughput (B*T start states x 15
steps, as the actor-critic uses it), posterior latency for one frame at batch 1, parameter count
and float32 megabytes, checkpoint bytes on disk. The host's load average is reported beside the
timings: other processes share the CPU.
"""

import os
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from dreamer_jax.envs.features import RAM_FEATURES
from dreamer_jax.world_model import data as data_lib
from dreamer_jax.world_model import evaluate
from dreamer_jax.world_model import model as model_lib
from dreamer_jax.world_model import train as train_lib
from dreamer_jax.world_model.rssm import feature

IMAGINE_HORIZON = 15
RAM_SIZE = RAM_FEATURES


def median_seconds(fn, repeats):
  """Median wall time of `fn()` (which blocks until its result is ready) over `repeats` calls."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def run(config, quick=False):
  """Runs the benchmark on `config.world_model`; returns a flat dict of figures. `quick` repeats
  each timing fewer times."""
  wm = config.world_model
  repeats = 2 if quick else 3
  b, t = wm.batch_size, wm.sequence_length
  model = model_lib.from_config(wm)
  optimizer = train_lib.make_optimizer(wm)
  rng = np.random.default_rng(0)
  batch = data_lib.prepare_batch(data_lib.synthetic_batch(rng, b, t, ram_size=RAM_SIZE))
  state = train_lib.create_state(model, optimizer, jax.random.PRNGKey(0), RAM_SIZE)
  results = dict(batch=b, sequence_length=t,
                 image_size=list(wm.image_size), device=jax.devices()[0].device_kind,
                 num_devices=jax.device_count(), cpu_count=os.cpu_count(),
                 load_average_1min_before=os.getloadavg()[0])
  results.update({f'model_{k}': v for k, v in evaluate.model_size(state['params']).items()})

  # Train update (one device: on this CPU the fake second device only splits the same 2 cores).
  step = train_lib.make_train_step(model, optimizer, wm)
  holder = {'state': state}

  def update():
    holder['state'], metrics = step(holder['state'], batch)
    jax.block_until_ready(metrics)

  start = time.perf_counter()
  update()
  results['train_compile_s'] = time.perf_counter() - start
  seconds = median_seconds(update, repeats)
  results.update(train_seconds_per_update=seconds, train_steps_per_s=1.0 / seconds,
                 train_sequences_per_s=b / seconds)
  params = holder['state']['params']

  # Imagination from B*T start states.
  starts = b * t

  @jax.jit
  def imagine(params, key):
    carry = model_lib.initial_carry(model, starts)
    actions = jnp.zeros((starts, IMAGINE_HORIZON), jnp.int32)
    _, states, _ = model_lib.imagine(model, params, carry, actions, key)
    return feature(states)

  key = jax.random.PRNGKey(1)
  jax.block_until_ready(imagine(params, key))
  seconds = median_seconds(lambda: jax.block_until_ready(imagine(params, key)), repeats)
  results.update(imagine_start_states=starts, imagine_horizon=IMAGINE_HORIZON,
                 imagine_steps_per_s=starts * IMAGINE_HORIZON / seconds)

  # Posterior latency: one raw frame + RAM at batch 1 -> new carry (what acting at 60 Hz needs).
  @jax.jit
  def posterior(params, carry, frame, ram, action, key):
    embed = model.apply(params, data_lib.downsample(frame, model.image_size), ram,
                        method=model_lib.WorldModel.encode)
    carry, _, _ = model.apply(params, carry, embed, action, jnp.zeros((1,), bool), key, 1.0,
                              method=model_lib.WorldModel.obs_step)
    return carry

  args = (params, model_lib.initial_carry(model, 1), jnp.asarray(batch['frame'][:1, 0]),
          jnp.asarray(batch['ram'][:1, 0]), jnp.zeros((1,), jnp.int32), key)
  jax.block_until_ready(posterior(*args))
  seconds = median_seconds(lambda: jax.block_until_ready(posterior(*args)), 20 if quick else 100)
  results.update(posterior_latency_ms=seconds * 1e3, posterior_hz=1.0 / seconds)

  # Checkpoint of the whole train state (parameters + Adam moments), as train_world_model writes.
  with tempfile.TemporaryDirectory() as tmp:
    ckpt = train_lib.Checkpoints(tmp)
    ckpt.save(1, holder['state'], dict(config=wm.to_dict(), ram_size=RAM_SIZE, replay_dir=''))
    ckpt.close()
    results['checkpoint_bytes'] = evaluate.directory_bytes(os.path.join(tmp, 'checkpoints', '1'))
  results['checkpoint_megabytes'] = results['checkpoint_bytes'] / 2**20
  results['load_average_1min_after'] = os.getloadavg()[0]
  return results

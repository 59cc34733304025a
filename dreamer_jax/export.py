"""Exports a trained workdir for shipping (pretrained/): parameters only, optionally half precision.

The result is a workdir the other commands accept (experiments.evaluate, experiments.play): the
world model's and System 1's newest good checkpoints without optimiser states, the config beside
them, and the replay left out.
"""

import json
import os
import shutil

import jax
import jax.numpy as jnp

from dreamer_jax.agent import train as agent_train
from dreamer_jax.errors import UserError
from dreamer_jax.world_model import evaluate as wm_evaluate
from dreamer_jax.world_model import train as wm_train

DTYPES = ('float16', 'bfloat16', 'float32')


def _cast(tree, dtype):
  return jax.tree_util.tree_map(
      lambda x: jnp.asarray(x, dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def export(workdir, out, dtype='float16'):
  """Writes `workdir`'s world model and agent into `out` -> {'bytes': total, 'out': out}."""
  if dtype not in DTYPES:
    raise UserError(f'--dtype {dtype!r} is not one of {", ".join(DTYPES)}.')
  if os.path.exists(out) and os.listdir(out):
    raise UserError(f'{out} exists and is not empty; expected a new directory to export into.')
  config, model, params, _, step = wm_evaluate.load_trained(workdir)
  ckpt = wm_train.Checkpoints(workdir)
  meta = ckpt.meta(step)
  ckpt.close()
  os.makedirs(out, exist_ok=True)
  shipped = wm_train.Checkpoints(out, max_to_keep=1)
  shipped.save(step, dict(params=_cast(params, dtype)),
               dict(meta, replay_dir='', export_dtype=dtype))
  shipped.close()
  agent_config, agent_step, state = agent_train.load_agent_state(workdir, model)
  shipped = wm_train.Checkpoints(os.path.join(out, 'agent'), max_to_keep=1)
  shipped.save(agent_step, {k: _cast(state[k], dtype) for k in agent_train.EXPORT_KEYS},
               dict(config=agent_config.to_dict(), export_dtype=dtype))
  shipped.close()
  with open(os.path.join(out, 'config.json'), 'w') as f:
    json.dump(json.loads(json.dumps(config.to_dict())), f, indent=1, sort_keys=True)
  for name in ('progress.json',):
    if os.path.exists(os.path.join(workdir, name)):
      shutil.copy(os.path.join(workdir, name), os.path.join(out, name))
  total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(out) for f in fs)
  return dict(out=out, bytes=total, world_model_step=step, agent_step=agent_step, dtype=dtype)

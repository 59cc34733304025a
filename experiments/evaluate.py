"""Evaluates a workdir: the world model's open-loop drift, or System 1 playing the real game.

  python -m experiments.evaluate --workdir=runs/wm [--replay=demos/expert] [--png=runs/wm/drift.png]
  python -m experiments.evaluate --workdir=runs/wm --dream [--replay=runs/demos/heldout_random] \
      [--windows 64] [--horizon 200] [--context 8] --json
  python -m experiments.evaluate --workdir=runs/wm --agent_only [--episodes 3] [--max_steps 20000] \
      [--state FILE] --json

--dream measures how long the dream stays faithful (dreamer_jax.world_model.fidelity): K context
steps observed, then up to --horizon steps imagined with the real actions; shade accuracy at steps
1/10/50/100/200, the step the imagined map first differs (median), drift at 50/200, mode and sampled
latents.

On a workdir of experiments.dreamer (it holds progress.json), `--workdir=DIR --json` alone prints the
seed's target metrics: badges and species_owned (medians, no human), drift_50_tiles, world_model_mb,
policy_hz, env_steps, wall_seconds, the episodes, and the BC clone's and a random policy's figures.

--agent_only plays with the actor network (System 1) and the config's planner (System 2) from the
start state, and beside it a uniform-random policy (the floor); one JSON object either way. With
--replay (held-out labelled demonstrations) it adds the actor's and the clone's action accuracy.

Observes config.world_model.eval_context real steps, imagines eval_horizon steps with the real
actions, and reports the decoded position's drift in tiles (see dreamer_jax.world_model.evaluate).
"""

import json
import os

from absl import flags

from dreamer_jax.agent import evaluate as agent_evaluate
from dreamer_jax.errors import UserError
from dreamer_jax.world_model import evaluate
from dreamer_jax.world_model import fidelity
from experiments import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'A workdir written by train_world_model.',
                               required=True)
_REPLAY = flags.DEFINE_string('replay', None, 'Replay to evaluate on; default the training replay.')
_PNG = flags.DEFINE_string('png', None, 'Picture path; default <workdir>/open_loop.png.')
_WINDOWS = flags.DEFINE_integer('windows', None, 'Windows; default config eval_sequences.')
_SEED = flags.DEFINE_integer('seed', 1, 'Picks the windows (drift) or seeds the policies (agent).')
_AGENT = flags.DEFINE_bool('agent_only', False, 'Evaluate System 1 in the real game instead.')
_DREAM = flags.DEFINE_bool('dream', False, 'Dream fidelity: imagined vs real frames and maps.')
_HORIZON = flags.DEFINE_integer('horizon', 200, '--dream: the most imagined steps per sequence.')
_CONTEXT = flags.DEFINE_integer('context', None, '--dream: observed steps; default eval_context.')
_EPISODES = flags.DEFINE_integer('episodes', 3, '--agent_only: episodes per policy.')
_MAX_STEPS = flags.DEFINE_integer('max_steps', 20000, '--agent_only: steps per episode.')
_STATE = flags.DEFINE_string('state', None, '--agent_only: start state file (make_start_state).')
_GREEDY = flags.DEFINE_bool('greedy', False, '--agent_only: the most likely action, not a sample.')
_MENU = flags.DEFINE_bool(
    'menu_stats', False, '--agent_only: count each policy\'s actions at the battle menu against a '
    'wild species not owned (by badges, goal, level margin, menu item), as new_species_menu.')
_FIXED = flags.DEFINE_bool(
    'fixed_length', False, '--agent_only: every episode plays all --max_steps steps (reaching every '
    'badge and the species asked for ends none), so each policy\'s return covers the same steps; '
    'steps_to_target and return_at_target say when each episode first held the target.')
_WORKERS = flags.DEFINE_integer(
    'workers', 1, 'Games played at once, one emulator process each, one batched network call for '
    'all (0: one per core; at most --episodes). 1 plays them one after another, in this process.')
flags.DEFINE_bool('json', True, 'Print one JSON object (always on; accepted for scripts).')


def main(argv):
  del argv
  if _DREAM.value:
    print(json.dumps(fidelity.run(_WORKDIR.value, _REPLAY.value, _WINDOWS.value, _SEED.value,
                                  _CONTEXT.value, _HORIZON.value), indent=2, sort_keys=True))
    return
  if _AGENT.value:
    if _EPISODES.value < 1 or _MAX_STEPS.value < 1:
      raise UserError(f'--episodes ({_EPISODES.value}) and --max_steps ({_MAX_STEPS.value}) '
                          'must be positive.')
    result = agent_evaluate.run(_WORKDIR.value, _EPISODES.value, _MAX_STEPS.value,
                                _STATE.value, _GREEDY.value, _SEED.value, workers=_WORKERS.value,
                                menu_stats=_MENU.value, fixed_length=_FIXED.value)
    if _REPLAY.value:   # Held-out labelled demonstrations: the actors' action accuracy on them.
      result['heldout_accuracy'] = agent_evaluate.heldout_accuracy(_WORKDIR.value, _REPLAY.value)
    print(json.dumps(result, indent=2, sort_keys=True))
    return
  if os.path.exists(os.path.join(_WORKDIR.value, 'progress.json')) and not _REPLAY.value:
    # A main-command workdir: the seed's target metrics (System 1 + System 2 in the game, BC
    # clone and random beside, drift, size, speed, steps, time).
    from dreamer_jax import loop  # pylint: disable=g-import-not-at-top
    print(json.dumps(loop.evaluate_workdir(_WORKDIR.value, _EPISODES.value, _MAX_STEPS.value,
                                           _SEED.value, workers=_WORKERS.value), indent=2,
                     sort_keys=True))
    return
  print(json.dumps(evaluate.run(_WORKDIR.value, _REPLAY.value, _PNG.value, _WINDOWS.value,
                                _SEED.value), indent=2, sort_keys=True))


if __name__ == '__main__':
  cli.run(main)

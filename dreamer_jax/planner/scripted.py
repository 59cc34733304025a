"""The scripted planner: replays a recorded list of goals, one per replan (tests and ablations)."""

import json
import os

from dreamer_jax.errors import UserError


class ScriptedPlanner:
  """Answers each replan with the next recorded reply and stays on the last one.

  Args:
    replies: a list of {"goal", "goal_spec", "rationale"} dicts (validated by the planner like any
      other reply).
  """
  name = 'scripted'

  def __init__(self, replies):
    if not replies:
      raise UserError('the scripted planner needs at least one recorded goal; the list is empty.')
    self.replies = [dict(r) for r in replies]
    self.index = 0

  def propose(self, state, current_spec=None):
    """The next recorded reply; `state` and `current_spec` are ignored."""
    del state, current_spec
    reply = self.replies[min(self.index, len(self.replies) - 1)]
    self.index += 1
    return reply


def load_script(path):
  """Reads a JSON list of recorded replies; a missing or malformed file raises `UserError`."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise UserError(f'scripted goals file {path!r} does not exist; expected a JSON list of goals.')
  try:
    with open(path) as f:
      replies = json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise UserError(f'scripted goals file {path!r} is not valid JSON ({type(e).__name__}); '
                    'expected a list of {"goal", "goal_spec", "rationale"} objects.') from None
  if not isinstance(replies, list) or not all(isinstance(r, dict) for r in replies):
    raise UserError(f'scripted goals file {path!r} holds no list of objects; expected a list of '
                    '{"goal", "goal_spec", "rationale"} objects.')
  return replies

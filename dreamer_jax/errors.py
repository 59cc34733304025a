"""The error type for mistakes a user can fix, and the wrapper that turns it into one clear sentence."""

import sys


class UserError(Exception):
  """A user's mistake: a missing or wrong ROM, a corrupt state or checkpoint, a bad config value.

  The message is one sentence that names what was wrong and what was expected. Entry points print it
  without a traceback (see `run_main`).
  """


def run_main(main):
  """Wraps an absl `main(argv)` so that a `UserError` ends the program with its sentence, exit code 2."""

  def wrapped(argv):
    try:
      return main(argv)
    except UserError as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(2)

  return wrapped

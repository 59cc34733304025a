"""What the entry points share: the --config flag and `run`, so that a user's mistake on the command
line ends in one sentence on stderr and exit code 2, never a traceback.

The mistakes: a bad flag value or an unknown flag (absl would exit 1 and add a usage line), an
unknown preset (configs raise `UserError` inside config_flags' parsing, before `main`), a config
file that does not exist, a `--config.FIELD` override of a field the config lacks, and every
`UserError` that `main` raises (`dreamer_jax.errors.run_main`).
"""

import os
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from dreamer_jax.errors import UserError
from dreamer_jax.errors import run_main


def _fail(message):
  # absl's messages span lines when they quote a traceback; its last line is the one that says why.
  lines = [line.strip() for line in str(message).strip().splitlines() if line.strip()]
  sentence = lines[-1] if lines else 'bad command line'
  if not sentence.endswith('.'):
    sentence += '.'
  print(f'error: {sentence}', file=sys.stderr)
  sys.exit(2)


def _no_field(error):
  # ConfigDict raises AttributeError(KeyError("'name'\nDid you mean ...?")) for the first part of
  # the override's path that it lacks.
  while error.args and isinstance(error.args[0], BaseException):
    error = error.args[0]
  lines = str(error.args[0] if error.args else error).splitlines() or ['?']
  name = lines[0].strip('"\'')
  hint = ''.join(f' ({line.strip()[:1].lower()}{line.strip()[1:]})' for line in lines[1:2])
  return (f'a --config.FIELD=VALUE override names {name!r}, which the config does not have{hint}; '
          'expected a field that the config file (configs/v3.py) defines')


def define_config(default='configs/v3.py', help_string=None):
  """`config_flags.DEFINE_config_file('config', ...)` with `lock_config=True`.

  With --config absent, config_flags applies the --config.FIELD overrides to the default while the
  flag is defined, at import: a field the config lacks is reported here.
  """
  help_string = help_string or ('Config file and preset: configs/v3.py[:NAME] (see its docstring); '
                                'fields are overridden with --config.FIELD=VALUE.')
  try:
    return config_flags.DEFINE_config_file('config', default, help_string, lock_config=True)
  except (AttributeError, KeyError) as e:
    _fail(_no_field(e))
  except UserError as e:
    _fail(e)


def parse_flags(argv):
  """absl's flag parsing, every user mistake in one sentence (exit code 2)."""
  try:
    rest = flags.FLAGS(argv)
  except flags.UnrecognizedFlagError as e:
    if str(getattr(e, 'flagname', '')).startswith('config.') and 'config' in flags.FLAGS:
      # A --config flag without a default file (benchmark's) has no fields until --config is given.
      _fail(f'--{e.flagname} overrides a field of the config, so give the config too '
            '(--config=configs/v3.py[:PRESET] before it)')
    _fail(e)
  except flags.Error as e:
    _fail(e)
  except UserError as e:
    _fail(e)
  except (AttributeError, KeyError) as e:
    _fail(_no_field(e))
  flag = flags.FLAGS['config'] if 'config' in flags.FLAGS else None
  if flag is not None and flag.value is not None:
    path = config_flags.get_config_filename(flag).split(':', 1)[0]
    if not os.path.isfile(path):
      _fail(f'config file {path!r} does not exist; expected a path like configs/v3.py[:PRESET], '
            'relative to the repository root')
  return rest


def run(main):
  """`app.run(main)` for an entry point: see the module docstring."""
  app.run(run_main(main), flags_parser=parse_flags)

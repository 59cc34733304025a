"""configs/v3.py: its presets, the recipe preset the launch script runs, the fields each section
hands to the code, and the config mistakes a user can make on the command line (one sentence,
exit code 2, also when config_flags parses the config before `main` runs)."""

import os
import re
import shutil
import subprocess

import pytest

from configs import v3
from dreamer_jax.envs import collector as collector_lib
from dreamer_jax.errors import UserError
from tests.test_experiments import REPO
from tests.test_experiments import assert_one_sentence
from tests.test_experiments import run


@pytest.mark.parametrize('preset', v3.PRESETS)
def test_every_preset_loads(preset):
  config = v3.get_config(preset)
  assert config.world_model.batch_size >= 1 and config.replay.chunk_size >= 1


def test_small_shrinks_the_world_model():
  small, default = v3.get_config('small').world_model, v3.get_config().world_model
  assert small.deter < default.deter and small.batch_size < default.batch_size


def test_wm_tinymon_is_the_recipe_behind_readmes_drift_figure():
  wm, default = v3.get_config('wm_tinymon').world_model, v3.get_config().world_model
  assert wm.lr == 3e-4 and wm.train_steps == 2_251
  # Otherwise the default model: the figure's 21.8M parameters.
  assert {k: v for k, v in wm.items() if k not in ('lr', 'train_steps')} == {
      k: v for k, v in default.items() if k not in ('lr', 'train_steps')}
  # big_vision's way: the docstring gives the command, the hardware and the result.
  entry = v3.__doc__[v3.__doc__.index('configs/v3.py:wm_tinymon:'):]
  for text in ('launch/world_model_tinymon.sh', '--config=configs/v3.py:wm_tinymon',
               '2 CPU cores', '3.5 CPU hours', '1.39 tiles', 'mode latents', '2,251 updates'):
    assert text in entry, text
  with open(os.path.join(REPO, 'launch', 'world_model_tinymon.sh'), encoding='utf-8') as f:
    assert '--config=configs/v3.py:wm_tinymon' in f.read()


def test_unknown_preset_is_one_sentence():
  with pytest.raises(UserError) as e:
    v3.get_config('smal')
  message = str(e.value)
  assert "'smal'" in message and "'small'" in message and "'wm_tinymon'" in message
  assert '\n' not in message and message.endswith('.')


def test_replay_has_no_fields_nothing_reads():
  # Batches are shaped by world_model.batch_size and sequence_length.
  assert set(v3.get_config().replay) == {'capacity', 'chunk_size'}
  assert set(v3.get_config().collector) == {'num_workers', 'save_every'}


@pytest.mark.parametrize('field,value,message', [
    ('num_workers', -1, r'collector num_workers=-1 must be 0 \(one emulator per core\) or a '
     r'positive count of emulators\.'),
    ('save_every', 0, 'collector save_every=0 must be at least 1')])
def test_collector_reads_its_section(field, value, message):
  config = v3.get_config()
  config.collector[field] = value
  with pytest.raises(UserError, match=message):
    collector_lib.Collector.from_config(config, replay=None)


def test_collectors_default_to_one_emulator_per_core(monkeypatch):
  default = v3.get_config().collector.num_workers
  assert default == 0
  for cores, workers in ((6, 6), (1, 1), (None, 1), (200, collector_lib.MAX_DEFAULT_WORKERS)):
    monkeypatch.setattr(os, 'cpu_count', lambda cores=cores: cores)
    assert collector_lib.resolve_workers(default) == workers
  assert collector_lib.resolve_workers(3) == 3   # A count given is kept.
  # The host presets scale with the host; the CI smoke run keeps its 2.
  for preset in ('gpu', 'tpu'):
    assert v3.get_config(preset).collector.num_workers == 0, preset
  assert v3.get_config('smoke').collector.num_workers == 2


@pytest.mark.parametrize('module,args,words', [
    # Parsed while absl reads the command line, before main: config_flags would wrap it in a
    # traceback-carrying ValueError.
    ('benchmark', ['--config=configs/v3.py:smal'], ["'smal'", "'small'"]),
    ('plan', ['--config=configs/v3.py:wm_tinymo'], ["'wm_tinymo'", "'wm_tinymon'"]),
    # Without --config, config_flags applies overrides to the default at import.
    ('plan', ['--config.world_model.deterr=8'], ["'deterr'"]),
    ('collect_demos', ['--config=configs/v3.py', '--config.replay.capacityy=8', '--out=x'],
     ["'capacityy'"]),
    ('collect_demos', ['--config=configs/v4.py', '--out=x'], ["'configs/v4.py'"]),
    # benchmark's --config has no default file (--quick picks the preset), so overrides need it.
    ('benchmark', ['--config.collector.num_workers=3'], ['--config=configs/v3.py']),
    ('collect_demos', ['--config.world_model.lr=fast', '--out=x'], ['lr', 'fast']),
])
def test_config_mistakes_on_the_command_line_are_one_sentence(module, args, words):
  assert_one_sentence(run(module, *args), *words)


def test_replay_capacity_below_a_chunk_is_one_sentence(tmp_path):
  proc = run('collect_demos', '--policy', 'random', '--max_steps', 5, '--out', tmp_path / 'demos',
             '--config.replay.capacity=16')
  assert_one_sentence(proc, 'capacity=16', 'chunk_size (256)')


def test_launch_scripts_parse_and_pass_shellcheck():
  scripts = [os.path.join(REPO, 'launch', name) for name in sorted(os.listdir(
      os.path.join(REPO, 'launch'))) if name.endswith('.sh')]
  scripts.append(os.path.join(REPO, '.ci', 'run'))
  for script in scripts:
    proc = subprocess.run(['bash', '-n', script], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
  if shutil.which('shellcheck') is None:
    pytest.skip('shellcheck is not installed (.ci/run installs it)')
  proc = subprocess.run(['shellcheck', *scripts], capture_output=True, text=True, check=False)
  assert proc.returncode == 0, proc.stdout


def test_the_library_never_imports_configs():
  # Entry points load a config and pass it in; the library takes sections or plain values.
  offenders = []
  for folder, _, names in os.walk(os.path.join(REPO, 'dreamer_jax')):
    for name in names:
      if name.endswith('.py'):
        with open(os.path.join(folder, name), encoding='utf-8') as f:
          if re.search(r'^\s*(from configs\b|import configs\b)', f.read(), re.MULTILINE):
            offenders.append(name)
  assert not offenders

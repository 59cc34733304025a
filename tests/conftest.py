"""Test set-up: two fake CPU devices for the data-parallel tests (must be set before JAX starts), and
tinymon's start-state cache in a temporary directory, never the user's home."""

import os

import pytest

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=2')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')


@pytest.fixture(scope='session', autouse=True)
def start_state_cache(tmp_path_factory):
  """$DREAMER_JAX_CACHE for the whole run (subprocesses and collector workers inherit it): the start
  state is generated once per run, in a directory pytest owns."""
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv('DREAMER_JAX_CACHE', str(tmp_path_factory.mktemp('dreamer_jax_cache')))
    yield os.environ['DREAMER_JAX_CACHE']

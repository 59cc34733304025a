"""Test set-up: two fake CPU devices for the data-parallel tests (must be set before JAX starts)."""

import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=2')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

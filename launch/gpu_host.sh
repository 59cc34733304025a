#!/usr/bin/env bash
# The main command on one GPU host (this machine, or HOST over ssh): install with CUDA wheels, run
# the `gpu` preset, resumable (re-run the same command after any stop).
#
#   bash launch/gpu_host.sh [--config.FIELD=value ...]              # here
#   HOST=user@gpu-box bash launch/gpu_host.sh                       # there; the workdir is fetched
#
# Environment: HOST, PRESET (default gpu), WORKDIR (default runs/gpu).
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${PRESET:-gpu}"
workdir="${WORKDIR:-runs/gpu}"
if [[ -z "${HOST:-}" ]]; then
  exec bash launch/run.sh --accelerator cuda12 experiments.dreamer \
    --config=configs/v3.py:"$preset" --workdir="$workdir" "$@"
fi
overrides="$(printf ' %q' "$@")"
tar czf /tmp/dreamer_jax_src.tgz --exclude=./runs --exclude=./.git .
scp /tmp/dreamer_jax_src.tgz "$HOST":
# shellcheck disable=SC2029  # The command is meant to expand here, on this side.
ssh "$HOST" "set -e; mkdir -p dreamer_jax && tar xzf dreamer_jax_src.tgz -C dreamer_jax &&
  cd dreamer_jax && bash launch/run.sh --accelerator cuda12 experiments.dreamer \
  --config=configs/v3.py:$preset --workdir=$workdir $overrides"
mkdir -p "$(dirname "$workdir")"
scp -r "$HOST":dreamer_jax/"$workdir" "$(dirname "$workdir")"

#!/usr/bin/env bash
# The main command on a TPU VM slice: create it, copy this checkout, install, run on every worker,
# fetch the workdir, delete the VM (also when the run fails).
#
#   NAME=dreamer-v4-8 ZONE=us-central2-b TYPE=v4-8 bash launch/tpu_vm.sh [--config.FIELD=value ...]
#
# Environment: NAME, ZONE, TYPE (the accelerator type, e.g. v4-8, v5litepod-8), VERSION (the TPU
# VM software, default tpu-ubuntu2204-base), PRESET (default tpu), WORKDIR (default runs/tpu),
# KEEP=1 keeps the VM. Needs gcloud with a project set. Multi-host slices call
# jax.distributed.initialize() on every worker (DREAMER_JAX_MULTIHOST=1: launch/run.sh and
# dreamer_jax/distributed.py). Orbax writes checkpoints from worker 0 only, so a multi-host
# WORKDIR on each worker's own disk is one sitting: resuming needs a directory every worker sees
# (there worker i > 0 keeps its replay, progress and logs in WORKDIR/process_<i>).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${NAME:?set NAME}" "${ZONE:?set ZONE}" "${TYPE:?set TYPE}"
version="${VERSION:-tpu-ubuntu2204-base}"
preset="${PRESET:-tpu}"
workdir="${WORKDIR:-runs/tpu}"

gcloud compute tpus tpu-vm create "$NAME" --zone="$ZONE" --accelerator-type="$TYPE" --version="$version"
cleanup() {
  if [[ "${KEEP:-0}" != "1" ]]; then
    gcloud compute tpus tpu-vm delete "$NAME" --zone="$ZONE" --quiet
  fi
}
trap cleanup EXIT

tar czf /tmp/dreamer_jax_src.tgz --exclude=./runs --exclude=./.git .
gcloud compute tpus tpu-vm scp /tmp/dreamer_jax_src.tgz "$NAME":~/ --zone="$ZONE" --worker=all
# Extra arguments are passed on to experiments.dreamer (quoted for the remote shell).
overrides="$(printf ' %q' "$@")"
gcloud compute tpus tpu-vm ssh "$NAME" --zone="$ZONE" --worker=all --command="
  set -e; mkdir -p dreamer_jax && tar xzf dreamer_jax_src.tgz -C dreamer_jax && cd dreamer_jax &&
  DREAMER_JAX_MULTIHOST=1 bash launch/run.sh --accelerator tpu experiments.dreamer \
    --config=configs/v3.py:$preset --workdir=$workdir $overrides"
mkdir -p "$(dirname "$workdir")"
gcloud compute tpus tpu-vm scp --recurse "$NAME":~/dreamer_jax/"$workdir" "$(dirname "$workdir")" \
  --zone="$ZONE" --worker=0

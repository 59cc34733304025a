#!/usr/bin/env bash
# Runs a dreamer_jax entry point on a GPU host or a TPU VM, making the virtualenv first (idempotent).
#
#   bash launch/run.sh [--accelerator cpu|cuda12|tpu] experiments.NAME --config=configs/v3.py --workdir=runs/x
#
# On a multi-host TPU pod slice, run it on every host (gcloud ... tpu-vm ssh --worker=all --command=...)
# with DREAMER_JAX_MULTIHOST=1 so that jax.distributed.initialize() is called before anything else.
set -euo pipefail
cd "$(dirname "$0")/.."

accelerator=cpu
if [[ "${1:-}" == "--accelerator" ]]; then
  accelerator="$2"
  shift 2
fi
if [[ $# -lt 1 ]]; then
  echo "usage: bash launch/run.sh [--accelerator cpu|cuda12|tpu] experiments.NAME [flags...]" >&2
  exit 2
fi

venv="${DREAMER_JAX_VENV:-$HOME/.venvs/dreamer_jax}"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
# shellcheck disable=SC1091
. "$venv/bin/activate"
stamp="$venv/.installed-$(sha1sum requirements.txt | cut -c1-12)-$accelerator"
if [[ ! -f "$stamp" ]]; then
  pip install -q -r requirements.txt
  case "$accelerator" in
    cpu) ;;
    cuda12) pip install -q "jax[cuda12]==$(python -c 'import jax; print(jax.__version__)')" ;;
    tpu) pip install -q "jax[tpu]==$(python -c 'import jax; print(jax.__version__)')" ;;
    *) echo "unknown accelerator '$accelerator'; expected cpu, cuda12 or tpu" >&2; exit 2 ;;
  esac
  touch "$stamp"
fi

module="$1"
shift
if [[ "${DREAMER_JAX_MULTIHOST:-0}" == "1" ]]; then
  # dreamer_jax.distributed reads the same variable (and checks it); the entry point's own call is
  # then a no-op.
  exec python -c 'import runpy, sys; from dreamer_jax import distributed; distributed.maybe_initialize(); sys.argv = sys.argv[1:]; runpy.run_module(sys.argv[0], run_name="__main__")' "$module" "$@"
fi
exec python -m "$module" "$@"

#!/usr/bin/env bash
# The tinymon world-model recipe end to end: training data, held-out data, training, evaluation.
# The model and its budget are the configs/v3.py:wm_tinymon preset (its docstring: hardware and the
# expected drift, 1.39 tiles after 2,251 updates).
#
#   bash launch/world_model_tinymon.sh [RUNS_DIR]          (default runs/)
#
# Environment: MINUTES (a wall-clock budget for this session's training; default none: train to the
# preset's train_steps), PYTHON (default python), and any extra flags for train_world_model in
# TRAIN_FLAGS (e.g. "--config.world_model.batch_size=64" on a GPU). Data collection takes ~3
# minutes on one CPU core and is skipped for a directory that already exists; training resumes from
# RUNS_DIR/wm's latest checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-runs}"
py="${PYTHON:-python}"
demos="$runs/demos"

collect() {  # collect OUT FLAGS...: appends one recording to OUT.
  local out="$1"
  shift
  "$py" -m experiments.collect_demos --out "$out" "$@"
}

if [[ ! -d "$demos/wm_train" ]]; then
  # ~150k steps: the expert with 25% and 50% random actions through the whole game, random play from
  # power-on, and the plain expert.
  collect "$demos/wm_train" --policy explore --epsilon 0.25 --episodes 10 --max_steps 20000 --config.seed=100
  collect "$demos/wm_train" --policy explore --epsilon 0.5 --episodes 8 --max_steps 12000 --config.seed=200
  collect "$demos/wm_train" --policy random --episodes 40 --max_steps 1000 --config.seed=300
  collect "$demos/wm_train" --policy expert --episodes 3 --config.seed=0
fi
if [[ ! -d "$demos/heldout_random" ]]; then   # Seeds no training recording uses.
  collect "$demos/heldout_random" --policy random --episodes 4 --max_steps 600 --config.seed=7
fi
if [[ ! -d "$demos/heldout_explore" ]]; then
  collect "$demos/heldout_explore" --policy explore --epsilon 0.25 --episodes 1 --config.seed=900
fi

# TRAIN_FLAGS is split into words on purpose (several flags in one variable).
# shellcheck disable=SC2086
"$py" -m experiments.train_world_model --config=configs/v3.py:wm_tinymon --workdir="$runs/wm" \
  --replay="$demos/wm_train" ${MINUTES:+--minutes="$MINUTES"} ${TRAIN_FLAGS:-}
for heldout in heldout_random heldout_explore; do
  "$py" -m experiments.evaluate --workdir="$runs/wm" --replay="$demos/$heldout" \
    --png="$runs/wm/open_loop_$heldout.png" | tee "$runs/wm/eval_$heldout.json"
done

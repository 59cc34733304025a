#!/usr/bin/env bash
# How pretrained/tinymon was made, step by step (2-core CPU: ~5 min of data, ~60 min of world model,
# ~15 min of behaviour cloning, ~50 min of RL cycles), then exported. Re-running resumes each step.
#
#   bash launch/pretrained_tinymon.sh [RUNS_DIR]          (default runs/tm; writes RUNS_DIR/pretrained)
#
# Environment: PYTHON (default python).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-runs/tm}"
py="${PYTHON:-python}"
demos="$runs/demos"

collect() {  # collect OUT FLAGS...: appends one recording to OUT.
  local out="$1"
  shift
  "$py" -m experiments.collect_demos --out "$out" "$@"
}

if [[ ! -d "$demos/train" ]]; then
  # 105k labelled steps: System 2 (offline planner) driving the controller, with 0/25/50% random
  # executed actions (the controller's choice is the label), and random play for coverage.
  collect "$demos/train" --policy planner --epsilon 0 --episodes 3 --max_steps 20000 --config.seed=0
  collect "$demos/train" --policy planner --epsilon 0.25 --episodes 8 --max_steps 20000 --config.seed=100
  collect "$demos/train" --policy planner --epsilon 0.5 --episodes 4 --max_steps 12000 --config.seed=200
  collect "$demos/train" --policy random --episodes 30 --max_steps 1000 --config.seed=300
fi
if [[ ! -d "$demos/heldout" ]]; then   # Seeds no training recording uses.
  collect "$demos/heldout" --policy planner --epsilon 0.25 --episodes 1 --max_steps 20000 --config.seed=900
  collect "$demos/heldout_random" --policy random --episodes 4 --max_steps 600 --config.seed=7
fi
"$py" -m experiments.train_world_model --config=configs/v3.py:cpu --workdir="$runs" \
  --replay="$demos/train" --steps=1400 --config.world_model.checkpoint_every=200 \
  --config.world_model.log_every=25
# The main command on that world model and replay: behaviour cloning first (no RL cycles).
"$py" -m experiments.dreamer --config=configs/v3.py:cpu --workdir="$runs" \
  --config.dreamer.demos="$demos/train" --config.dreamer.wm_pretrain_steps=1400 \
  --config.agent.bc_steps=2500 --config.agent.critic_warmup=0 --config.dreamer.cycles=0
# Then RL: a critic warm-up and 10 cycles of {512 real steps by System 1 + System 2, 32 world-model
# and 32 PPO updates in imagination (KL 0.1 to the clone)}, then the evaluation.
"$py" -m experiments.dreamer --config=configs/v3.py:cpu --workdir="$runs" \
  --config.dreamer.demos="$demos/train" --config.dreamer.wm_pretrain_steps=1400 \
  --config.agent.bc_steps=2500 --config.agent.critic_warmup=100 --config.dreamer.cycles=10 \
  --config.dreamer.eval_every=100 --config.agent.bc_kl=0.1
"$py" -m experiments.export --workdir="$runs" --out="$runs/pretrained"
"$py" -m experiments.evaluate --workdir="$runs/pretrained" --agent_only --episodes=3 \
  --replay="$demos/heldout" --json

#!/usr/bin/env bash
# How pretrained/tinymon was made: the main command from nothing on the `cpu` preset with shorter
# budgets (2-core CPU, ~38 minutes: ~1 min of demonstrations, ~24 min of world model, ~4 min of
# behaviour cloning, ~7 min of critic warm-up and 8 RL cycles, ~2 min of evaluation), then
# exported to float16. Re-running resumes where it stopped.
#
#   bash launch/pretrained_tinymon.sh [WORKDIR [--config.FIELD=value ...]]
#                                      (default runs/cpu8; writes WORKDIR/pretrained)
#
# Environment: PYTHON (default python).
set -euo pipefail
cd "$(dirname "$0")/.."
workdir="${1:-runs/cpu8}"
shift || true   # The rest: overrides of the main command's config.
py="${PYTHON:-python}"
# 90k demonstration steps (System 2, the offline planner, driving tinymon's controller in 12
# episodes with 0/25/50% random executed actions, labelled; 30 random episodes), 1,600 world-model
# updates, 2,500 of behaviour cloning, 100 critic warm-up, then 8 cycles of {512 real steps by
# System 1 + System 2, 32 world-model and 32 PPO updates in imagination (KL 0.1 to the clone)},
# then 5 evaluation episodes of the agent and its clone.
"$py" -m experiments.dreamer --config=configs/v3.py:cpu --workdir="$workdir" \
  --config.dreamer.wm_pretrain_steps=1600 --config.agent.bc_steps=2500 \
  --config.agent.critic_warmup=100 --config.dreamer.cycles=8 --config.dreamer.eval_every=100 \
  --config.agent.bc_kl=0.1 --config.dreamer.demo_episodes=4 --config.dreamer.random_episodes=30 \
  --config.dreamer.eval_episodes=5 "$@"
"$py" -m experiments.export --workdir="$workdir" --out="$workdir/pretrained"
"$py" -m experiments.evaluate --workdir="$workdir/pretrained" --agent_only --json

#!/usr/bin/env bash
# Ablations as lists of config overrides: one experiments.dreamer run per line of ABLATIONS, each in
# its own workdir, then a table of their final evaluations (eval/final.json).
#
#   PRESET=cpu bash launch/sweep.sh [RUNS_DIR]         (default runs/sweep; re-running resumes each)
#
# Environment: PRESET (default cpu), PYTHON (default python), ONLY (run only the ablation of this
# name), TABLE_ONLY=1 (print the table of what exists, train nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-runs/sweep}"
py="${PYTHON:-python}"
preset="${PRESET:-cpu}"

# name | overrides (space-separated --config.FIELD=value)
ABLATIONS="
baseline|
pixels_only|--config.world_model.use_ram=False
ppo|--config.agent.actor_loss=ppo
grpo|--config.agent.actor_loss=grpo
reinforce|--config.agent.actor_loss=reinforce
gumbel|--config.world_model.latent_grad=gumbel
no_system2|--config.planner.backend=scripted --config.planner.scripted_goals=$runs/explore_only.json
no_bc|--config.agent.bc_steps=0
"

if [[ "${TABLE_ONLY:-0}" != "1" ]]; then
  mkdir -p "$runs"
  # Without System 2: one fixed goal, explore anywhere, for the whole run.
  echo '[{"goal": "Explore.", "goal_spec": {"kind": "explore", "map": null, "x": null, "y": null},
    "rationale": "no planner"}]' > "$runs/explore_only.json"
  while IFS='|' read -r name overrides; do
    [[ -z "$name" ]] && continue
    [[ -n "${ONLY:-}" && "$name" != "$ONLY" ]] && continue
    echo "== $name: $overrides" >&2
    # The overrides are split into words on purpose (several flags per line).
    overrides="${overrides//\$runs/$runs}"
    # shellcheck disable=SC2086
    "$py" -m experiments.dreamer --config=configs/v3.py:"$preset" --workdir="$runs/$name" $overrides
  done <<< "$ABLATIONS"
fi

"$py" - "$runs" <<'PY'
import glob, json, os, sys
rows = []
for path in sorted(glob.glob(os.path.join(sys.argv[1], '*', 'eval', 'final.json'))):
  r = json.load(open(path))
  bc = r.get('bc', {})
  rows.append((path.split(os.sep)[-3], r['badges'], r['species_owned'], r['mean_return'],
               bc.get('badges', '-'), r.get('drift_tiles', '-'), r['env_steps']))
print('| ablation | badges | species | mean return | BC badges | drift (tiles) | env steps |')
print('|---|---|---|---|---|---|---|')
for row in rows:
  print('| ' + ' | '.join(str(x) for x in row) + ' |')
PY

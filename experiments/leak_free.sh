#!/usr/bin/env bash
# The leak-free Table 1: the paper's sweep (alpha = 0.5, the 12 eps, the authors' configuration)
# with the perturbation's gradient taken at the model's own clean prediction (adv_label=predicted),
# so the step carries no label; SEEDS per eps (default 3), JOBS at a time (default 1).
#
#   bash experiments/leak_free.sh                 # 11 eps x 3 seeds = 33 runs (eps=0 is shared)
#   SEEDS=5 JOBS=2 bash experiments/leak_free.sh
#
# At eps=0 there is no step, so the runs are Table 1's: its committed eps=0 runs (seeds 1..SEEDS)
# are copied into the results folder first, and run_and_publish.sh then skips them. Everything else
# is experiments/table1.sh: resumable, each finished run published to
# experiments/results/table1-adv_label=predicted/ with the table, the figures, the tests against
# eps=0 and the robust errors under the predicted-label attacks (python -m lstm_adv.results).
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-3}
RESULTS=${RESULTS_DIR:-experiments/results}
OUT="$RESULTS/table1-adv_label=predicted"
for seed in $(seq 1 "$SEEDS"); do
  src="experiments/results/table1/eps=0.0/seed=$seed"
  if [ -f "$src/metrics.json" ] && [ ! -f "$OUT/eps=0.0/seed=$seed/metrics.json" ]; then
    mkdir -p "$OUT/eps=0.0/seed=$seed"
    cp "$src"/config.json "$src"/metrics.json "$src"/history.csv "$OUT/eps=0.0/seed=$seed/"
  fi
done
SEEDS=$SEEDS JOBS=${JOBS:-1} bash experiments/table1.sh adv_label=predicted "$@"

#!/usr/bin/env bash
# The random hyperparameter search of the paper's section 5.2 (which its authors could not run):
# DRAWS configurations drawn from the ranges in lstm_adv/sweeps/random_search.py (RANDOM_SPACE), each trained
# adversarially and plainly (eps=0) with the same draw, JOBS at a time; then the best adversarial
# and the best plain configuration (chosen on validation) and their test errors.
#
#   bash experiments/random_search.sh                    # 20 draws = 40 runs, 2 at a time
#   DRAWS=50 JOBS=4 SEARCH_SEED=1 bash experiments/random_search.sh
#   bash experiments/random_search.sh max_epochs=5 optimizer=adadelta   # keys pass through / fix a key
#
# Resumable like experiments/table1.sh; the summary is also written to <sweep dir>/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DRAWS=${DRAWS:-20}
JOBS=${JOBS:-2}
SEARCH_SEED=${SEARCH_SEED:-0}
PYTHON=${PYTHON:-python}

COMMANDS=$("$PYTHON" -m lstm_adv.sweep plan random draws="$DRAWS" search_seed="$SEARCH_SEED" "$@")
SWEEP_DIR=$(dirname "$COMMANDS")
status=0
"$PYTHON" -m lstm_adv.sweep run "$COMMANDS" jobs="$JOBS" || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then exit "$status"; fi
"$PYTHON" -m lstm_adv.sweep summary "$SWEEP_DIR"
exit "$status"

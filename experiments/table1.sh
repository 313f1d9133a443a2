#!/usr/bin/env bash
# Regenerate Table 1 of Caswell, Nie & Sen (2015): alpha = 0.5, eps in 0, 0.1, ..., 1.0, 15,
# SEEDS runs per eps, JOBS at a time, then the table (Markdown, CSV, plot) with significance tests.
#
#   bash experiments/table1.sh                      # 12 eps x 5 seeds = 60 runs, 2 at a time, in the
#                                                   # authors' configuration (preset=authors max_epochs=150)
#   bash experiments/table1.sh preset= max_epochs=100   # the tutorial-init table instead
#   SEEDS=10 JOBS=4 bash experiments/table1.sh      # more seeds, more at once
#   bash experiments/table1.sh max_epochs=5         # key=value pass through to every run
#                                                   # (its own folder: runs/table1-max_epochs=5)
#   bash experiments/table1.sh eps_grid=0,0.5 sweep_dir=runs/quick   # sweep options of `sweep plan`
#
# Resumable: run it again and finished runs are skipped, interrupted runs continue from their
# checkpoint, crashed runs are retried. Runs from the repository root; PYTHON picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-5}
JOBS=${JOBS:-2}
PYTHON=${PYTHON:-python}

COMMANDS=$("$PYTHON" -m lstm_adv.sweep plan table1 seeds="$SEEDS" "$@")
SWEEP_DIR=$(dirname "$COMMANDS")
status=0
"$PYTHON" -m lstm_adv.sweep run "$COMMANDS" jobs="$JOBS" || status=$?
# 1 = some runs failed: they are reported, and shown as failed in the table. Anything else
# (2 = refused, 130/143 = interrupted) stops here; run the script again to continue.
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then exit "$status"; fi
"$PYTHON" -m lstm_adv.results "$SWEEP_DIR"
exit "$status"

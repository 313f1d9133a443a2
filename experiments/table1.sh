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
# checkpoint, crashed runs are retried. Finished runs' small files are copied to
# $RESULTS_DIR/<sweep folder name>/ (experiments/results/table1/ by default) and the table is
# written there; runs already published there are not run again, so the sweep resumes from git on a
# new machine. Runs from the repository root; PYTHON picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-5}
JOBS=${JOBS:-2}
PYTHON=${PYTHON:-python}

COMMANDS=$("$PYTHON" -m lstm_adv.sweep plan table1 seeds="$SEEDS" "$@")
SWEEP_DIR=$(dirname "$COMMANDS")
status=0
JOBS=$JOBS PYTHON=$PYTHON bash experiments/run_and_publish.sh "$COMMANDS" "$SWEEP_DIR" "$(basename "$SWEEP_DIR")" || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then exit "$status"; fi
# The local table as well: it shows this machine's failed runs, which are never published.
if find "$SWEEP_DIR" -mindepth 2 -name metrics.json | grep -q .; then
  "$PYTHON" -m lstm_adv.results "$SWEEP_DIR"
fi
exit "$status"

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
#   bash experiments/table1.sh data=my.csv preset= max_epochs=20       # another corpus (runs/table1-data=my.csv,...)
#
# Resumable: run it again and finished runs are skipped, interrupted runs continue from their
# checkpoint, crashed runs are retried. On IMDB, finished runs' small files are copied to
# $RESULTS_DIR/<sweep folder name>/ (experiments/results/table1/ by default) and the table is
# written there; runs already published there are not run again, so the sweep resumes from git on a
# new machine. On another corpus (data=toy, data=PATH) nothing is published unless RESULTS_DIR is
# set: experiments/results/ holds the paper's IMDB tables; the table is written in the sweep folder.
# The table is printed once (the published one, else the local one). Runs from the repository root
# (a relative data=PATH is read from where the script was started); PYTHON picks the interpreter.
set -euo pipefail
HERE=$PWD
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-5}
JOBS=${JOBS:-2}
PYTHON=${PYTHON:-python}

imdb=1 args=()
for arg in "$@"; do
  case $arg in
    data=imdb) imdb=1 ;;
    data=toy) imdb=0 ;;
    data=/*) imdb=0 ;;
    data=?*) imdb=0; arg="data=$HERE/${arg#data=}" ;;   # the cd above must not change which file it names
  esac
  args+=("$arg")
done

COMMANDS=$("$PYTHON" -m lstm_adv.sweep plan table1 seeds="$SEEDS" ${args[@]+"${args[@]}"})
SWEEP_DIR=$(dirname "$COMMANDS")
status=0
if [ "$imdb" -eq 1 ] || [ -n "${RESULTS_DIR:-}" ]; then
  JOBS=$JOBS PYTHON=$PYTHON bash experiments/run_and_publish.sh "$COMMANDS" "$SWEEP_DIR" "$(basename "$SWEEP_DIR")" \
    || status=$?
  if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then exit "$status"; fi
  # The local table as well (not printed again): it shows this machine's failed runs, which are never published.
  if find "$SWEEP_DIR" -mindepth 2 -name metrics.json | grep -q .; then
    "$PYTHON" -m lstm_adv.results "$SWEEP_DIR" > /dev/null
  fi
  exit "$status"
fi
echo "data= is not imdb: nothing is published (set RESULTS_DIR to publish); the table goes to $SWEEP_DIR" >&2
"$PYTHON" -m lstm_adv.sweep run "$COMMANDS" jobs="$JOBS" || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then exit "$status"; fi
if find "$SWEEP_DIR" -mindepth 2 -name metrics.json | grep -q .; then
  "$PYTHON" -m lstm_adv.results "$SWEEP_DIR"
fi
exit "$status"

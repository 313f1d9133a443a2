#!/usr/bin/env bash
# Copy the small files of every finished run under RUNS_DIR into $RESULTS_DIR/NAME/ (default
# experiments/results/NAME/, relative to the repository root or absolute), with no
# local absolute paths (lstm_adv.rundir publish), so a sweep's results live in git and anyone can
# re-aggregate them with `python -m lstm_adv.results experiments/results/NAME`.
#
#   bash experiments/publish_runs.sh RUNS_DIR NAME
#
# Only runs whose metrics.json says "ok" are copied (config.json, metrics.json, history.csv; never
# .npz), at their path below RUNS_DIR (runs/table1/eps=0.5/seed=1 -> experiments/results/table1/
# eps=0.5/seed=1). Running again copies the runs finished since.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS_DIR=${1:?usage: bash experiments/publish_runs.sh RUNS_DIR NAME}
NAME=${2:?usage: bash experiments/publish_runs.sh RUNS_DIR NAME}
PYTHON=${PYTHON:-python}
RESULTS=${RESULTS_DIR:-experiments/results}
RUNS_DIR=${RUNS_DIR%/}
n=0
while IFS= read -r metrics; do
  run=$(dirname "$metrics")
  grep -q '"status": "ok"' "$metrics" || continue
  dest="$RESULTS/$NAME/${run#"$RUNS_DIR"/}"
  mkdir -p "$dest"
  for f in config.json metrics.json history.csv; do
    [ -f "$run/$f" ] && "$PYTHON" -m lstm_adv.rundir publish "$run/$f" "$dest/$f" > /dev/null
  done
  n=$((n + 1))
done < <(find "$RUNS_DIR" -mindepth 2 -name metrics.json | sort)
echo "published $n finished run(s) to $RESULTS/$NAME" >&2

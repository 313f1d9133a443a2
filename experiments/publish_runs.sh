#!/usr/bin/env bash
# Copy the small files of every finished run under RUNS_DIR into experiments/results/NAME/, with no
# local absolute paths (lstm_adv.rundir publish), so a sweep's results live in git and anyone can
# re-aggregate them with `python -m lstm_adv.results experiments/results/NAME`.
#
#   bash experiments/publish_runs.sh RUNS_DIR NAME
#
# Only runs whose metrics.json says "ok" are copied (config.json, metrics.json, history.csv; never
# .npz). Running again copies the runs finished since.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS_DIR=${1:?usage: bash experiments/publish_runs.sh RUNS_DIR NAME}
NAME=${2:?usage: bash experiments/publish_runs.sh RUNS_DIR NAME}
PYTHON=${PYTHON:-python}
n=0
for metrics in "$RUNS_DIR"/*/metrics.json; do
  [ -f "$metrics" ] || continue
  run=$(dirname "$metrics")
  grep -q '"status": "ok"' "$metrics" || continue
  dest="experiments/results/$NAME/$(basename "$run")"
  mkdir -p "$dest"
  for f in config.json metrics.json history.csv; do
    [ -f "$run/$f" ] && "$PYTHON" -m lstm_adv.rundir publish "$run/$f" "$dest/$f" > /dev/null
  done
  n=$((n + 1))
done
echo "published $n finished run(s) to experiments/results/$NAME" >&2

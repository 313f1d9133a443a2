#!/usr/bin/env bash
# Shared tail of the experiment scripts: run a commands file, copy the finished runs' small files
# to experiments/results/NAME/, and write the grouped table there.
#
#   bash experiments/run_and_publish.sh COMMANDS RUNS_DIR NAME BY_KEYS
#
# Exit status: the launcher's (0 all ok, 1 some runs failed; anything else stops before publishing).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
COMMANDS=$1 RUNS_DIR=$2 NAME=$3 BY=$4
status=0
"$PYTHON" -m lstm_adv.sweep run "$COMMANDS" jobs="${JOBS:-1}" || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then exit "$status"; fi
bash experiments/publish_runs.sh "$RUNS_DIR" "$NAME"
"$PYTHON" -m lstm_adv.results "experiments/results/$NAME" by="$BY"
exit "$status"

#!/usr/bin/env bash
# Shared tail of the experiment scripts: run a commands file, copy the finished runs' small files
# to $RESULTS_DIR/NAME/ (RESULTS_DIR: default experiments/results, relative to the repository root
# or absolute), and write the table there.
#
#   bash experiments/run_and_publish.sh COMMANDS RUNS_DIR NAME [BY_KEYS]
#
# COMMANDS lies in RUNS_DIR (as every sweep's commands file does). The launcher publishes each run
# as soon as it ends ok, and the ones finished earlier at its start (sweep run publish=), so a
# launcher started meanwhile in another folder skips them.
# Runs already published ($RESULTS_DIR/NAME/<run dir below RUNS_DIR>/metrics.json says
# "ok") are dropped from COMMANDS first, so a sweep resumes from git on a new machine.
# BY_KEYS empty: the Table 1 view; else `lstm_adv.results by=BY_KEYS` (ablation.md).
# Exit status: the launcher's (0 all ok, 1 some runs failed; anything else stops before publishing).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
COMMANDS=$1 RUNS_DIR=${2%/} NAME=$3 BY=${4:-}
RESULTS=${RESULTS_DIR:-experiments/results}
dropped=0
: > "$COMMANDS.todo"
while IFS= read -r line; do
  run=${line##*saveto=}; run=${run%% *}
  if [ "$run" != "$line" ] && grep -qs '"status": "ok"' "$RESULTS/$NAME/${run#"$RUNS_DIR"/}/metrics.json"; then
    dropped=$((dropped + 1)); continue
  fi
  echo "$line" >> "$COMMANDS.todo"
done < "$COMMANDS"
mv "$COMMANDS.todo" "$COMMANDS"
[ "$dropped" -eq 0 ] || echo "$dropped run(s) already published in $RESULTS/$NAME: not run again" >&2
status=0
if [ -s "$COMMANDS" ]; then
  "$PYTHON" -m lstm_adv.sweep run "$COMMANDS" jobs="${JOBS:-1}" publish="$RESULTS/$NAME" || status=$?
fi
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then exit "$status"; fi
"$PYTHON" -m lstm_adv.results "$RESULTS/$NAME" ${BY:+by="$BY"}
exit "$status"

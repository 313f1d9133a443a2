#!/usr/bin/env bash
# Shared tail of the experiment scripts: run a commands file, copy the finished runs' small files
# to $RESULTS_DIR/NAME/ (RESULTS_DIR: default experiments/results, relative to the repository root
# or absolute), and write the table there.
#
#   bash experiments/run_and_publish.sh COMMANDS RUNS_DIR NAME [BY_KEYS]
#   ... | bash experiments/run_and_publish.sh - RUNS_DIR NAME [BY_KEYS]
#
# COMMANDS lies in RUNS_DIR (as every sweep's commands file does); `-`: the commands come on
# standard input and are kept in RUNS_DIR/commands.txt (written whole, then renamed). The launcher
# publishes each run as soon as it ends ok, and the ones finished earlier at its start (sweep run
# publish=), so a launcher started meanwhile in another folder skips them.
# Runs already published ($RESULTS_DIR/NAME/<run dir below RUNS_DIR>/metrics.json says "ok" and
# holds every word attack the command asks) are not run again (the launcher's publish=), so a
# sweep resumes from git on a new machine; a published run without an asked word attack is
# attacked where its folder is, trained again where it is gone.
# Runs on another corpus than IMDB (a data= key other than data=imdb) need RESULTS_DIR: the default,
# experiments/results/, holds the paper's IMDB runs, which would be mixed with them (and a run
# whose folder name matches a committed IMDB run's would be skipped as published). Without it the
# script stops before running or writing anything (exit 2), as it does for a relative data= path
# that does not exist from the repository root, where it runs.
# BY_KEYS empty: the Table 1 view; else `lstm_adv.results by=BY_KEYS` (ablation.md).
# Exit status: the launcher's (0 all ok, 1 some runs failed; anything else stops before publishing).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
COMMANDS=$1 RUNS_DIR=${2%/} NAME=$3 BY=${4:-}
RESULTS=${RESULTS_DIR:-experiments/results}
if [ "$COMMANDS" = - ]; then
  lines=$(cat)
else
  lines=$(cat "$COMMANDS")
fi
while IFS= read -r line; do
  read -ra words <<< "$line"
  for word in ${words[@]+"${words[@]}"}; do
    case $word in data=imdb|data=) continue ;; data=*) ;; *) continue ;; esac
    corpus=${word#data=}
    if [ -z "${RESULTS_DIR:-}" ]; then
      echo "error: these runs train on data=$corpus, not IMDB, and $RESULTS/$NAME holds the paper's IMDB runs; set RESULTS_DIR to the folder to publish them in" >&2
      exit 2
    fi
    case $corpus in /*|toy) ;; *) if [ ! -e "$corpus" ]; then
      echo "error: data=$corpus: no such file or folder from the repository root, where the experiment scripts run; give its absolute path" >&2
      exit 2
    fi ;; esac
  done
done <<< "$lines"
if [ "$COMMANDS" = - ]; then
  mkdir -p "$RUNS_DIR"
  COMMANDS="$RUNS_DIR/commands.txt"
  if [ -n "$lines" ]; then printf '%s\n' "$lines"; fi > "$COMMANDS.tmp"
  mv "$COMMANDS.tmp" "$COMMANDS"
fi
status=0
if [ -s "$COMMANDS" ]; then
  "$PYTHON" -m lstm_adv.sweep run "$COMMANDS" jobs="${JOBS:-1}" publish="$RESULTS/$NAME" || status=$?
fi
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then exit "$status"; fi
"$PYTHON" -m lstm_adv.results "$RESULTS/$NAME" ${BY:+by="$BY"}
exit "$status"

#!/usr/bin/env bash
# Is the label in the perturbation what keeps adversarial runs on the one-class plateau?
# The authors' configuration with the perturbation's gradient taken at the model's own clean
# prediction (adv_label=predicted, no label in it) at an eps whose true-label runs never left
# the plateau (0.2) and one whose runs left it late (1.0); then experiments/leak_probe.py on the
# finished Table 1 and ablation runs it finds under $TABLE1_DIR and $ABLATION_DIR (their params.npz).
#
#   bash experiments/label_leak.sh                       # 3 runs, one at a time
#   JOBS=2 bash experiments/label_leak.sh
#
# Run directories go to $LEAK_DIR (default runs/label_leak); finished runs' small files are copied
# to experiments/results/label_leak/ with the table there; runs already committed are not run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
DIR=${LEAK_DIR:-runs/label_leak}
status=0
for run in "1.0 1 80" "0.2 1 80" "0.2 2 40"; do
  set -- $run
  echo "$PYTHON -m lstm_adv.train preset=authors eps=$1 seed=$2 adv_label=predicted max_epochs=$3 attack_eps= progress=0 saveto=$DIR/w2v-scaled_eps=$1_predicted_seed=$2"
done | JOBS=${JOBS:-1} PYTHON=$PYTHON bash experiments/run_and_publish.sh - "$DIR" label_leak adv_label || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then exit "$status"; fi
# The probe needs parameters (params.npz), which are never committed: it reads the run directories.
runs=$(ls -d "${TABLE1_DIR:-runs/table1}"/eps=*/seed=* "${ABLATION_DIR:-runs/ablation}"/*eps=[1-9]* \
  "${ABLATION_DIR:-runs/ablation}"/*eps=0.[1-9]* "$DIR"/*_seed=* 2>/dev/null | \
  while read -r d; do [ -f "$d/params.npz" ] && grep -qs '"status": "ok"' "$d/metrics.json" && echo "$d"; done || true)
if [ -n "$runs" ]; then
  { echo "<!-- bash experiments/label_leak.sh (LEAK_DIR, TABLE1_DIR, ABLATION_DIR: the run directories), experiments/leak_probe.py: errors on 1,000 seeded test reviews, dropout off, at each run's best parameters. -->"
    echo
    "$PYTHON" experiments/leak_probe.py $runs; } > experiments/results/label_leak/leak_probe.md
fi
exit "$status"

#!/usr/bin/env bash
# The comparison: the paper's method next to Miyato, Dai & Goodfellow (ICLR 2017) on one LSTM (the
# authors' configuration, preset=authors), all 25,000 training reviews cut to 100 tokens
# (maxlen_mode=truncate).
#
#   bash experiments/vat_comparison.sh                    # 6 methods: eps selection (seed 1), then seeds 2-3
#   SEEDS="" METHODS="plain vat" JOBS=2 bash experiments/vat_comparison.sh max_epochs=2   # a quick look
#   VAT_DIR=/tmp/v RESULTS_DIR=/tmp/r bash experiments/vat_comparison.sh data=toy   # key=value: every run
#
# Two stages, so that eps is chosen on the validation split and the test split is not looked at:
#   1. SELECT_SEED (default 1): every method at every eps of its grid (14 runs).
#   2. For each method, the eps whose stage-1 run has the lowest validation error
#      (`python -m lstm_adv.results ... pick=eps`), and SEEDS (default "2 3") at that eps (12 runs).
# Methods (keys after the method name; eps from the method's grid, EPS_<method> overrides it):
#   plain      eps=0
#   plain_norm eps=0 emb_norm=1                            (the normalisation alone: what Miyato's and
#                                                           VAT's runs gain from it, not from the perturbation)
#   paper      adv_norm=sign                               (Caswell et al. 2015)
#   miyato_at  adv_norm=l2 emb_norm=1 adv_emb_grad=1       (Miyato's adversarial training)
#   vat        vat=1 emb_norm=1 adv_emb_grad=1             (virtual adversarial training)
#   vat_unlab  the same with unlabelled=50000              (+ IMDB's train/unsup reviews)
# Grids: the sign step on the word2vec scale (std 0.144) where Table 1's runs left the plateau;
# with emb_norm=1 coordinates have unit variance and eps is a review's L2 length (Miyato: 5).
# The train error at each validation on 2,500 evenly spaced training reviews (train_err_size): on
# all 23,750 it cost about as much time as the training between two validations.
# Robustness: the predicted-label iterative attacks (10 steps) on 1,000 test reviews, radii in
# multiples of each model's median |embedded coordinate| (attack_relative=1), so that models with
# and without emb_norm meet attacks of the same relative size.
# Run directories go to $VAT_DIR (default runs/vat_comparison), the commands of the last stage run
# to its commands.txt; finished runs' small files to experiments/results/vat_comparison/ and the
# table to its ablation.md (on another corpus than IMDB: RESULTS_DIR/vat_comparison/, RESULTS_DIR required). Resumable: run it again,
# finished or published runs are skipped (the selection reads the published stage-1 runs).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
SELECT_SEED=${SELECT_SEED:-1}
SEEDS=${SEEDS-2 3}
METHODS=${METHODS:-plain plain_norm paper miyato_at vat vat_unlab}
JOBS=${JOBS:-1}
DIR=${VAT_DIR:-runs/vat_comparison}
RESULTS=${RESULTS_DIR:-experiments/results}
# Written as `python -m lstm_adv.results pick=eps` prints them (0.5, 3.0), so both stages' folders match.
EPS_plain=${EPS_plain:-0.0}
EPS_plain_norm=${EPS_plain_norm:-0.0}
EPS_paper=${EPS_paper:-0.2 0.5 1.0}
EPS_miyato_at=${EPS_miyato_at:-1.0 3.0 10.0}
EPS_vat=${EPS_vat:-1.0 3.0 10.0}
EPS_vat_unlab=${EPS_vat_unlab:-1.0 3.0 10.0}
DEFAULTS="preset=authors maxlen=100 maxlen_mode=truncate max_epochs=30 progress=0 attack_relative=1 attack_eps=0.05,0.2,1,5 attack_k=10 attack_size=1000 train_err_size=2500"
COMMON=""   # DEFAULTS less the keys the command line gives (a key given twice is refused)
for kv in $DEFAULTS; do
  given=0
  for arg in "$@"; do [ "${arg%%=*}" = "${kv%%=*}" ] && given=1; done
  [ "$given" -eq 1 ] || COMMON="$COMMON $kv"
done
BY=adv_norm,emb_norm,vat,unlabelled

keys_of() {
  case $1 in
    plain) echo "" ;;
    plain_norm) echo "emb_norm=1" ;;
    paper) echo "adv_norm=sign" ;;
    miyato_at) echo "adv_norm=l2 emb_norm=1 adv_emb_grad=1" ;;
    vat) echo "vat=1 emb_norm=1 adv_emb_grad=1" ;;
    vat_unlab) echo "vat=1 emb_norm=1 adv_emb_grad=1 unlabelled=50000" ;;
    *) echo "unknown method $1 (plain, plain_norm, paper, miyato_at, vat, vat_unlab)" >&2; return 2 ;;
  esac
}
line() {   # method eps seed [key=value ...]
  local method=$1 eps=$2 seed=$3; shift 3
  echo "$PYTHON -m lstm_adv.train$COMMON $(keys_of "$method") eps=$eps seed=$seed $* saveto=$DIR/${method}_eps=${eps}_seed=$seed"
}
for method in $METHODS; do keys_of "$method" > /dev/null || exit 2; done

# Stage 1: the eps grid of every method, one seed.
status=0
for method in $METHODS; do
  grid_var="EPS_$method"
  for eps in ${!grid_var}; do line "$method" "$eps" "$SELECT_SEED" "$@"; done
done | JOBS=$JOBS PYTHON=$PYTHON bash experiments/run_and_publish.sh - "$DIR" vat_comparison $BY || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then exit "$status"; fi
[ -n "$SEEDS" ] || exit "$status"

# Stage 2: each method's selected eps, the other seeds (collected first: a failed selection sets status).
stage2=""
for method in $METHODS; do
  if ! eps=$("$PYTHON" -m lstm_adv.results "$RESULTS"/vat_comparison/"${method}"_eps=*_seed="$SELECT_SEED" pick=eps); then
    echo "$method: no finished seed-$SELECT_SEED run to select eps from; its other seeds are not run" >&2
    status=1; continue
  fi
  echo "$method: eps=$eps selected on the validation split (seed $SELECT_SEED)" >&2
  for seed in $SEEDS; do stage2+=$(line "$method" "$eps" "$seed" "$@")$'\n'; done
done
status2=0
printf '%s' "$stage2" | JOBS=$JOBS PYTHON=$PYTHON bash experiments/run_and_publish.sh - "$DIR" vat_comparison $BY \
  || status2=$?
[ "$status2" -ne 0 ] && exit "$status2"
exit "$status"

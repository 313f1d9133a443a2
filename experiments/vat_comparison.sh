#!/usr/bin/env bash
# The comparison (not yet run to completion): the paper's method next to Miyato, Dai & Goodfellow (ICLR 2017)
# on one LSTM, all 25,000 training reviews cut to 100 tokens (maxlen_mode=truncate).
#
#   bash experiments/vat_comparison.sh                    # 5 methods x their eps grid x seeds 1-3
#   SEEDS="1" METHODS="plain vat" JOBS=2 bash experiments/vat_comparison.sh max_epochs=20
#
# Methods (keys after the method name; eps from the method's grid, EPS_<method> overrides it):
#   plain      eps=0
#   paper      adv_norm=sign                               (Caswell et al. 2015)
#   miyato_at  adv_norm=l2 emb_norm=1 adv_emb_grad=1       (Miyato's adversarial training)
#   vat        vat=1 emb_norm=1 adv_emb_grad=1             (virtual adversarial training)
#   vat_unlab  the same with unlabelled=50000              (+ IMDB's train/unsup reviews)
# The eps grids are first guesses, not tuned: the sign step acts on the tutorial's 0.01-scale
# embeddings; with emb_norm=1 coordinates have unit variance and eps is a review's L2 length.
# eps is to be chosen per method on the validation error; the table groups runs by method and eps.
# Run directories go to $VAT_DIR (default runs/vat_comparison); finished runs' small files to
# experiments/results/vat_comparison/. Resumable: run it again to skip finished runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
SEEDS=${SEEDS:-1 2 3}
METHODS=${METHODS:-plain paper miyato_at vat vat_unlab}
JOBS=${JOBS:-1}
DIR=${VAT_DIR:-runs/vat_comparison}
EPS_plain=${EPS_plain:-0}
EPS_paper=${EPS_paper:-0.001 0.005 0.01}
EPS_miyato_at=${EPS_miyato_at:-1 2 5}
EPS_vat=${EPS_vat:-1 2 5}
EPS_vat_unlab=${EPS_vat_unlab:-1 2 5}
COMMON="maxlen=100 maxlen_mode=truncate progress=0 attack_eps=0.01,0.1,0.5 attack_k=10"
mkdir -p "$DIR"
COMMANDS="$DIR/commands.txt"
: > "$COMMANDS.tmp"
for seed in $SEEDS; do
  for method in $METHODS; do
    case $method in
      plain) keys="" ;;
      paper) keys="adv_norm=sign" ;;
      miyato_at) keys="adv_norm=l2 emb_norm=1 adv_emb_grad=1" ;;
      vat) keys="vat=1 emb_norm=1 adv_emb_grad=1" ;;
      vat_unlab) keys="vat=1 emb_norm=1 adv_emb_grad=1 unlabelled=50000" ;;
      *) echo "unknown method $method" >&2; exit 2 ;;
    esac
    grid_var="EPS_$method"
    for eps in ${!grid_var}; do
      echo "$PYTHON -m lstm_adv.train $COMMON $keys eps=$eps seed=$seed $* saveto=$DIR/${method}_eps=${eps}_seed=$seed" >> "$COMMANDS.tmp"
    done
  done
done
mv "$COMMANDS.tmp" "$COMMANDS"
JOBS=$JOBS PYTHON=$PYTHON exec bash experiments/run_and_publish.sh "$COMMANDS" "$DIR" vat_comparison adv_norm,emb_norm,vat,unlabelled

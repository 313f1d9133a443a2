#!/usr/bin/env bash
# The word-substitution study: which training keeps a model's prediction when a reviewer's words
# are swapped for synonyms? Every model is attacked, at the end of its own training run, by PWWS
# (Ren et al. 2019) on the same 1,000 seeded test reviews and by a beam search on 200 of them
# (word_attack=pwws,beam:200; WordNet synonyms in the model's vocabulary, stopwords never changed).
#
#   bash experiments/word_substitution.sh                   # every model below, resumable
#   METHODS="plain ascc" SEEDS_plain=1 JOBS=2 bash experiments/word_substitution.sh
#   STUDY_DIR=/tmp/w RESULTS_DIR=/tmp/r bash experiments/word_substitution.sh data=toy max_epochs=2   # key=value: every run
#
# The VAT comparison's setting (preset=authors: word2vec init, wdim=300; all 25,000 training reviews
# cut to 100 tokens, maxlen_mode=truncate; 30 epochs), each method at the eps the VAT comparison
# selected on its validation split (experiments/results/vat_comparison/README.md):
#   plain      eps=0                                         seeds 1-3
#   paper      adv_norm=sign eps=1.0 (Caswell et al. 2015)   seed 1
#   miyato     adv_norm=l2 emb_norm=1 adv_emb_grad=1 eps=3.0 seeds 1-3 (Miyato et al. 2017)
#   vat_unlab  vat=1 emb_norm=1 adv_emb_grad=1 unlabelled=50000 eps=3.0   seed 1
#   augment    synonym_aug=0.5 (Jia et al. 2019's baseline)  seed 1
#   ascc       ascc=1 adv_emb_grad=1 (Dong et al. 2021, their code's defaults)  seeds 1-3
# and the paper's own Table 1 models (preset=authors max_epochs=150, the tutorial's maxlen=100
# filter) at eps 0 and 0.5, seeds 1-2: table1_eps=0.0, table1_eps=0.5.
# Each method's seeds: SEEDS_<method> (e.g. SEEDS_ascc="1 2 3").
# Also the embedding-space attacks of the VAT comparison (1,000 reviews, relative radii), so one
# run carries both kinds of robustness.
# Run directories go to $STUDY_DIR (default runs/word_substitution), their small files to
# experiments/results/word_substitution/ (RESULTS_DIR), the table to its ablation.md. Resumable: run
# it again; published runs are skipped, a finished run missing a word attack is attacked, not trained
# (a published run missing one: attacked where its folder is, trained again where it is gone).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
METHODS=${METHODS:-plain miyato ascc paper vat_unlab augment table1_eps=0.0 table1_eps=0.5}
JOBS=${JOBS:-1}
DIR=${STUDY_DIR:-runs/word_substitution}
SEEDS_plain=${SEEDS_plain:-1 2 3}
SEEDS_miyato=${SEEDS_miyato:-1 2 3}
SEEDS_ascc=${SEEDS_ascc:-1 2 3}
SEEDS_paper=${SEEDS_paper:-1}
SEEDS_vat_unlab=${SEEDS_vat_unlab:-1}
SEEDS_augment=${SEEDS_augment:-1}
SEEDS_table1=${SEEDS_table1:-1 2}
ATTACKS="progress=0 attack_relative=1 attack_eps=0.05,0.2,1,5 attack_k=10 attack_size=1000 word_attack=pwws,beam:200 word_attack_size=1000"
STUDY="preset=authors maxlen=100 maxlen_mode=truncate max_epochs=30 train_err_size=2500"
TABLE1="preset=authors max_epochs=150"

without_given() {   # the key=value words of $1 less the keys the command line gives (a key twice is refused)
  local out="" kv arg given
  for kv in $1; do
    given=0
    for arg in "${@:2}"; do [ "${arg%%=*}" = "${kv%%=*}" ] && given=1; done
    [ "$given" -eq 1 ] || out="$out $kv"
  done
  echo "$out"
}
keys_of() {
  case $1 in
    plain) echo "eps=0.0" ;;
    paper) echo "adv_norm=sign eps=1.0" ;;
    miyato) echo "adv_norm=l2 emb_norm=1 adv_emb_grad=1 eps=3.0" ;;
    vat_unlab) echo "vat=1 emb_norm=1 adv_emb_grad=1 unlabelled=50000 eps=3.0" ;;
    augment) echo "synonym_aug=0.5 eps=0.0" ;;
    ascc) echo "ascc=1 adv_emb_grad=1 eps=0.0" ;;
    table1_eps=*) echo "eps=${1#table1_eps=}" ;;
    *) echo "unknown method $1 (plain, paper, miyato, vat_unlab, augment, ascc, table1_eps=EPS)" >&2; return 2 ;;
  esac
}
for method in $METHODS; do keys_of "$method" > /dev/null || exit 2; done

for method in $METHODS; do
  case $method in
    table1_eps=*) base=$TABLE1 seeds=$SEEDS_table1 ;;
    *) base=$STUDY seeds_var="SEEDS_$method"; seeds=${!seeds_var} ;;
  esac
  common=$(without_given "$base $ATTACKS" "$@")
  for seed in $seeds; do
    echo "$PYTHON -m lstm_adv.train$common $(keys_of "$method") seed=$seed $* saveto=$DIR/${method}_seed=$seed"
  done
done | JOBS=$JOBS PYTHON=$PYTHON bash experiments/run_and_publish.sh - "$DIR" word_substitution \
  adv_norm,emb_norm,vat,unlabelled,ascc,synonym_aug,maxlen_mode,eps

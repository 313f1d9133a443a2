"""Does the training perturbation carry the label? Errors of a trained run under four inputs.

For each run directory (its best parameters, params.npz, and its own configuration), on 1,000
test reviews drawn with the run's seed, dropout off: the error on the clean embeddings, and on
e + eps * sign(dL/de) with the gradient taken at the true label (what training feeds the
adversarial branch), at the predicted label (no label used), and along a random sign pattern of
the same size. An error on the true-label perturbation far below the clean error means the model
reads the label from the perturbation itself ("label leaking", Kurakin et al. 2017). Prints
Markdown table rows; committed output: experiments/results/label_leak/leak_probe.md (by
experiments/label_leak.sh). The attacks are `lstm_adv.evaluate.attack_report`'s one-step ones.

    LSTM_ADV_DATA=../shared/data/aclImdb.tar.gz python experiments/leak_probe.py RUN_DIR [RUN_DIR ...]
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
from lstm_adv.common.utils import make_rng
from lstm_adv.config import from_dict
from lstm_adv.core.adversarial import perturbation
from lstm_adv.core.backend import limit_blas_threads
from lstm_adv.core.compiled import Model
from lstm_adv.core.model import load_params
from lstm_adv.data import load_dataset, prepare_data
from lstm_adv.evaluate import attack_report, eval_batches

N_REVIEWS, BATCH = 1000, 100

runs = [Path(a).resolve() for a in sys.argv[1:]]
# Rows named from the folder the runs share: table1/eps=0.3/seed=1 and ablation/tutorial_eps=0.5_seed=1,
# not eps=0.3/seed=1 (which a tutorial-init sweep would name the same).
root = Path(os.path.commonpath([r.parent.parent for r in runs])) if runs else Path()

limit_blas_threads(1)
print("| run | eps | clean error | true-label perturbation | predicted-label perturbation "
      "| random signs |")
print("|---|---|---|---|---|---|")
for run in runs:
    cfg = from_dict(json.loads((run / "config.json").read_text())["config"])
    if cfg.eps == 0:
        continue  # no perturbation to probe
    data = load_dataset(cfg)
    params = load_params(run / "params.npz")
    model = Model(cfg, params["Wemb"].shape[0], params)
    rng = make_rng(cfg.seed, "leak_probe")
    reviews = data.test.subset(np.sort(rng.choice(len(data.test), size=min(N_REVIEWS, len(data.test)),
                                                  replace=False)))
    # The one-step attacks at the run's own eps: onestep_true is the step training feeds the
    # adversarial branch, onestep_pred the same step at the predicted label.
    report = attack_report(model, reviews, BATCH, [cfg.eps], norm=cfg.adv_norm, k=0)
    true, pred = (report[a][str(float(cfg.eps))]["adv_err"] for a in ("onestep_true", "onestep_pred"))
    wrong = 0  # the control: a random sign pattern of the same size
    for idx in eval_batches(reviews, BATCH):
        x, mask, y = prepare_data([reviews.seqs[i] for i in idx], reviews.labels[idx], cfg.floatX)
        emb = model.f_embed(x)
        noise = perturbation(rng.standard_normal(emb.shape), mask, cfg.eps, cfg.adv_norm)
        wrong += int((model.f_prob_emb((emb + noise).astype(emb.dtype), mask).argmax(axis=1) != y).sum())
    print(f"| {run.relative_to(root).as_posix()} | {cfg.eps:g} | {report['clean_err']:.3f} | {true:.3f} | {pred:.3f} "
          f"| {wrong / len(reviews):.3f} |", flush=True)

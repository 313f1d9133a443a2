"""Does the training perturbation carry the label? Errors of a trained run under four inputs.

For each run directory (its best parameters, params.npz, and its own configuration), on 1,000
test reviews drawn with the run's seed, dropout off: the error on the clean embeddings, and on
e + eps * sign(dL/de) with the gradient taken at the true label (what training feeds the
adversarial branch), at the predicted label (no label used), and along a random sign pattern of
the same size. An error on the true-label perturbation far below the clean error means the model
reads the label from the perturbation itself ("label leaking", Kurakin et al. 2017). Prints
Markdown table rows; committed output: experiments/results/ablation/leak_probe.md.

    LSTM_ADV_DATA=../shared/data/aclImdb.tar.gz python experiments/leak_probe.py RUN_DIR [RUN_DIR ...]
"""
import json
import sys
from pathlib import Path

import numpy as np
from lstm_adv.config import from_dict
from lstm_adv.core.adversarial import perturbation
from lstm_adv.core.backend import limit_blas_threads
from lstm_adv.core.compiled import Model
from lstm_adv.core.model import load_params
from lstm_adv.common.utils import make_rng
from lstm_adv.data import load_dataset, prepare_data

N_REVIEWS, BATCH = 1000, 100

limit_blas_threads(1)
print("| run | eps | clean error | true-label perturbation | predicted-label perturbation "
      "| random signs |")
print("|---|---|---|---|---|---|")
for run in map(Path, sys.argv[1:]):
    cfg = from_dict(json.loads((run / "config.json").read_text())["config"])
    if cfg.eps == 0:
        continue  # no perturbation to probe
    data = load_dataset(cfg)
    params = load_params(run / "params.npz")
    model = Model(cfg, params["Wemb"].shape[0], params)
    rng = make_rng(cfg.seed, "leak_probe")
    wrong = {"clean": 0, "true": 0, "pred": 0, "random": 0}
    n = min(N_REVIEWS, len(data.test))
    subset = np.sort(rng.choice(len(data.test), size=n, replace=False))
    for start in range(0, n, BATCH):
        idx = subset[start:start + BATCH]
        x, mask, y = prepare_data([data.test.seqs[i] for i in idx], data.test.labels[idx], cfg.floatX)
        g_true, emb = model.f_grad_emb(x, mask, y)
        pred = model.f_prob_emb(emb, mask).argmax(axis=1)
        g_pred = model.f_grad_prob_emb(emb, mask, pred.astype(y.dtype))[0]
        g_rand = rng.standard_normal(emb.shape)
        inputs = {"clean": emb}
        for name, g in (("true", g_true), ("pred", g_pred), ("random", g_rand)):
            inputs[name] = emb + perturbation(g, mask, cfg.eps).astype(emb.dtype)
        for name, e in inputs.items():
            wrong[name] += int((model.f_prob_emb(e, mask).argmax(axis=1) != y).sum())
    err = {k: v / n for k, v in wrong.items()}
    print(f"| {run.parent.name}/{run.name} | {cfg.eps:g} | {err['clean']:.3f} | {err['true']:.3f} | {err['pred']:.3f} "
          f"| {err['random']:.3f} |", flush=True)

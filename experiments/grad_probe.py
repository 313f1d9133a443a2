"""At the initial parameters: does the adversarial half of the gradient cancel the clean half?

For the IMDB word2vec stand-in vectors at two scales and several eps: the gradient of the clean
cost (alpha=1) and of the adversarial cost (alpha=0) w.r.t. the LSTM and classifier parameters
(not Wemb) on 256 training reviews, their norms and cosine. Prints Markdown table rows;
committed output: experiments/results/ablation/grad_probe.md.

    LSTM_ADV_DATA=../shared/data/aclImdb.tar.gz python experiments/grad_probe.py   # about 5 min on 2 cores
    python experiments/grad_probe.py RUN_DIR    # at a run's best parameters (params.npz) instead
"""
import json
import sys
from pathlib import Path

import numpy as np
from lstm_adv.config import parse_args
from lstm_adv.data import load_dataset, prepare_data
from lstm_adv.core.compiled import Model
from lstm_adv.core.backend import limit_blas_threads
from lstm_adv.core.model import load_params
from lstm_adv.train import initial_params

limit_blas_threads(1)
RUN = Path(sys.argv[1]) if len(sys.argv) > 1 else None
# (w2v_std, parameter file): the initial parameters at two scales, or a run's best parameters.
SETTINGS = ([(json.loads((RUN / "config.json").read_text())["config"]["w2v_std"], RUN / "params.npz")]
            if RUN else [(0.144, None), (0.0, None)])
print("| vectors (w2v_std) | embedding std | eps | eps / std | clean cost | adversarial cost "
      "| clean grad norm | adversarial grad norm | cosine |")
print("|---|---|---|---|---|---|---|---|---|")
rows = []
for std, params_file in SETTINGS:
    base = ["preset=authors", f"w2v_std={std}", "seed=1", "use_dropout=0"]
    cfg0 = parse_args(base + ["alpha=1", "eps=0.5"])
    data = load_dataset(cfg0)
    n_words = min(cfg0.n_words, len(data.words))
    params = load_params(params_file) if params_file else initial_params(cfg0, n_words, data)[0]
    x, mask, y = prepare_data(data.train.seqs[:256], data.train.labels[:256])
    def grads(args):
        cfg = parse_args(base + args)
        m = Model(cfg, n_words, {k: v.copy() for k, v in params.items()})
        out = m.inspect(x, mask, y, dropout=False)
        g = np.concatenate([v.ravel() for k, v in out["grads"].items() if k != "Wemb"])
        return g, out
    gc, oc = grads(["alpha=1", "eps=0.5"])
    emb_std = float(np.std(params["Wemb"]))
    for eps in (0.1, 0.2, 0.5, 1.5, 5.0, 15.0):
        ga, oa = grads(["alpha=0", f"eps={eps}"])
        cos = float(ga @ gc / (np.linalg.norm(ga) * np.linalg.norm(gc)))
        rows.append((std or "as trained", emb_std, eps, eps / emb_std, oc["cost_clean"], oa["cost_adv"],
                     float(np.linalg.norm(gc)), float(np.linalg.norm(ga)), cos))
        print("| %s | %.3f | %g | %.1f | %.4f | %.4f | %.2e | %.2e | %+.3f |" % rows[-1], flush=True)

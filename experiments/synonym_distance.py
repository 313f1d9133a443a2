"""How far PWWS's word substitutions move a review in the model's own embedding space, against the
ball the model was trained on (issue 41: why embedding-space adversarial training does not carry
over to synonyms).

    python experiments/synonym_distance.py RUN [RUN ...] [method=pwws]

For each run (a training run folder with ``word_attack/<method>-*/reviews.jsonl``, which ``word_attack=``
or ``python -m lstm_adv.attack`` wrote) and each review the attack flipped: the change of the embedded
review, ``delta = embed(adversarial) - embed(original)`` (T, E), in the embeddings the model reads
(``emb_norm=1``: the normalised rows), as the L2 norm over the whole review (the norm of
``adv_norm=l2``, VAT and Miyato et al.'s eps) and the largest coordinate (the norm of the paper's
``adv_norm=sign`` step). Printed per run: its training perturbation, the median of each distance over
the flipped reviews, the share of flipped reviews inside the training ball in its own norm, and for
scale the median L2 norm of a vocabulary word's embedding and of a word the attack replaced. Reads the run's ``params.npz`` (the run folder,
not a published copy).
"""

import glob
import json
import os
import sys

import numpy as np

from lstm_adv import load_run
from lstm_adv.common.errors import UserError

USAGE = "python experiments/synonym_distance.py RUN [RUN ...] [method=pwws]"


def distances(run, method):
    """(L2 over the review, max |coordinate|, word norm median, cfg) for each flipped review of one run."""
    files = sorted(glob.glob(os.path.join(run, "word_attack", f"{method}-*", "reviews.jsonl")))
    if not files:
        raise UserError(f"{run} has no word_attack/{method}-*/reviews.jsonl; run its word attack first "
                        f"(python -m lstm_adv.attack model={run} method={method})")
    predictor = load_run(run)
    model = predictor.model()
    rows = np.asarray(model.f_embed(np.arange(model.n_words, dtype=np.int64)[:, None])[:, 0, :], dtype=np.float64)
    l2, linf, changed = [], [], []
    with open(files[0]) as f:
        for line in f:
            r = json.loads(line)
            if not r.get("flipped"):
                continue
            orig, adv = np.asarray(r["orig"]), np.asarray(r["adv"])
            delta = rows[adv] - rows[orig]
            changed += list(np.linalg.norm(rows[orig[orig != adv]], axis=1))
            l2.append(float(np.sqrt((delta ** 2).sum())))
            linf.append(float(np.abs(delta).max()))
    norms = (float(np.median(np.linalg.norm(rows[2:], axis=1))), float(np.median(changed)) if changed else np.nan)
    return np.array(l2), np.array(linf), norms, predictor.cfg


def main(argv):
    method = next((a.split("=", 1)[1] for a in argv if a.startswith("method=")), "pwws")
    runs = [a for a in argv if "=" not in a or os.path.isdir(a)]
    if not runs:
        print(f"usage: {USAGE}", file=sys.stderr)
        return 2
    measured = []
    for run in runs:   # every run read before the table, so that a bad one prints only its error
        try:
            measured.append((run, *distances(run, method)))
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    print("| run | training perturbation | flipped | median L2 of the change | median largest coordinate | "
          "median change / eps | inside the training ball | median word norm: any / a replaced word |")
    print("|---|---|---|---|---|---|---|---|")
    for run, l2, linf, word, cfg in measured:
        if cfg.ascc or cfg.synonym_aug or cfg.eps == 0 and not cfg.vat:
            train, ratio, inside = ("ASCC (substitution hulls)" if cfg.ascc else
                                    f"synonym_aug={cfg.synonym_aug}" if cfg.synonym_aug else "none"), "-", "-"
        elif cfg.vat or cfg.adv_norm == "l2":
            train = f"L2, eps={cfg.eps:g} a review" + (" (VAT)" if cfg.vat else "")
            ratio, inside = f"{np.median(l2) / cfg.eps:.1f} (L2)", f"{np.mean(l2 <= cfg.eps):.1%}"
        else:
            train = f"sign, eps={cfg.eps:g} a coordinate"
            ratio, inside = f"{np.median(linf) / cfg.eps:.1f} (max)", f"{np.mean(linf <= cfg.eps):.1%}"
        name = os.path.basename(os.path.normpath(run))
        print(f"| {name} | {train} | {len(l2)} | {np.median(l2):.2f} | {np.median(linf):.3f} | {ratio} | {inside} "
              f"| {word[0]:.2f} / {word[1]:.2f} |")
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

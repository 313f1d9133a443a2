"""Error rates on a split: clean (the tutorial's ``pred_error``) and under a gradient attack."""

import numpy as np

from .adversarial import perturbation
from .data import minibatches, prepare_data


def pred_error(model, split, batch_size):
    """Fraction of misclassified reviews, clean inputs, dropout off.

    Splits are sorted by length (`lstm_adv.data.finalize`), so consecutive minibatches waste
    little on padding.

    Parameters
    ----------
    model : lstm_adv.graph.Model
    split : lstm_adv.data.Split
    batch_size : int

    Returns
    -------
    float in [0, 1]
    """
    if len(split) == 0:
        return float("nan")
    wrong = 0
    for idx in minibatches(len(split), batch_size):
        x, mask, y = prepare_data([split.seqs[i] for i in idx], split.labels[idx], model.cfg.floatX)
        wrong += int((model.f_pred(x, mask) != y).sum())
    return wrong / len(split)


def attack_errors(model, split, batch_size, strengths, norm="sign"):
    """Error under the fast gradient (sign) attack on the embeddings, one figure per strength.

    Each review's embedded input is moved by ``perturbation(dL/de, mask, s, norm)`` with the
    true label's loss, the same step the adversarial objective trains against (Goodfellow et
    al. 2015), and the perturbed embeddings are classified with dropout off.

    Parameters
    ----------
    strengths : sequence of float
        Attack sizes ``s`` (>= 0).

    Returns
    -------
    dict of str(strength) -> error in [0, 1]
    """
    wrong = np.zeros(len(strengths), dtype=np.int64)
    for idx in minibatches(len(split), batch_size):
        x, mask, y = prepare_data([split.seqs[i] for i in idx], split.labels[idx], model.cfg.floatX)
        grad, emb = model.f_grad_emb(x, mask, y)
        for k, s in enumerate(strengths):
            probs = model.f_prob_emb(emb + perturbation(grad, mask, float(s), norm), mask)
            wrong[k] += int((probs.argmax(axis=1) != y).sum())
    return {str(s): int(w) / max(len(split), 1) for s, w in zip(strengths, wrong)}

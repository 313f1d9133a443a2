"""Error rates on a split: clean (the tutorial's ``pred_error``) and under gradient attacks.

The attacks move each review's embedded input ``e`` (dropout off) within a ball of radius ``s``:

- ``onestep_pred``: one step ``perturbation(dL(pred)/de, s, norm)`` that raises the loss of the
  model's own clean prediction (Kurakin et al. 2017), so the true label cannot leak into it.
- ``iter_sign_pred`` / ``iter_l2_pred``: ``k`` steps of size ``s / k`` on the same loss
  (sign steps kept in the L-infinity ball, L2 steps kept in the per-review L2 ball), the
  gradient re-evaluated at every step; a review counts as broken if any iterate breaks it.
- ``onestep_true``: the one-step attack on the true label's loss (Goodfellow et al. 2015; what
  this project reported before). It leaks the label: a model that never learned the clean
  reviews can look "robust" under it. Kept for comparison, under this name.

For each attack and strength two figures: ``adv_err`` (the perturbed prediction is wrong) and
``robust_err`` (the clean or the perturbed prediction is wrong; at least the clean error).
"""

import numpy as np

from .core.adversarial import perturbation
from .data import prepare_data

ATTACKS = ("onestep_pred", "iter_sign_pred", "iter_l2_pred", "onestep_true")


# Evaluation batches hold about batch_size x EVAL_TOKENS_PER_REVIEW tokens (padding included):
# more reviews per batch where they are short, fewer where they are long (a 64 x 2,500 batch's
# activations are hundreds of MB); between batch_size / 4 and 4 x batch_size reviews.
EVAL_TOKENS_PER_REVIEW = 256


def eval_batches(split, batch_size):
    """Index lists of evaluation minibatches of consecutive reviews with a budget of tokens.

    Splits are sorted by length (`lstm_adv.data.finalize`), so a batch's reviews have similar
    lengths and little padding. Unsorted splits work too (only the padding grows).
    """
    lengths = np.fromiter((len(s) for s in split.seqs), dtype=np.int64, count=len(split))
    budget = batch_size * EVAL_TOKENS_PER_REVIEW
    lo, hi = max(1, batch_size // 4), 4 * batch_size
    out, start, n = [], 0, len(split)
    while start < n:
        end, longest = start, 0
        while end < n and end - start < hi:
            longest_next = max(longest, int(lengths[end]))
            if end - start >= lo and (end - start + 1) * longest_next > budget:
                break
            longest = longest_next
            end += 1
        out.append(np.arange(start, end))
        start = end
    return out


def pred_error(model, split, batch_size):
    """Fraction of misclassified reviews, clean inputs, dropout off.

    Splits are sorted by length (`lstm_adv.data.finalize`), so consecutive minibatches waste
    little on padding; batches follow a token budget (`eval_batches`).

    Parameters
    ----------
    model : lstm_adv.core.compiled.Model
    split : lstm_adv.data.Split
    batch_size : int

    Returns
    -------
    float in [0, 1]
    """
    if len(split) == 0:
        return float("nan")
    wrong = 0
    for idx in eval_batches(split, batch_size):
        x, mask, y = prepare_data([split.seqs[i] for i in idx], split.labels[idx], model.cfg.floatX)
        wrong += int((model.f_pred(x, mask) != y).sum())
    return wrong / len(split)


def _project(delta, mask, s, norm):
    # Keep the total perturbation in the ball of radius s (zero on padding).
    m = mask[:, :, None]
    if norm == "sign":
        return np.clip(delta, -s, s) * m
    length = np.sqrt(((delta * m) ** 2).sum(axis=(0, 2)))
    scale = np.minimum(1.0, s / np.maximum(length, 1e-12))
    return delta * scale[None, :, None] * m


def iterative_attack(model, emb, mask, labels, s, k, norm):
    """``k`` steps of size ``s / k`` raising the loss of ``labels``, projected on the radius-``s`` ball.

    Parameters
    ----------
    emb : ndarray, shape (T, B, E)
    mask : ndarray, shape (T, B)
    labels : int ndarray, shape (B,)
        The labels whose loss the attack raises (the clean predictions, for no label leaking).
    s : float
    k : int
    norm : {"sign", "l2"}

    Returns
    -------
    broken : bool ndarray, shape (B,)
        True where some iterate's prediction differs from ``labels``.
    """
    delta = np.zeros_like(emb)
    broken = np.zeros(len(labels), dtype=bool)
    for i in range(k):
        # The probabilities at the iterate come with its gradient: no separate forward pass,
        # except after the last step.
        grad, probs = model.f_grad_prob_emb((emb + delta).astype(emb.dtype), mask, labels)
        if i > 0:
            broken |= probs.argmax(axis=1) != labels
            if broken.all():
                return broken
        delta = _project(delta + perturbation(grad, mask, s / k, norm), mask, s, norm)
    if k > 0:
        probs = model.f_prob_emb((emb + delta).astype(emb.dtype), mask)
        broken |= probs.argmax(axis=1) != labels
    return broken


def embedding_scale(model, split):
    """Median absolute coordinate of the ``Wemb`` rows the split's reviews use (padding excluded)."""
    ids = np.unique(np.concatenate([np.asarray(s, dtype=np.int64) for s in split.seqs]))
    ids = ids[ids > 0]
    W = model.tparams["Wemb"].get_value(borrow=True)
    ids = ids[ids < len(W)]
    return float(np.median(np.abs(W[ids]))) if len(ids) else float("nan")


def embedded_scale(model, split, batch_size):
    """Median absolute coordinate of the embedded reviews ``e`` the attacks move (padding excluded).

    Unlike `embedding_scale` (the ``Wemb`` rows), this is measured after the model's embedding
    layer, so it is the scale of the normalised embeddings when ``emb_norm=1``, and each token
    counts as often as it occurs.
    """
    values = []
    for idx in eval_batches(split, batch_size):
        x, mask, _ = prepare_data([split.seqs[i] for i in idx], split.labels[idx], model.cfg.floatX)
        values.append(np.abs(model.f_embed(x)[mask > 0]).ravel())
    return float(np.median(np.concatenate(values))) if values else float("nan")


def attack_report(model, split, batch_size, strengths, norm="sign", k=10, relative=False):
    """Clean, adversarial and robust error under every attack in `ATTACKS`, per strength.

    Parameters
    ----------
    model : lstm_adv.core.compiled.Model
    split : lstm_adv.data.Split
    batch_size : int
    strengths : sequence of float
        Attack strengths ``s`` (>= 0): radii in the embedding space's units, or with ``relative``
        multiples of `embedded_scale`.
    norm : {"sign", "l2"}
        Norm of the one-step attacks (the iterative attack runs both).
    k : int
        Steps of the iterative attacks (0 = skip them).
    relative : bool
        Radius = ``s`` x `embedded_scale`, so that models whose embeddings differ in scale (e.g.
        with and without ``emb_norm``) meet attacks of the same relative size.

    Returns
    -------
    dict
        ``n``, ``k``, ``onestep_norm``, ``clean_err``, ``wemb_median_abs`` (see
        `embedding_scale`), ``relative`` ({str(s): radius / wemb_median_abs}),
        ``emb_median_abs`` (`embedded_scale`), ``strength_units`` (``"absolute"`` or
        ``"x emb_median_abs"``), ``radius`` ({str(s): the radius used}) and, per attack name in
        `ATTACKS`, ``{str(s): {"adv_err": ..., "robust_err": ...}}``.
    """
    strengths = [float(s) for s in strengths]
    emb_scale = embedded_scale(model, split, batch_size) if len(split) else float("nan")
    radii = [s * emb_scale if relative else s for s in strengths]
    names = [a for a in ATTACKS if k > 0 or not a.startswith("iter")]
    adv = {a: np.zeros(len(strengths), dtype=np.int64) for a in names}
    rob = {a: np.zeros(len(strengths), dtype=np.int64) for a in names}
    clean_wrong_total = 0
    for idx in eval_batches(split, batch_size):
        x, mask, y = prepare_data([split.seqs[i] for i in idx], split.labels[idx], model.cfg.floatX)
        emb = model.f_embed(x)
        g_true, probs = model.f_grad_prob_emb(emb, mask, y)
        pred = probs.argmax(axis=1)
        clean_wrong = pred != y
        clean_wrong_total += int(clean_wrong.sum())
        g_pred = g_true if not clean_wrong.any() else model.f_grad_prob_emb(emb, mask, pred)[0]
        for j, s in enumerate(radii):
            outcome = {}
            for name, g in (("onestep_pred", g_pred), ("onestep_true", g_true)):
                p = model.f_prob_emb((emb + perturbation(g, mask, s, norm)).astype(emb.dtype), mask)
                outcome[name] = p.argmax(axis=1) != y
            if k > 0:
                for inorm in ("sign", "l2"):
                    # Changing the prediction of a correctly classified review makes it wrong; a
                    # review already wrong stays counted wrong in the robust error either way.
                    broken = iterative_attack(model, emb, mask, pred, s, k, inorm) if s > 0 else np.zeros_like(y, bool)
                    outcome[f"iter_{inorm}_pred"] = np.where(broken, pred == y, clean_wrong)
            for name in names:
                adv[name][j] += int(outcome[name].sum())
                rob[name][j] += int((outcome[name] | clean_wrong).sum())
    n = max(len(split), 1)
    scale = embedding_scale(model, split) if len(split) else float("nan")
    out = {"n": len(split), "k": k, "onestep_norm": norm, "clean_err": clean_wrong_total / n,
           "wemb_median_abs": scale,
           "relative": {str(s): (r / scale if scale > 0 else None) for s, r in zip(strengths, radii)},
           "emb_median_abs": emb_scale, "strength_units": "x emb_median_abs" if relative else "absolute",
           "radius": {str(s): r for s, r in zip(strengths, radii)}}
    for name in names:
        out[name] = {str(s): {"adv_err": int(adv[name][j]) / n, "robust_err": int(rob[name][j]) / n}
                     for j, s in enumerate(strengths)}
    return out


def attack_summary(report):
    """The attacks' part of a training run's ``done:`` line: the strongest attack's robust error per radius.

    Each radius reads ``radius R (Mx median |Wemb|): err E``, radii apart by ``;``, so that radius,
    multiplier and error never run together.

    Parameters
    ----------
    report : dict
        `attack_report`'s output (``n``, ``relative``, ``strength_units``, ``emb_median_abs`` and
        ``iter_sign_pred`` or ``onestep_pred``).

    Returns
    -------
    str
        E.g. ``robust error under iter_sign_pred on 100 test reviews: radius 0.001 (0.01x median
        |Wemb|): err 0.480; radius 0.1: err 0.500``.
    """
    name = "iter_sign_pred" if "iter_sign_pred" in report else "onestep_pred"
    head = f"robust error under {name} on {report['n']} test reviews"
    if report.get("strength_units") == "x emb_median_abs":
        return (f"{head}, radius in multiples of the median |e| ({report['emb_median_abs']:.3g}): "
                + "; ".join(f"radius {s}x: err {v['robust_err']:.3f}" for s, v in report[name].items()))
    # The multiplier only where there is one (a zero-size Wemb scale gives none).
    return f"{head}: " + "; ".join(
        f"radius {s} ({report['relative'][s]:.2g}x median |Wemb|): err {v['robust_err']:.3f}"
        if report["relative"].get(s) else f"radius {s}: err {v['robust_err']:.3f}" for s, v in report[name].items())


def attack_errors(model, split, batch_size, strengths, norm="sign"):
    """Error under the one-step attack on the TRUE label's loss (``onestep_true``), per strength.

    Label leaking: see the module docstring. `attack_report` is what runs report.

    Returns
    -------
    dict of str(strength) -> error in [0, 1]
    """
    report = attack_report(model, split, batch_size, strengths, norm, k=0)
    return {s: v["adv_err"] for s, v in report["onestep_true"].items()}

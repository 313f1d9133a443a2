"""The analysis behind the tables: perturb, decode the five rows, classify, summarise, pick Table 3."""

import time
from dataclasses import dataclass

import numpy as np

from ...core.adversarial import perturbation
from ...core.backend import blas_threads
from ...data import prepare_data
from .decode import Decoder, bigram_decode
from .options import ROW_KEYS, row_eps

# the analysis


@dataclass
class Result:
    """Everything the tables show, per review."""

    reviews: list
    rows: dict                 # row key -> list of int64 arrays (decoded ids per review)
    p_orig: np.ndarray         # P(true label) on the original text, (R,)
    pred_orig: np.ndarray      # predicted label on the original text
    p_emb: dict                # eps -> P(true) on perturbed embeddings, (R,)
    pred_emb: dict             # eps -> predicted label on perturbed embeddings
    p_dec: dict                # row key -> P(true) on the decoded text
    pred_dec: dict
    timings: dict
    n_tokens: int


def _batches(lengths, batch_size):
    order = np.argsort(lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def predict_probs(model, seqs, batch_size, floatX):
    """Class probabilities (R, K) of id sequences, batched by length (K = ``model.n_classes``)."""
    out = np.zeros((len(seqs), getattr(model, "n_classes", 2)), dtype=np.float64)
    for idx in _batches([len(s) for s in seqs], batch_size):
        x, mask, _ = prepare_data([seqs[i] for i in idx], np.zeros(len(idx)), floatX)
        out[idx] = model.f_pred_prob(x, mask)
    return out


def analyse(model, run, reviews, opts, lm=None):
    """Perturb, decode the five rows, and classify everything (see the module docstring).

    Parameters
    ----------
    model : lstm_adv.core.compiled.Model (or anything with f_pred_prob, f_grad_emb, f_prob_emb)
    run : Run (uses params["Wemb"], cfg.floatX)
    reviews : list of Review (labels of -1 are replaced by the model's prediction)
    lm : BigramLM or None (None or lm_weight=0: row 5 = row 4)

    Returns
    -------
    Result
    """
    floatX = run.cfg.floatX
    timings = {}
    R = len(reviews)
    lengths = np.array([len(r.ids) for r in reviews], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    N = int(offsets[-1])
    E = run.params["Wemb"].shape[1]

    t0 = time.perf_counter()
    # Compile the attack functions before timing anything (PyTensor compiles on first use).
    x1, m1, y1 = prepare_data([[1]], [0], floatX)
    model.f_prob_emb(model.f_grad_emb(x1, m1, y1)[1], m1)
    timings["compiling"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    probs0 = predict_probs(model, [r.ids for r in reviews], opts.batch_size, floatX)
    for i, r in enumerate(reviews):
        if r.label < 0:
            r.label = int(probs0[i].argmax())
            r.name += " (label: the model's prediction)"
    y_all = np.array([r.label for r in reviews], dtype=np.int64)
    signs = np.zeros((N, E), dtype=np.int8)
    eps_list = sorted({float(opts.eps_knn), float(opts.eps_vis)})
    p_emb = {e: np.zeros(R) for e in eps_list}
    pred_emb = {e: np.zeros(R, dtype=np.int64) for e in eps_list}
    for idx in _batches(lengths, opts.batch_size):
        x, mask, y = prepare_data([reviews[i].ids for i in idx], y_all[idx], floatX)
        grad, emb = model.f_grad_emb(x, mask, y)
        unit = perturbation(grad, mask, 1.0)          # sign(dL_true/de), zero on padding
        for e in eps_list:
            probs = model.f_prob_emb((emb + e * unit).astype(emb.dtype), mask)
            p_emb[e][idx] = probs[np.arange(len(idx)), y]
            pred_emb[e][idx] = probs.argmax(axis=1)
        for b, i in enumerate(idx):
            signs[offsets[i]:offsets[i + 1]] = unit[:lengths[i], b]
    timings["gradients"] = time.perf_counter() - t0

    ids = np.concatenate([r.ids for r in reviews]) if R else np.zeros(0, dtype=np.int64)
    Wemb = np.asarray(run.params["Wemb"], dtype=np.float32)
    decoder = Decoder(Wemb, opts.top_words)
    t0 = time.perf_counter()
    base = Wemb[ids]
    # The entry point runs BLAS single-threaded for the model; these large products may use every core.
    with blas_threads(None):
        knn, knn_top = decoder.nearest(base + np.float32(opts.eps_knn) * signs)
        cand, sims = decoder.candidates(base + np.float32(opts.eps_vis) * signs, opts.k)
    scaled = cand[:, 0]
    timings["nearest neighbours"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if lm is not None and opts.lm_weight > 0 and N:
        bigram = bigram_decode(cand, sims, lengths, lm, opts.lm_weight)
    else:
        bigram = scaled.copy()
    timings["bigram Viterbi"] = time.perf_counter() - t0

    def split_rows(flat):
        return [flat[offsets[i]:offsets[i + 1]] for i in range(R)]

    rows = {"original": split_rows(ids), "knn": split_rows(knn), "knn_top": split_rows(knn_top),
            "scaled": split_rows(scaled), "bigram": split_rows(bigram)}
    t0 = time.perf_counter()
    p_dec, pred_dec = {}, {}
    for key in ROW_KEYS[1:]:
        probs = predict_probs(model, rows[key], opts.batch_size, floatX)
        p_dec[key] = probs[np.arange(R), y_all]
        pred_dec[key] = probs.argmax(axis=1)
    timings["classifying decoded text"] = time.perf_counter() - t0
    return Result(reviews, rows, probs0[np.arange(R), y_all], probs0.argmax(axis=1), p_emb, pred_emb,
                  p_dec, pred_dec, timings, N)


def summarize(res, opts):
    """Per row: fraction of tokens changed, flip rates (over originally correct reviews)."""
    y = np.array([r.label for r in res.reviews], dtype=np.int64)
    correct = res.pred_orig == y
    n_correct = int(correct.sum())
    orig = np.concatenate(res.rows["original"]) if res.reviews else np.zeros(0, dtype=np.int64)
    eps = row_eps(opts)
    table = []
    for key in ROW_KEYS:
        if key == "original":
            table.append({"row": key, "eps": None, "changed": 0.0, "flip_emb": None, "flip_dec": None})
            continue
        dec = np.concatenate(res.rows[key]) if res.reviews else orig
        changed = float((dec != orig).mean()) if orig.size else 0.0
        flip_emb = float((res.pred_emb[float(eps[key])][correct] != y[correct]).mean()) if n_correct else None
        flip_dec = float((res.pred_dec[key][correct] != y[correct]).mean()) if n_correct else None
        table.append({"row": key, "eps": eps[key], "changed": changed, "flip_emb": flip_emb, "flip_dec": flip_dec})
    return {"rows": table, "n_reviews": len(res.reviews), "n_correct": n_correct, "n_tokens": res.n_tokens,
            "one_class": one_class(res.pred_orig, y)}


def one_class(pred, y):
    """The class a model predicts for every review when the reviews' labels differ, else None.

    Such a model has not left the one-class plateau (`lstm_adv.common.plateau`): its flip rates
    and probabilities say nothing about robustness (the visualiser warns).
    """
    classes = set(np.asarray(pred).tolist())
    return int(classes.pop()) if len(classes) == 1 and len(set(np.asarray(y).tolist())) > 1 else None


def choose_pairs(res, opts):
    """Indices for Table 3 and whether they flip (see the module docstring)."""
    if opts.pairs == 0 or not res.reviews:
        return [], True
    y = np.array([r.label for r in res.reviews], dtype=np.int64)
    correct = res.pred_orig == y
    flips = correct & (res.pred_emb[float(opts.eps_vis)] != y)
    dec_flips = res.pred_dec["bigram"] != y
    cand = np.flatnonzero(flips)
    if cand.size:
        # Decoded text still wrong first, then reviews that fit in max_tokens (readable in full).
        fits = [not opts.max_tokens or len(r.ids) <= opts.max_tokens for r in res.reviews]
        order = sorted(cand, key=lambda i: (not dec_flips[i], not fits[i], res.p_dec["bigram"][i]))
        return [int(i) for i in order[:opts.pairs]], True
    # No flip: the largest drops in P(true label), among the correctly classified reviews if any.
    drop = res.p_orig - res.p_emb[float(opts.eps_vis)]
    pool = np.flatnonzero(correct) if correct.any() else np.arange(len(res.reviews))
    order = pool[np.argsort(-drop[pool], kind="stable")]
    return [int(i) for i in order[:opts.pairs]], False


# ---------------------------------------------------------------------------------------------

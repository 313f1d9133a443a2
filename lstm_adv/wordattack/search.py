"""The word-substitution searches: PWWS (Ren et al. 2019) and a beam search, on one review.

Both take the model as a function from a batch of equal-length id arrays to class probabilities
(`batch_probs`), so every candidate of a step is scored in a few batched forward passes, never one
pass each; both substitute only where the `lstm_adv.data.synonyms.SubstitutionTable` offers an
in-vocabulary substitute (stopwords never), and stop at the first prediction that differs from the
true label.

PWWS (probability weighted word saliency), for the true class y of a review x:

- saliency S_i = P(y|x) - P(y|x with word i -> UNK), for each word i that has a substitute;
- best substitute w*_i = argmax over its substitutes w of dP_i(w) = P(y|x) - P(y|x, i -> w);
- score_i = softmax(S)_i * dP_i(w*_i); words replaced by their w* in decreasing score order, one
  more at a time, until the prediction changes (success) or the words or the ``max_change``
  budget run out (failure).

Deviation from Ren et al.: the softmax runs over the words that have a substitute, not over every
word of the review (the other words' saliency is never used: the softmax's denominator is the same
for every word of a review, so the order is the same), which saves the queries of the others.

The beam search keeps the ``beam`` substitution sets that lower P(y) most, extends each by one more
substitution (any word not yet changed, any of its substitutes) per step, and stops at the first
flip: a search whose order is not fixed by one look at the clean review, to show that a PWWS
figure is not an artefact of its greedy order.
"""

from dataclasses import dataclass

import numpy as np

from ..data import UNK

#: tokens per forward batch (reviews x length): the candidates of a long review come in several
TOKENS_PER_BATCH = 32768


@dataclass
class Outcome:
    """One review's attack.

    ``queries``: reviews the search asked the model about (clean included); ``adv``: the adversarial
    ids (None unless flipped); ``probs``: the class probabilities of ``adv`` (else of the last
    review tried, or the clean one); ``stop``: why the search ended, one of `STOPS`.
    """

    flipped: bool
    adv: object
    n_changed: int
    queries: int
    probs: np.ndarray
    stop: str = "flipped"


#: why a search ends: the prediction changed; every substitution it may make was tried (every
#: attackable word, or the ``max_change`` budget); its next step would pass the query budget (beam);
#: the review has no word with a substitute. A review that held for "max_queries" might flip with a
#: larger budget; one that held for "all_words" would not, by that search.
STOPS = ("flipped", "all_words", "max_queries", "no_substitutes")


def batch_probs(prob_fn, variants):
    """Class probabilities (n, K) of equal-length id arrays, in batches of `TOKENS_PER_BATCH` tokens.

    ``prob_fn(x, mask)``: the model's ``f_pred_prob`` on a time-major batch.
    """
    variants = np.asarray(variants, dtype=np.int64)
    n, T = variants.shape
    step = max(1, TOKENS_PER_BATCH // max(T, 1))
    out = []
    mask = None
    for start in range(0, n, step):
        chunk = variants[start:start + step]
        if mask is None or mask.shape[1] != len(chunk):
            mask = np.ones((T, len(chunk)), dtype=prob_fn.floatX if hasattr(prob_fn, "floatX") else "float32")
        out.append(np.asarray(prob_fn(np.ascontiguousarray(chunk.T), mask)))
    return np.concatenate(out, axis=0)


def budget(n_tokens, max_change):
    """The most words an attack may change in a review of ``n_tokens`` (at least 1)."""
    return max(1, int(np.floor(max_change * n_tokens + 1e-9)))


def pwws(prob_fn, ids, label, table, max_change=1.0, clean_probs=None):
    """PWWS on one review the model classifies right.

    Parameters
    ----------
    prob_fn : callable (x (T, B) int64, mask (T, B)) -> probs (B, K)
    ids : ndarray of int64, shape (T,)
    label : int
        The true class (the model's clean prediction: only reviews it has right are attacked).
    table : lstm_adv.data.synonyms.SubstitutionTable
    max_change : float
        The most words changed, as a fraction of the review's words (`budget`).
    clean_probs : ndarray (K,), optional
        P(.|x) if already known (saves a query).

    Returns
    -------
    Outcome
    """
    ids = np.asarray(ids, dtype=np.int64)
    queries = 0
    if clean_probs is None:
        clean_probs = batch_probs(prob_fn, ids[None])[0]
        queries += 1
    p_y = clean_probs[label]
    positions = np.flatnonzero(table.has_substitutes(ids))
    if len(positions) == 0:
        return Outcome(False, None, 0, queries, clean_probs, "no_substitutes")
    # saliency: each attackable word -> UNK
    unk = np.repeat(ids[None], len(positions), axis=0)
    unk[np.arange(len(positions)), positions] = UNK
    saliency = p_y - batch_probs(prob_fn, unk)[:, label]
    # every substitute of every attackable word, in one batch
    owner, subs = [], []
    for k, i in enumerate(positions):
        s = table.subs[ids[i]]
        owner.append(np.full(len(s), k))
        subs.append(s)
    owner, subs = np.concatenate(owner), np.concatenate(subs)
    cand = np.repeat(ids[None], len(subs), axis=0)
    cand[np.arange(len(subs)), positions[owner]] = subs
    drop = p_y - batch_probs(prob_fn, cand)[:, label]
    queries += len(positions) + len(subs)
    best_sub = np.empty(len(positions), dtype=np.int64)
    best_drop = np.full(len(positions), -np.inf)
    for j in range(len(subs)):   # the first best substitute of each word (ties: the table's order)
        if drop[j] > best_drop[owner[j]]:
            best_drop[owner[j]], best_sub[owner[j]] = drop[j], subs[j]
    weights = np.exp(saliency - saliency.max())
    score = weights / weights.sum() * best_drop
    order = np.argsort(-score, kind="stable")[:budget(len(ids), max_change)]
    # greedy: the reviews with the first 1, 2, ... substitutions, scored a batch at a time
    step = max(1, min(len(order), TOKENS_PER_BATCH // max(len(ids), 1)))
    for start in range(0, len(order), step):
        ks = np.arange(start, min(start + step, len(order)))
        tries = np.repeat(ids[None], len(ks), axis=0)
        for r, k in enumerate(ks):
            chosen = order[:k + 1]
            tries[r, positions[chosen]] = best_sub[chosen]
        probs = batch_probs(prob_fn, tries)
        flips = np.flatnonzero(probs.argmax(axis=1) != label)
        if len(flips):
            r = flips[0]
            queries += r + 1
            return Outcome(True, tries[r], int(ks[r] + 1), queries, probs[r])
        queries += len(ks)
        last = probs[-1]
    return Outcome(False, None, 0, queries, last, "all_words")


#: the beam search's query budget per review: its cost grows with the square of a review's length
#: (every step scores every substitute at every position of every kept review), so the longest
#: reviews are bounded; a review that survives the budget counts as not flipped (as TextAttack's
#: query budgets do).
BEAM_MAX_QUERIES = 50_000

#: the reviews the beam search keeps at each step
BEAM_WIDTH = 4


def beam(prob_fn, ids, label, table, max_change=1.0, width=BEAM_WIDTH, clean_probs=None,
         max_queries=BEAM_MAX_QUERIES):
    """A beam search over substitutions on one review the model classifies right.

    Each step extends every kept review by one substitution (a word not yet changed, any of its
    substitutes), scores all extensions in batches, and keeps the ``width`` with the lowest
    P(label); stops at the first extension whose prediction differs from ``label``, after
    `budget` steps, or before a step that would take the queries past ``max_queries``.
    Parameters as `pwws`; returns an `Outcome`.
    """
    ids = np.asarray(ids, dtype=np.int64)
    queries = 0
    if clean_probs is None:
        clean_probs = batch_probs(prob_fn, ids[None])[0]
        queries += 1
    positions = np.flatnonzero(table.has_substitutes(ids))
    if len(positions) == 0:
        return Outcome(False, None, 0, queries, clean_probs, "no_substitutes")
    beams = [(ids, frozenset())]
    last = clean_probs
    for n_changed in range(1, min(budget(len(ids), max_change), len(positions)) + 1):
        ext, changed = [], []
        for review, done in beams:
            for i in positions:
                if i in done:
                    continue
                for w in table.subs[ids[i]]:
                    r = review.copy()
                    r[i] = w
                    ext.append(r)
                    changed.append(done | {i})
        if queries + len(ext) > max_queries:   # (ext is never empty: n_changed <= len(positions))
            return Outcome(False, None, 0, queries, last, "max_queries")
        probs = batch_probs(prob_fn, np.stack(ext))
        queries += len(ext)
        flips = np.flatnonzero(probs.argmax(axis=1) != label)
        if len(flips):
            r = flips[0]
            return Outcome(True, ext[r], n_changed, queries, probs[r])
        keep = np.argsort(probs[:, label], kind="stable")[:width]
        beams = [(ext[k], changed[k]) for k in keep]
        last = probs[keep[0]]
    return Outcome(False, None, 0, queries, last, "all_words")


SEARCHES = {"pwws": pwws, "beam": beam}

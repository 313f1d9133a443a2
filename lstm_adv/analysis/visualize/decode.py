"""Decoding perturbed embeddings into words: nearest neighbours in ``Wemb`` and the bigram Viterbi."""

import numpy as np

# decoding


def viterbi(emit, start, trans, end, lengths):
    """Best candidate path per sequence, for a batch of sequences of different lengths.

    Maximises ``start[c_0] + sum_t emit[t, c_t] + sum_{t>0} trans[t-1, c_{t-1}, c_t] + end[c_{L-1}]``.

    Parameters
    ----------
    emit : array (B, T, K)
        Score of candidate k at position t.
    start : array (B, K)
        Score of starting with candidate k.
    trans : array (B, T-1, K, K)
        ``trans[b, t, i, j]``: score of candidate j at position t+1 after candidate i at t.
    end : array (B, K)
        Score of ending with candidate k (at each sequence's last position, ``lengths[b] - 1``).
    lengths : int array (B,)
        Each >= 1 and <= T.

    Returns
    -------
    int64 array (B, T)
        Chosen candidate index per position; -1 beyond each sequence's length.
    """
    emit = np.asarray(emit)
    B, T, K = emit.shape
    lengths = np.asarray(lengths)
    delta = start + emit[:, 0]
    back = np.empty((B, T, K), dtype=np.int64)
    back[:, 0] = np.arange(K)
    keep = np.broadcast_to(np.arange(K), (B, K))
    for t in range(1, T):
        scores = delta[:, :, None] + trans[:, t - 1]          # (B, K_prev, K)
        best = scores.argmax(axis=1)                           # (B, K)
        new = np.take_along_axis(scores, best[:, None, :], axis=1)[:, 0] + emit[:, t]
        active = (t < lengths)[:, None]
        delta = np.where(active, new, delta)
        back[:, t] = np.where(active, best, keep)
    delta = delta + end
    path = np.empty((B, T), dtype=np.int64)
    path[:, T - 1] = delta.argmax(axis=1)
    for t in range(T - 1, 0, -1):
        path[:, t - 1] = np.take_along_axis(back[:, t], path[:, t:t + 1], axis=1)[:, 0]
    path[np.arange(T)[None, :] >= lengths[:, None]] = -1
    return path


def normalize_rows(a):
    a = np.asarray(a, dtype=np.float32)
    norm = np.sqrt((a * a).sum(axis=-1, keepdims=True))
    return a / np.maximum(norm, 1e-12)


class Decoder:
    """Nearest-word search in a model's ``Wemb``, batched over tokens.

    Parameters
    ----------
    Wemb : array (V, E)
    top_words : int
        Restricted search: UNK (id 1) and ids 2 .. top_words+1.
    chunk : int
        Tokens per matrix product (bounds memory at chunk x V floats).
    """

    def __init__(self, Wemb, top_words, chunk=4096):
        self.Wemb = np.asarray(Wemb, dtype=np.float32)
        self.Wn = normalize_rows(self.Wemb)
        self.V = self.Wemb.shape[0]
        # Frequency-ranked ids: the restricted set is the contiguous block 1 .. top_words+1.
        self.top_end = min(self.V, top_words + 2)
        self.chunk = chunk

    def _chunks(self, vectors):
        for s in range(0, vectors.shape[0], self.chunk):
            yield s, normalize_rows(vectors[s:s + self.chunk])

    def nearest(self, vectors):
        """Nearest word over the whole vocabulary (no padding) and over the restricted set.

        Returns
        -------
        full, top : int64 arrays (N,)
        """
        full = np.empty(vectors.shape[0], dtype=np.int64)
        top = np.empty(vectors.shape[0], dtype=np.int64)
        for s, v in self._chunks(vectors):
            sims = v @ self.Wn[1:].T                          # ids 1 .. V-1
            full[s:s + len(v)] = 1 + sims.argmax(axis=1)
            top[s:s + len(v)] = 1 + sims[:, :self.top_end - 1].argmax(axis=1)
        return full, top

    def candidates(self, vectors, k):
        """The k most cosine-similar words of the restricted set, best first.

        Returns
        -------
        ids : int64 (N, k'), sims : float32 (N, k'), with k' = min(k, size of the set)
        """
        n_set = self.top_end - 1
        k = min(k, n_set)
        ids = np.empty((vectors.shape[0], k), dtype=np.int64)
        sims_out = np.empty((vectors.shape[0], k), dtype=np.float32)
        for s, v in self._chunks(vectors):
            sims = v @ self.Wn[1:self.top_end].T
            if k < n_set:
                part = np.argpartition(sims, n_set - k, axis=1)[:, n_set - k:]
            else:
                part = np.broadcast_to(np.arange(n_set), (len(v), n_set))
            part_sims = np.take_along_axis(sims, part, axis=1)
            order = np.argsort(-part_sims, axis=1, kind="stable")
            ids[s:s + len(v)] = 1 + np.take_along_axis(part, order, axis=1)
            sims_out[s:s + len(v)] = np.take_along_axis(part_sims, order, axis=1)
        return ids, sims_out


def bigram_decode(cand, sims, lengths, lm, lm_weight, max_cells=2_000_000):
    """Row 5: Viterbi over each review's candidates, cosine + lm_weight * bigram log-probability.

    Parameters
    ----------
    cand, sims : arrays (N, K)
        Candidates and their cosine similarities for the concatenated tokens of all reviews.
    lengths : sequence of int
        Tokens per review (sum = N).

    Returns
    -------
    int64 array (N,): the chosen word ids.
    """
    N, K = cand.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    out = np.empty(N, dtype=np.int64)
    order = np.argsort(lengths, kind="stable")
    i = 0
    while i < len(order):
        # A group of reviews of similar length, padded to the longest, about max_cells tokens*K*K.
        j = i + 1
        while j < len(order) and (j - i + 1) * lengths[order[j]] * K * K <= max_cells:
            j += 1
        group = order[i:j]
        T = int(lengths[group].max())
        B = len(group)
        c = np.zeros((B, T, K), dtype=np.int64)
        e = np.zeros((B, T, K), dtype=np.float32)
        for b, r in enumerate(group):
            L = lengths[r]
            c[b, :L] = cand[offsets[r]:offsets[r] + L]
            e[b, :L] = sims[offsets[r]:offsets[r] + L]
        start = lm_weight * lm.logprob(0, c[:, 0])
        trans = lm_weight * lm.logprob(c[:, :-1, :, None], c[:, 1:, None, :])
        last = np.take_along_axis(c, (lengths[group] - 1)[:, None, None], axis=1)[:, 0]
        end = lm_weight * lm.logprob(last, 0)
        path = viterbi(e, start, trans, end, lengths[group])
        for b, r in enumerate(group):
            L = lengths[r]
            out[offsets[r]:offsets[r] + L] = c[b, np.arange(L), path[b, :L]]
        i = j
    return out


# ---------------------------------------------------------------------------------------------

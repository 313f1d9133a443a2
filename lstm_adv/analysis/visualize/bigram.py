"""The bigram language model of row 5: interpolated Kneser-Ney over word ids, fitted and cached.

See the docstring of `lstm_adv.analysis.visualize` for the formulas.
"""

import json
import re
import time
from pathlib import Path

import numpy as np

from ...common.utils import atomic_savez
from ...data.imdb_source import cache_dir
from .inputs import load_data, vocab_digest
from .render import shown_path

# the bigram language model

LM_VERSION = 1


class BigramLM:
    """Interpolated Kneser-Ney bigram model over word ids; id 0 is the sentence boundary.

    Parameters
    ----------
    keys : int64 array, sorted
        ``a * V + b`` for every bigram (a, b) seen.
    counts : int64 array
        Its count.
    V : int
        Vocabulary size (ids 0 .. V-1).
    """

    def __init__(self, keys, counts, V):
        self.keys = np.asarray(keys, dtype=np.int64)
        self.counts = np.asarray(counts, dtype=np.float64)
        self.V = int(V)
        hist = self.keys // self.V
        self.ctx_total = np.bincount(hist, weights=self.counts, minlength=self.V)
        self.ctx_types = np.bincount(hist, minlength=self.V).astype(np.float64)
        cont = np.bincount(self.keys % self.V, minlength=self.V).astype(np.float64)
        self.p_cont = (cont + 1.0) / (cont.sum() + self.V)
        n1, n2 = float((self.counts == 1).sum()), float((self.counts == 2).sum())
        self.discount = float(np.clip(n1 / (n1 + 2 * n2), 0.05, 0.95)) if n1 + n2 > 0 else 0.5
        self.n_tokens = int(self.counts.sum())

    @classmethod
    def fit(cls, seqs, V):
        """Count the bigrams of id sequences, with boundaries: 0 w1 ... wn 0 w1' ... 0."""
        parts = [np.zeros(1, dtype=np.int64)]
        for s in seqs:
            if len(s):
                parts.append(np.asarray(s, dtype=np.int64))
                parts.append(np.zeros(1, dtype=np.int64))
        stream = np.concatenate(parts)
        if stream.size and int(stream.max()) >= V:
            raise ValueError(f"word id {int(stream.max())} >= V={V}")
        keys, counts = np.unique(stream[:-1] * V + stream[1:], return_counts=True)
        return cls(keys, counts, V)

    def logprob(self, prev, nxt):
        """log P(nxt | prev), elementwise over broadcast int arrays; float32."""
        prev, nxt = np.broadcast_arrays(np.asarray(prev, dtype=np.int64), np.asarray(nxt, dtype=np.int64))
        key = prev * self.V + nxt
        if self.keys.size:
            pos = np.minimum(np.searchsorted(self.keys, key), self.keys.size - 1)
            c = np.where(self.keys[pos] == key, self.counts[pos], 0.0)
        else:
            c = np.zeros(key.shape)
        total = self.ctx_total[prev]
        seen = total > 0
        safe = np.where(seen, total, 1.0)
        backoff = np.where(seen, self.discount * self.ctx_types[prev] / safe, 1.0)
        p = np.where(seen, np.maximum(c - self.discount, 0.0) / safe, 0.0) + backoff * self.p_cont[nxt]
        return np.log(p).astype(np.float32)

    def save(self, path, meta):
        atomic_savez(path, {"keys": self.keys, "counts": self.counts.astype(np.int64),
                            "V": np.array(self.V), "meta": np.array(json.dumps(meta))})

    @classmethod
    def load(cls, path, meta):
        """The cached model at ``path`` if its metadata equals ``meta``, else None."""
        try:
            with np.load(path, allow_pickle=False) as f:
                if json.loads(str(f["meta"])) != meta:
                    return None
                return cls(f["keys"], f["counts"], int(f["V"]))
        except (FileNotFoundError, OSError, ValueError, KeyError, EOFError, json.JSONDecodeError):
            return None


def lm_meta(run):
    return {"version": LM_VERSION, "data": run.cfg.data, "n_words": run.n_words, "vocab": vocab_digest(run.words)}


def lm_cache_path(run, opts):
    """Where the bigram model is cached: ``lm_cache=``, else the lstm_adv cache folder.

    The default is ``bigram/<data>-<vocabulary digest>.npz`` under `lstm_adv.data.imdb_source.cache_dir`
    (``$LSTM_ADV_CACHE``, else the user cache folder), never the run directory: a run directory
    holds what training wrote (and is published as such), and runs of one vocabulary share the model.
    """
    if opts.lm_cache:
        return Path(opts.lm_cache)
    meta = lm_meta(run)
    # data= may be a path (a user's corpus): its file name only, in characters safe in a file name.
    data = re.sub(r"[^A-Za-z0-9_.=-]+", "_", Path(meta["data"]).name) or "data"
    return cache_dir() / "bigram" / f"{data}-{meta['vocab']}.npz"


def cache_place(path):
    """Where the page says the bigram model is cached: no local absolute path (pages get published)."""
    try:
        rel = Path(path).resolve().relative_to(cache_dir().resolve())
    except ValueError:
        return shown_path(path)
    return f"{rel.as_posix()} in the lstm_adv cache folder ($LSTM_ADV_CACHE, else the user cache folder)"


def get_lm(run, opts, note):
    """The bigram model and its cache file (None if that could not be written): read from
    `lm_cache_path`, else fitted on the whole training split and cached there."""
    meta = lm_meta(run)
    path = lm_cache_path(run, opts)
    lm = BigramLM.load(path, meta)
    if lm is not None:
        return lm, path
    t0 = time.perf_counter()
    # Every training review: no maxlen filter; train + the run's validation part = the whole split.
    data = load_data(run.cfg, run.words, run.data_cache, maxlen=0, maxlen_mode="filter", test_size=-1)
    lm = BigramLM.fit(list(data.train.seqs) + list(data.valid.seqs), run.n_words)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lm.save(path, meta)
    except OSError as err:   # an unwritable cache costs a refit next time, not the page
        note(f"bigram model not cached: cannot write {path} ({err.strerror or err}); set LSTM_ADV_CACHE or lm_cache=")
        path = None
    note(f"bigram model: {lm.n_tokens} training bigrams, {lm.keys.size} distinct, D={lm.discount:.3f}, "
         f"fitted in {time.perf_counter() - t0:.1f}s" + (f", cached in {path}" if path else " (not cached)"))
    return lm, path

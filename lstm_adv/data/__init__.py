"""The one data interface the training loop uses, whatever the corpus.

`load_dataset` returns the `Dataset` named by ``cfg.data``: IMDB (`lstm_adv.data.imdb`), the
synthetic corpus (`lstm_adv.data.toy`) or a user's file or folder (`lstm_adv.data.corpus`), all prepared by `lstm_adv.data.base.finalize` (the
tutorial's ``imdb.load_data`` steps: maxlen filter on train only, seeded validation split, UNK
mapping, sort by length, test subset). `minibatches` and `BatchStream` draw minibatches;
`prepare_data` turns one into the time-major ``(x, mask, y)`` the model takes.

``python -m lstm_adv.data fetch|build|export`` manages the IMDB cache and writes IMDB in other
formats (see `lstm_adv.data.imdb`).
"""

import numpy as np

from .base import (PAD, UNK, Dataset, Split, build_dictionary, data_identity, encode, finalize, finalize_unlabelled,
                   vocabulary_note)

__all__ = ["PAD", "UNK", "BatchStream", "Dataset", "Split", "build_dictionary", "data_identity", "encode", "finalize",
           "finalize_unlabelled", "load_dataset", "minibatches", "prepare_data", "vocabulary_note"]


class BatchStream:
    """Endless minibatches of indices into ``n`` items, reshuffled by a seeded RNG at each pass.

    Its whole state (`state`, `restore`) goes into checkpoints, so a resumed run draws the
    same batches (the unlabelled reviews of ``unlabelled=N``).
    """

    def __init__(self, n, batch_size, rng):
        self.n, self.batch_size, self.rng = n, batch_size, rng
        self.perm, self.pos = None, 0

    def next(self):
        if self.perm is None or self.pos >= len(self.perm):
            self.perm, self.pos = self.rng.permutation(self.n), 0
        idx = self.perm[self.pos:self.pos + self.batch_size]
        self.pos += len(idx)
        return idx

    def state(self):
        """``(arrays, json-able dict)`` for a checkpoint."""
        arrays = {} if self.perm is None else {"perm": self.perm}
        return arrays, {"pos": self.pos, "rng": self.rng.bit_generator.state}

    def restore(self, arrays, state):
        self.perm = arrays.get("perm")
        self.pos = int(state["pos"])
        self.rng.bit_generator.state = state["rng"]


def load_dataset(cfg):
    """The `Dataset` named by ``cfg.data``."""
    # Imported when asked for: the IMDB reader's modules (tarfile, multiprocessing, urllib) would
    # slow down every `import lstm_adv.train`, and the corpora import `lstm_adv.data.base`, not us.
    if cfg.data == "toy":
        from .toy import load_toy
        return load_toy(cfg)
    if cfg.data == "imdb":
        from .imdb import load_imdb
        return load_imdb(cfg)
    from .corpus import load_corpus
    return load_corpus(cfg)


def prepare_data(seqs, labels, floatX="float32"):
    """A minibatch as the model takes it: time-major, post-padded with 0.

    Parameters
    ----------
    seqs : list of list of int
        ``n_samples`` reviews of any lengths (each at least one token).
    labels : sequence of int

    Returns
    -------
    x : ndarray, int64, shape (n_steps, n_samples)
    mask : ndarray, floatX, shape (n_steps, n_samples)
        1.0 on real tokens, 0.0 on padding.
    y : ndarray, int64, shape (n_samples,)
    """
    lengths = [max(len(s), 1) for s in seqs]
    n_steps = max(lengths)
    x = np.zeros((n_steps, len(seqs)), dtype=np.int64)
    mask = np.zeros((n_steps, len(seqs)), dtype=floatX)
    for j, s in enumerate(seqs):
        x[:len(s), j] = s
        mask[:lengths[j], j] = 1.0
    return x, mask, np.asarray(labels, dtype=np.int64)


def minibatches(n, batch_size, rng=None):
    """Index lists of minibatches, materialised (the tutorial's Python 3 ``zip`` bug consumed them).

    Parameters
    ----------
    n : int
    batch_size : int
    rng : numpy.random.Generator, optional
        Shuffle the order first (training); without it the order is kept (evaluation).

    Returns
    -------
    list of ndarray of int
    """
    idx = rng.permutation(n) if rng is not None else np.arange(n)
    return [idx[i:i + batch_size] for i in range(0, n, batch_size)]


"""What every corpus builds on: splits of word-id lists, the dictionary, and the tutorial's steps.

A corpus (IMDB in `lstm_adv.data.imdb`, the synthetic one in `lstm_adv.data.toy`, a user's file
or folder in `lstm_adv.data.corpus`) supplies
tokenised train and test reviews as lists of word ids over a frequency-ranked dictionary
(`build_dictionary`, `encode`); `finalize` then applies the tutorial's ``imdb.load_data`` steps
(maxlen filter on train only, seeded validation split, UNK mapping, sort by length, test
subset) and returns a `Dataset`. The corpora import this module, never `lstm_adv.data` itself.
"""

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..common.errors import UserError
from ..common.utils import make_rng

PAD, UNK = 0, 1


@dataclass
class Split:
    """Reviews as lists of word ids, with labels: class ids 0..K-1 (IMDB: 1 = positive, 0 = negative)."""

    seqs: list
    labels: np.ndarray

    def __len__(self):
        return len(self.seqs)

    def subset(self, idx):
        return Split([self.seqs[i] for i in idx], self.labels[np.asarray(idx, dtype=np.int64)])


@dataclass
class Dataset:
    """What training needs: three splits, the id -> word list, and facts for the log."""

    train: Split
    valid: Split
    test: Split
    words: list  # words[i] is the word with id i; words[0] = "<pad>", words[1] = "<unk>"
    info: dict = field(default_factory=dict)  # n_classes, label_names, split sizes, ... (config.json's "data")
    unlabelled: list = field(default_factory=list)  # unlabelled=N: id lists for the VAT term


def build_dictionary(token_lists):
    """Frequency-ranked dictionary, as the tutorial's ``build_dict`` meant it.

    Ids 0 and 1 are padding and UNK; the most frequent word is 2. Ties are broken by the
    word itself so the dictionary never depends on hash or file order (the original code's
    Python 2 dict order made ``n_words`` keep arbitrary words; see README, "Deviations").

    Returns
    -------
    words : list of str
        ``words[i]`` is the word with id ``i``.
    counts : list of int
        Training-split frequency of each word (0 for padding and UNK).
    """
    counter = Counter()
    for tokens in token_lists:
        counter.update(tokens)
    found, freq = list(counter), list(counter.values())
    order = dictionary_order(found, freq)
    return ["<pad>", "<unk>"] + [found[i] for i in order], [0, 0] + [freq[i] for i in order]


def dictionary_order(words, counts):
    """The dictionary's ranking, the one rule every corpus uses: positions of ``words`` with the
    most frequent first, ties broken by the word itself (never by hash or file order).

    Parameters
    ----------
    words : sequence of str
    counts : sequence of int, same length
        Training-split frequency of each word.

    Returns
    -------
    list of int
        Positions into ``words``; ids 2, 3, ... go to them in this order.
    """
    return sorted(range(len(words)), key=lambda i: (-int(counts[i]), words[i]))


def encode(token_lists, word_to_id):
    """Map token lists to id lists; words not in the dictionary become UNK (1), never padding."""
    return [[word_to_id.get(t, UNK) for t in tokens] for tokens in token_lists]


def _maxlen_rule(split, cfg):
    """The train split's maxlen rule: filter (the tutorial: length < maxlen kept) or truncate."""
    if cfg.maxlen and cfg.maxlen_mode == "filter":
        # Tutorial: only the train split is filtered (length < maxlen); the paper notes this
        # keeps about 10% of IMDB.
        return split.subset([i for i, s in enumerate(split.seqs) if len(s) < cfg.maxlen])
    if cfg.maxlen and cfg.maxlen_mode == "truncate":
        # Beyond the tutorial: keep every review, cut to its first maxlen tokens.
        return Split([s[:cfg.maxlen] for s in split.seqs], split.labels)
    return split


def vocab_ids(n_dict, cfg):
    """The id each dictionary word gets under ``cfg.vocab_order``, or None for "frequency".

    "random" (the authors' code, whose Python 2 dict order made ``n_words`` keep arbitrary word
    types, every other word on the UNK row): padding and UNK keep ids 0 and 1, the other words
    are shuffled by a stream of ``cfg.seed``, so the ``n_words`` cut keeps a random choice.

    Returns
    -------
    ndarray of int64, shape (n_dict,), or None
        ``new[old_id]``.
    """
    if cfg.vocab_order != "random":
        return None
    return np.concatenate([[PAD, UNK], 2 + make_rng(cfg.seed, "vocab_order").permutation(max(n_dict - 2, 0))])


def _renumber(seqs, new):
    """Id lists with every id replaced by ``new[id]`` (`vocab_ids`)."""
    return [new[np.asarray(s, dtype=np.int64)].tolist() for s in seqs]


def check_valid_draw(n_train, cfg):
    """Refuse a ``valid_portion`` draw from ``n_train`` training texts that leaves no validation text.

    An empty validation split would make the validation error NaN and the best model a guess.
    """
    if int(np.round(n_train * (1.0 - cfg.valid_portion))) < n_train:
        return
    least = next(n for n in range(n_train + 1, 10 ** 9) if int(np.round(n * (1.0 - cfg.valid_portion))) < n)
    portion = np.ceil(100 / max(n_train, 1)) / 100
    raise UserError(f"valid_portion={cfg.valid_portion} of {n_train} training texts leaves the validation split "
                    f"empty (it needs at least {least} training texts); raise valid_portion= (e.g. {portion:g}), "
                    "add texts, or give validation texts (split=valid rows, a valid/ folder)")


def finalize(train, test, words, cfg, info=None, valid=None):
    """Apply the tutorial's ``load_data`` to full-vocabulary splits.

    Parameters
    ----------
    train, test : Split
        All training and test reviews, ids over the full dictionary ``words``; labels are class
        ids 0..K-1.
    words : list of str
    cfg : Config
        Uses maxlen, maxlen_mode, valid_portion, n_words, test_size, seed.
    info : dict, optional
        Facts about the corpus; ``n_classes`` (K) if the corpus knows it, else the tutorial's
        ``ydim = max(train label) + 1``.
    valid : Split, optional
        A validation split the corpus names (``split=valid`` rows of a user's corpus): it passes
        the train split's maxlen rule and replaces the seeded ``valid_portion`` draw.

    Returns
    -------
    Dataset
        ``info`` gains the split sizes, ``n_classes``, ``train_class_fractions`` (the share of each
        class in the train split) and, for two classes, ``train_pos_fraction`` (of class 1).
    """
    info = dict(info or {})
    new = vocab_ids(len(words), cfg)
    if new is not None:   # vocab_order=random: the words renumbered before the n_words cut
        train, test = (Split(_renumber(x.seqs, new), x.labels) for x in (train, test))
        valid = None if valid is None else Split(_renumber(valid.seqs, new), valid.labels)
        order = np.argsort(new)
        words = [words[i] for i in order]
        if info.get("word_counts") is not None:
            info["word_counts"] = [info["word_counts"][i] for i in order]
    n_train_all = len(train)
    train = _maxlen_rule(train, cfg)
    info["train_kept_fraction"] = len(train) / max(n_train_all, 1)
    if len(train) < 2:
        raise UserError(f"only {len(train)} training reviews are shorter than maxlen={cfg.maxlen}; "
                        "raise maxlen or use maxlen_mode=truncate")

    if valid is None:
        check_valid_draw(len(train), cfg)
        perm = make_rng(cfg.seed, "valid_split").permutation(len(train))
        n_fit = int(np.round(len(train) * (1.0 - cfg.valid_portion)))
        valid = train.subset(perm[n_fit:])
        train = train.subset(perm[:n_fit])
    else:
        valid = _maxlen_rule(valid, cfg)
        if len(valid) == 0:
            raise UserError(f"no validation text (split=valid) is shorter than maxlen={cfg.maxlen}; raise maxlen "
                            "or use maxlen_mode=truncate")

    if cfg.test_size > 0 and cfg.test_size < len(test):
        # Deviation: the tutorial shuffled with the global numpy RNG; ours is seeded.
        idx = make_rng(cfg.seed, "test_subset").permutation(len(test))[:cfg.test_size]
        test = test.subset(np.sort(idx))

    def remove_unk(split):
        return Split([[w if w < cfg.n_words else UNK for w in s] for s in split.seqs], split.labels)

    def sort_by_len(split):
        order = sorted(range(len(split)), key=lambda i: len(split.seqs[i]))
        return split.subset(order)

    train, valid, test = (sort_by_len(remove_unk(s)) for s in (train, valid, test))
    # The tutorial's ydim = max(train label) + 1, unless the corpus names its classes.
    K = int(info.get("n_classes") or (int(np.max(train.labels)) + 1 if len(train) else 2))
    fractions = np.bincount(np.asarray(train.labels, dtype=np.int64), minlength=K) / max(len(train), 1)
    info.update(n_train=len(train), n_valid=len(valid), n_test=len(test), n_train_all=n_train_all,
                vocab_size=len(words))
    if K == 2:
        info["train_pos_fraction"] = round(float(np.mean(train.labels)), 6)
    info.update(n_classes=K, train_class_fractions=[round(float(f), 6) for f in fractions])
    return Dataset(train, valid, test, words, info)


def vocabulary_note(data, n_words):
    """The log's words on the vocabulary: the dictionary's size and the part of it the model uses.

    The dictionary counts every training word, but the model embeds only ids 0 .. n_words-1 (the
    most frequent words, or a random choice with vocab_order=random); the rest were mapped to UNK
    by `finalize`. Saying both keeps a
    reader from taking the dictionary (IMDB: 101,746 words) for the model's vocabulary (10,000).

    Parameters
    ----------
    data : Dataset
        From `finalize`: its train split already maps ids >= ``n_words`` to UNK.
    n_words : int
        The model's vocabulary size, ``min(cfg.n_words, len(data.words))``.

    Returns
    -------
    str
        E.g. ``dictionary 101746 words, the model's n_words=10000 (the rest are UNK: 2.9% of the
        training tokens)``.
    """
    size = len(data.words)
    if n_words >= size:
        return f"dictionary {size} words, all in the model (n_words={n_words})"
    # One pass of list.count over the train split (lists of ids): well under a second on IMDB.
    unk = sum(s.count(UNK) for s in data.train.seqs)
    total = sum(len(s) for s in data.train.seqs)
    return (f"dictionary {size} words, the model's n_words={n_words} (the rest are UNK: "
            f"{100 * unk / max(total, 1):.1f}% of the training tokens)")


def data_identity(data, n_words):
    """What a resumed run must find again: the data's content, its vocabulary and its label names.

    Recorded in ``config.json`` (``data_identity``) and compared by `lstm_adv.rundir.RunDir.check_same_data`
    when a run resumes, so that a checkpoint never trains on on other data than it began with.

    Parameters
    ----------
    data : Dataset
    n_words : int
        The model's vocabulary size (rows of ``Wemb``).

    Returns
    -------
    dict
        ``source_sha256``: the corpus file's or IMDB archive's content hash (a folder's fingerprint;
        None for data=toy, which a seed makes); ``vocab_sha256``: SHA-256 of the JSON list of the
        model's ``n_words`` words, in id order (a renumbering changes it); ``n_words``;
        ``label_names``: the class names in class-id order.
    """
    words = json.dumps(list(data.words[:n_words]), ensure_ascii=False).encode("utf-8")
    return {"source_sha256": data.info.get("sha256"), "vocab_sha256": hashlib.sha256(words).hexdigest(),
            "n_words": int(n_words), "label_names": [str(n) for n in data.info.get("label_names", [])]}


def finalize_unlabelled(seqs, cfg, n_dict=None):
    """Up to ``cfg.unlabelled`` unlabelled reviews, prepared as `finalize` prepares the train split.

    The same maxlen rule (filter: length < maxlen; truncate: cut), then the first N in the
    corpus's fixed order (the same reviews for every seed), ids renumbered as `vocab_ids` says
    (``n_dict``: the dictionary's size, needed with vocab_order=random), ids >= n_words mapped to
    UNK. Empty reviews are dropped.
    """
    if n_dict is None and cfg.vocab_order == "random":
        raise ValueError("finalize_unlabelled: vocab_order=random needs n_dict, the dictionary's size")
    new = vocab_ids(n_dict, cfg)
    if new is not None:
        seqs = _renumber(seqs, new)
    if cfg.maxlen and cfg.maxlen_mode == "filter":
        seqs = [s for s in seqs if len(s) < cfg.maxlen]
    elif cfg.maxlen and cfg.maxlen_mode == "truncate":
        seqs = [s[:cfg.maxlen] for s in seqs]
    seqs = [s for s in seqs if len(s)][:cfg.unlabelled]
    return [[w if w < cfg.n_words else UNK for w in s] for s in seqs]


def train_err_split(train, size):
    """The training reviews a validation's train error is measured on.

    Deviation from the tutorial (which always uses the whole train split), only with ``size >= 0``:
    on all 23,750 reviews cut to 100 tokens, that evaluation took about as long as the 370 plain
    updates between two validations.

    Parameters
    ----------
    train : lstm_adv.data.Split
        Sorted by length, so evenly spaced reviews cover every length (and keep batches short).
    size : int
        ``cfg.train_err_size``; -1 (or at least ``len(train)``): the whole split.

    Returns
    -------
    lstm_adv.data.Split
        ``min(size, len(train))`` reviews in their order, the first and the last among them.
    """
    if size < 0 or size >= len(train):
        return train
    return train.subset(np.unique(np.linspace(0, len(train) - 1, size).round().astype(np.int64)))

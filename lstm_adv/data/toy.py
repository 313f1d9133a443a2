"""A small deterministic synthetic sentiment corpus made in code (``data=toy``).

Reviews are strings of neutral filler words with a few sentiment words mixed in; the label is
which polarity has more sentiment words. It is learnable in seconds, so the whole training
loop, the sweep and the visualiser can be run and tested without IMDB. The corpus is the same
for every ``seed`` (it has its own fixed generator); the seed still drives the validation
split, initialisation, shuffling and dropout, as on IMDB.
"""

import numpy as np

from .base import Split, build_dictionary, encode, finalize, finalize_unlabelled

POSITIVE = ["good", "great", "excellent", "wonderful", "superb", "enjoyable", "fun", "brilliant"]
NEGATIVE = ["bad", "awful", "boring", "terrible", "dull", "poor", "worst", "waste"]
NEUTRAL = ["the", "a", "movie", "film", "plot", "actor", "scene", "and", "of", "it", "was", "is",
           "this", "story", "with", "but", "director", "cast", "ending", "music", "i", "saw", "very",
           "quite", "some", "really", "one", "two", "time", "character", "<br", "/>", ".", ",", "!"]

N_TRAIN, N_TEST = 1000, 400

#: The toy's stand-in for pretrained vectors (``wemb_init=word2vec``, its default): small noise
#: like GoogleNews's (per-coordinate std 0.144) plus the word's polarity, +-POLARITY on coordinate
#: 0. The polarity is 4x eps=0.5, so the paper's sign perturbation of a review cannot erase it;
#: from the tutorial's random init (0.01 * U[0, 1)) eps=0.5 is 100x every coordinate and an
#: adversarial toy run stays at chance (experiments/results/README.md, "The toy corpus: what lets eps=0.5 learn").
POLARITY, NOISE_STD = 2.0, 0.144
MIN_LEN, MAX_LEN = 3, 16


def make_reviews(n, rng):
    """``n`` tokenised reviews and labels from a generator."""
    reviews, labels = [], []
    for _ in range(n):
        label = int(rng.integers(2))
        length = int(rng.integers(MIN_LEN, MAX_LEN + 1))
        tokens = list(rng.choice(NEUTRAL, size=length))
        # 2-4 words of the review's polarity and 0-1 of the other, at random places.
        own, other = (POSITIVE, NEGATIVE) if label else (NEGATIVE, POSITIVE)
        for words, count in ((own, int(rng.integers(2, 5))), (other, int(rng.integers(0, 2)))):
            for w in rng.choice(words, size=count):
                tokens.insert(int(rng.integers(len(tokens) + 1)), str(w))
        reviews.append([str(t) for t in tokens])
        labels.append(label)
    return reviews, np.asarray(labels, dtype=np.int64)


def toy_vectors(words, dim, seed=20151201):
    """Word vectors for the toy vocabulary, shape (len(words), dim); padding row 0.

    Returns
    -------
    W : ndarray (float64)
    info : dict
        How they were made (goes into the run's ``config.json``).
    """
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    rng = np.random.default_rng(seed)
    W = NOISE_STD * rng.standard_normal((len(words), dim))
    for i, w in enumerate(words):
        W[i, 0] += POLARITY if w in POSITIVE else -POLARITY if w in NEGATIVE else 0.0
    W[0] = 0.0
    info = {"w2v_source": "toy vectors (lstm_adv.data.toy.toy_vectors)", "polarity": POLARITY, "noise_std": NOISE_STD,
            "coverage": 1.0, "w2v_file": "(made in code)", "missing_init": "none",
            "file_coord_std": round(float(W[1:].std()), 5)}
    return W, info


def load_toy(cfg):
    """The toy corpus as a `Dataset` (see `lstm_adv.data.base.finalize`)."""
    rng = np.random.default_rng(20151201)  # fixed: the corpus itself never changes
    train_tokens, train_labels = make_reviews(N_TRAIN, rng)
    test_tokens, test_labels = make_reviews(N_TEST, rng)
    words, counts = build_dictionary(train_tokens)
    word_to_id = {w: i for i, w in enumerate(words)}
    train = Split(encode(train_tokens, word_to_id), train_labels)
    test = Split(encode(test_tokens, word_to_id), test_labels)
    info = {"source": "toy", "label_names": ["negative", "positive"], "n_classes": 2, "word_counts": counts}
    data = finalize(train, test, words, cfg, info)
    if cfg.unlabelled:
        # unlabelled=N: more reviews from the generator (its own fixed stream), labels dropped.
        tokens, _ = make_reviews(cfg.unlabelled, np.random.default_rng(20151202))
        data.unlabelled = finalize_unlabelled(encode(tokens, word_to_id), cfg, len(words))
        data.info["n_unlabelled"] = len(data.unlabelled)
    return data

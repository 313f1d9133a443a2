"""Word substitutions: which words of a model's vocabulary may replace which.

The candidates of the word-level attacks (`lstm_adv.attack`) and of the defences built for them
(ASCC: `lstm_adv.core.ascc`; synonym augmentation: `augment`) come from one `SubstitutionTable`,
built for a model's vocabulary from a synonym source:

- ``synonyms=wordnet`` (default): WordNet 3.0's synonym sets of single-word lemmas, shipped in
  ``resources/`` with WordNet's licence (built by ``experiments/build_wordnet_synonyms.py``). A
  token is looked up by its lemmas (`morphy`, WordNet's own rules: "movies" -> "movie"), as PWWS's
  ``wordnet.synsets(token)`` does, and gets every other lemma of their synsets.
  Deviation from PWWS (Ren et al. 2019): no part-of-speech filter (they tag each review with
  spaCy and keep synsets of the tag's part of speech) and no named-entity substitution; synonyms of
  every part of speech are candidates, so our candidate sets are larger.
- ``synonyms=PATH``: a user's table, one line per word, ``word<TAB>substitute<TAB>substitute...``
  (substitutes may also be separated by spaces), e.g. counter-fitted embedding neighbours; words
  are taken as written (lowercase them to match the tokeniser's output), no lemmatising.

Two rules apply to every source, and are recorded with every attack and training
(`SubstitutionTable.info`): a substitute counts only if it is in the model's vocabulary (an id
below ``n_words``: a synonym that maps to UNK is not a synonym), and a stopword
(``resources/stopwords.txt``) is never replaced nor used as a substitute.
"""

import gzip
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..common.errors import UserError
from .base import PAD, UNK

RESOURCES = Path(__file__).resolve().parent / "resources"
WORDNET = "wordnet"

#: WordNet's detachment rules (morphy), by part of speech: (suffix, replacement)
_DETACH = {
    "noun": (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
             ("ies", "y")),
    "verb": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")),
    "adj": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "adv": (),
}


@lru_cache(maxsize=None)
def stopwords():
    """The stopword list (``resources/stopwords.txt``), a frozenset of lowercase words."""
    lines = (RESOURCES / "stopwords.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip() for w in lines if w.strip() and not w.startswith("#"))


@lru_cache(maxsize=None)
def _wordnet():
    """(lemma -> tuple of synonyms, pos -> {irregular form -> lemmas}) from the shipped tables."""
    table = {}
    with gzip.open(RESOURCES / "wordnet_synonyms.tsv.gz", "rt", encoding="utf-8") as f:
        for line in f:
            word, _, subs = line.rstrip("\n").partition("\t")
            table[word] = tuple(subs.split())
    exceptions = {pos: {} for pos in _DETACH}
    with gzip.open(RESOURCES / "wordnet_exceptions.tsv.gz", "rt", encoding="utf-8") as f:
        for line in f:
            pos, form, lemma = line.rstrip("\n").split("\t")
            exceptions[pos].setdefault(form, []).append(lemma)
    return table, exceptions


def morphy(word, lemmas):
    """A token's WordNet lemmas: itself if it is one, its irregular forms' lemmas, and what
    WordNet's detachment rules make of it that is a lemma (nltk's ``morphy``, every part of speech).

    Parameters
    ----------
    word : str
    lemmas : container of str
        The known lemmas.

    Returns
    -------
    list of str, without repeats, in that order.
    """
    _, exceptions = _wordnet()
    found = [word] if word in lemmas else []
    for pos, rules in _DETACH.items():
        found += [w for w in exceptions[pos].get(word, ()) if w in lemmas]
        found += [word[:-len(suffix)] + repl for suffix, repl in rules
                  if word.endswith(suffix) and word[:-len(suffix)] + repl in lemmas]
    return list(dict.fromkeys(found))


@dataclass
class SynonymSource:
    """Where substitutes come from: ``name`` ("wordnet" or the file's path), its SHA-256 and a lookup."""

    name: str
    sha256: str
    table: dict = field(repr=False)
    lemmatize: bool = False

    def synonyms(self, word):
        """The substitutes of ``word`` (a list of str, without ``word`` itself)."""
        if not self.lemmatize:
            return [w for w in self.table.get(word, ()) if w != word]
        out = []
        for lemma in morphy(word, self.table):
            out += [lemma, *self.table[lemma]]   # "movies" -> "movie" too, as PWWS's synsets give it
        return [w for w in dict.fromkeys(out) if w != word]


def load_synonyms(spec=WORDNET):
    """The `SynonymSource` named by ``synonyms=``: ``wordnet`` or a TSV file's path.

    Raises
    ------
    UserError
        A missing or unreadable file, or a line without a word and at least one substitute.
    """
    if spec == WORDNET:
        table, _ = _wordnet()
        digest = hashlib.sha256((RESOURCES / "wordnet_synonyms.tsv.gz").read_bytes()).hexdigest()
        return SynonymSource(WORDNET, digest, table, lemmatize=True)
    path = Path(spec)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"synonyms={spec}: no such file; give 'wordnet' or a TSV file (word<TAB>substitutes)") from None
    except (IsADirectoryError, PermissionError, OSError) as err:
        raise UserError(f"synonyms={spec}: cannot read it ({err.strerror or err}); give a readable TSV file") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UserError(f"synonyms={spec}: not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    table = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        word, sep, rest = line.partition("\t")
        subs = rest.replace("\t", " ").split()
        if not sep or not word.strip() or not subs:
            raise UserError(f"synonyms={spec}, line {n}: expected a word, a tab, then its substitutes "
                            f"(got {line[:60]!r}); fix the line or remove it")
        table.setdefault(word.strip(), [])
        table[word.strip()] += [s for s in subs if s not in table[word.strip()]]
    if not table:
        raise UserError(f"synonyms={spec}: no word with substitutes in it; give 'wordnet' or a TSV file "
                        "(word<TAB>substitutes)")
    return SynonymSource(str(path), hashlib.sha256(raw).hexdigest(), {k: tuple(v) for k, v in table.items()})


class SubstitutionTable:
    """The substitutes of every word of a model's vocabulary, as vocabulary ids.

    Parameters
    ----------
    source : SynonymSource
    words : list of str
        The model's id -> word list (``vocab.json``; ``words[0]``, ``words[1]``: padding, UNK).
    n_words : int
        The model's vocabulary size: ids >= n_words are UNK and are no substitutes.

    Attributes
    ----------
    subs : list of ndarray of int64, length n_words
        ``subs[i]``: the ids that may replace word ``i`` (none for padding, UNK and stopwords; a
        substitute is in the vocabulary, not a stopword, not ``i`` itself), in the source's order.
    """

    def __init__(self, source, words, n_words):
        self.source = source
        n_words = min(int(n_words), len(words))
        self.n_words = n_words
        stop = stopwords()
        ids = {w: i for i, w in enumerate(words[:n_words]) if i not in (PAD, UNK) and w not in stop}
        empty = np.zeros(0, dtype=np.int64)
        self.subs = [empty] * n_words
        for w, i in ids.items():
            found = [ids[s] for s in source.synonyms(w) if s in ids and ids[s] != i]
            if found:
                self.subs[i] = np.array(list(dict.fromkeys(found)), dtype=np.int64)

    def has_substitutes(self, ids):
        """A boolean array: which of ``ids`` (any shape) have a substitute."""
        sizes = np.array([len(s) for s in self.subs] + [0])
        ids = np.asarray(ids, dtype=np.int64)
        return sizes[np.where((ids >= 0) & (ids < self.n_words), ids, self.n_words)] > 0

    def padded(self, max_size):
        """The substitution sets as a matrix, each word first: for ASCC's convex hull.

        Parameters
        ----------
        max_size : int
            Columns; a word with more substitutes keeps its first ``max_size - 1``.

        Returns
        -------
        ids : ndarray of int64, shape (n_words, max_size)
            Row i: i, then its substitutes, then i again as padding.
        mask : ndarray of float32, shape (n_words, max_size)
            1 on a word and its substitutes, 0 on the padding.
        """
        ids = np.repeat(np.arange(self.n_words, dtype=np.int64)[:, None], max_size, axis=1)
        mask = np.zeros((self.n_words, max_size), dtype=np.float32)
        mask[:, 0] = 1
        for i, s in enumerate(self.subs):
            s = s[:max_size - 1]
            ids[i, 1:1 + len(s)] = s
            mask[i, 1:1 + len(s)] = 1
        return ids, mask

    def info(self):
        """What every attack and training records about its substitutions."""
        sizes = np.array([len(s) for s in self.subs])
        return {"synonyms": self.source.name, "synonyms_sha256": self.source.sha256,
                "stopwords": f"lstm_adv/data/resources/stopwords.txt ({len(stopwords())} words, never changed)",
                "substitutes_in_vocabulary_only": True, "n_words": self.n_words,
                "words_with_substitutes": int((sizes > 0).sum()),
                "mean_substitutes": round(float(sizes[sizes > 0].mean()), 3) if (sizes > 0).any() else 0.0}


def augment(seqs, table, p, rng):
    """Synonym augmentation (the baseline of Jia et al. 2019): each token that has substitutes is
    replaced, with probability ``p``, by one of them drawn uniformly.

    Parameters
    ----------
    seqs : list of sequences of int
        A batch's reviews (word ids), before `lstm_adv.data.prepare_data`.
    table : SubstitutionTable
        Stopwords, padding, UNK and words without in-vocabulary substitutes are never replaced.
    p : float
        In [0, 1].
    rng : numpy Generator
        Two draws per token (replace or not; which substitute), whatever ``p``.

    Returns
    -------
    list of lists of int: new reviews of the same lengths (``seqs`` is not changed).
    """
    lengths = [len(s) for s in seqs]
    flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs]) if seqs else np.zeros(0, np.int64)
    replace = rng.random(len(flat)) < p
    pick = rng.random(len(flat))
    for j in np.flatnonzero(replace & table.has_substitutes(flat)):
        subs = table.subs[flat[j]]
        flat[j] = subs[int(pick[j] * len(subs))]
    return [part.tolist() for part in np.split(flat, np.cumsum(lengths)[:-1])] if seqs else []

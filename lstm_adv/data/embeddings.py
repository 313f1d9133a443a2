"""Pretrained word vectors: load word2vec files into ``Wemb``, or train them on IMDB.

The paper initialised the embeddings from the GoogleNews word2vec vectors (300-d);
``wemb_init=word2vec w2v_path=FILE wdim=300`` does that through `load_word2vec`. Users
without GoogleNews can make their own vectors from the IMDB train + unlabelled reviews::

    python -m lstm_adv.embeddings train [data_path=...] [out=FILE] [dim=300] [epochs=5] [workers=2]
"""

import fcntl
import gzip
import logging
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common import checks
from ..common.errors import UserError
from ..common.lifecycle import cli_entry
from ..common.options import help_text, option, parse, wants_help
from ..common.utils import atomic_path
from .imdb import load_corpus
from .imdb_source import cache_dir, find_source, read_reviews, tokenize_texts

_BINARY_SUFFIXES = (".bin", ".bin.gz")
_TEXT_SUFFIXES = (".txt", ".txt.gz", ".vec", ".vec.gz")


def _open(path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def sniff_word2vec(path):
    """Check a word2vec file's header and tell binary from text.

    Binary is decided by the extension (``.bin``, ``.bin.gz``; ``.txt``/``.vec`` are text),
    otherwise by looking at the first vector: text is ``word`` and ``dim`` numbers on one line.

    Returns
    -------
    binary : bool
    count, dim : int
        From the header line ``COUNT DIM``.

    Raises
    ------
    UserError
        If the file is not word2vec (no ``COUNT DIM`` header, unreadable).
    """
    path = Path(path)
    not_w2v = f"{path} is not a word2vec file (its first line should be 'COUNT DIM')"
    try:
        with _open(path) as fh:
            header = fh.readline(200)
            first = fh.readline(65536)
    except (OSError, EOFError, zlib.error) as err:   # zlib.error: gzip magic over a broken stream
        raise UserError(f"{not_w2v}: cannot read it ({err})") from None
    try:
        count, dim = (int(x) for x in header.decode("ascii").split())
    except (UnicodeDecodeError, ValueError):
        raise UserError(f"{not_w2v}; it starts with {header[:40]!r}") from None
    if count <= 0 or dim <= 0:
        raise UserError(f"{not_w2v}; its header says {count} vectors of dimension {dim}")
    name = path.name.lower()
    if name.endswith(_BINARY_SUFFIXES):
        return True, count, dim
    if name.endswith(_TEXT_SUFFIXES):
        return False, count, dim
    try:
        fields = first.decode("utf-8").split()
        [float(x) for x in fields[1:]]
        binary = len(fields) != dim + 1
    except (UnicodeDecodeError, ValueError):
        binary = True
    return binary, count, dim


def load_word2vec(path, words, W_init, limit=0, missing="init", std=0.0, rng=None):
    """Embeddings from a word2vec file, aligned to the dictionary.

    Each word takes the file's vector for the word itself, else for its lowercase,
    capitalised or upper-case spelling (IMDB words are lowercase; GoogleNews keeps case).
    Words found nowhere, padding and UNK keep their row of ``W_init``.

    Parameters
    ----------
    path : str or Path
        word2vec file, binary or text, optionally gzipped (read with gensim's ``KeyedVectors``).
    words : list of str
        ``n`` words; ``words[i]`` is the word with id ``i`` (ids 0 and 1 are padding and UNK).
    W_init : ndarray, shape (n, wdim)
        The random initialisation.
    limit : int
        Read only the first ``limit`` vectors (the most frequent, in GoogleNews); 0 = all.
    missing : {"init", "uniform"}
        Rows of words the file lacks (and UNK): keep ``W_init``'s, or draw U(-0.25, 0.25) from
        ``rng`` with the padding row 0, as the authors' code did.
    std : float
        If > 0, scale the vectors read from the file so that their per-coordinate standard
        deviation is ``std`` (GoogleNews's is 0.144); the rows of missing words are not scaled.

    Returns
    -------
    W : ndarray, shape (n, wdim), dtype of ``W_init``
    info : dict
        Coverage: found_exact, found_case, missing, coverage (fraction of the n - 2 real
        words), missing_examples (the most frequent misses), the file's facts, and the scale of
        the found rows before and after rescaling (per-coordinate std, median row norm).

    Raises
    ------
    UserError
        Missing file, not word2vec (unreadable, cut short, a NaN or Inf value), or a dimension
        different from ``wdim``.
    """
    path = Path(path)
    W_init = np.asarray(W_init)
    if W_init.ndim != 2 or W_init.shape[0] != len(words):
        raise ValueError(f"W_init has shape {W_init.shape}; expected ({len(words)}, wdim)")
    if not path.is_file():
        raise UserError(f"w2v_path={path}: no such file; give a word2vec .bin/.txt file (e.g. "
                        "GoogleNews-vectors-negative300.bin.gz, or make one with python -m lstm_adv.embeddings train)")
    binary, count, dim = sniff_word2vec(path)
    wdim = W_init.shape[1]
    if dim != wdim:
        raise UserError(f"{path} holds {dim}-dimensional vectors but wdim={wdim}; use wdim={dim}")

    from gensim.models import KeyedVectors  # gensim is slow to import: only when reading vectors
    try:
        kv = KeyedVectors.load_word2vec_format(str(path), binary=binary, limit=limit or None)
    except (ValueError, EOFError, UnicodeDecodeError, OSError, IndexError, KeyError) as err:
        kind = "binary" if binary else "text"
        raise UserError(f"{path} could not be read as a {kind} word2vec file ({type(err).__name__}: {err}); "
                        "is it complete and in word2vec format?") from None

    bad = _first_non_finite(kv.vectors)
    if bad is not None:
        raise UserError(f"{path}: the vector of {kv.index_to_key[bad]!r} (number {bad + 1}) holds NaN or Inf: the "
                        "file is damaged; make it again (python -m lstm_adv.embeddings train) or give another")
    if missing not in ("init", "uniform"):
        raise ValueError(f"missing must be 'init' or 'uniform', got {missing!r}")
    W = W_init.copy()
    if missing == "uniform":
        if rng is None:
            raise ValueError("missing='uniform' needs rng")
        W = rng.uniform(-0.25, 0.25, size=W.shape).astype(W.dtype)
        W[0] = 0.0
    found = np.zeros(len(words), dtype=bool)
    index = kv.key_to_index
    exact = case = 0
    missing_words = []
    for i, w in enumerate(words):
        if i < 2 and w in ("<pad>", "<unk>"):
            continue
        j = index.get(w)
        if j is not None:
            exact += 1
        else:
            for variant in (w.lower(), w.capitalize(), w.upper()):
                j = index.get(variant)
                if j is not None:
                    case += 1
                    break
        if j is None:
            missing_words.append(w)
        else:
            W[i] = kv.vectors[j]
            found[i] = True
    scale = _scale_facts(W[found], "file")
    if std > 0 and found.any():
        # Deviation (see README): stand-in vectors rescaled to GoogleNews's scale, because eps is an
        # absolute step and the attack's strength is relative to the embeddings' size.
        W[found] *= std / max(float(W[found].std()), 1e-12)
        scale.update(_scale_facts(W[found], "scaled"))
    n_real = exact + case + len(missing_words)
    info = {"w2v_path": str(path), "w2v_binary": binary, "w2v_vectors": len(kv), "w2v_dim": dim,
            "w2v_limit": limit, "found_exact": exact, "found_case": case, "missing": len(missing_words),
            "coverage": (exact + case) / max(n_real, 1), "missing_examples": missing_words[:20],
            "missing_init": missing, "w2v_std_target": std, **scale}
    return W, info


def _first_non_finite(vectors, chunk=65536):
    """The index of the first row of ``vectors`` holding NaN or Inf, else None.

    In chunks: GoogleNews's 3M x 300 at once would take a 900 MB mask.
    """
    for start in range(0, len(vectors), chunk):
        ok = np.isfinite(vectors[start:start + chunk]).all(axis=1)
        if not ok.all():
            return start + int(np.argmin(ok))
    return None


def _scale_facts(rows, tag):
    if len(rows) == 0:
        return {}
    return {f"{tag}_coord_std": round(float(rows.std()), 5),
            f"{tag}_median_row_norm": round(float(np.median(np.linalg.norm(rows, axis=1))), 5)}


# ---------------------------------------------------------------------------------------------
# training word2vec on IMDB

#: Settings of the vectors built on first use for ``wemb_init=word2vec`` without ``w2v_path``:
#: 300-d CBOW, 3 epochs over the train + unlabelled reviews (the settings measured in SPEC.md).
AUTO_SETTINGS = {"epochs": 3, "window": 5, "min_count": 5, "workers": 2, "unsup": 1, "seed": 123}


def auto_vectors_path(cache, dim):
    """Where the package's own IMDB vectors of dimension ``dim`` live (their settings in the name)."""
    a = AUTO_SETTINGS
    return Path(cache) / f"imdb-word2vec-{dim}d-cbow-e{a['epochs']}-w{a['window']}-m{a['min_count']}-s{a['seed']}.bin"


def ensure_imdb_vectors(dim, data_path="", download=True, progress=True, log=print):
    """The package's IMDB-trained vectors (`AUTO_SETTINGS`), trained on first use and cached.

    A file lock lets parallel runs of a sweep wait for one build instead of each training.

    Returns
    -------
    Path of a word2vec binary file
    """
    cache = cache_dir()
    out = auto_vectors_path(cache, dim)

    def build():
        log(f"training the IMDB word2vec stand-in ({dim}-d, once; several minutes on 2 cores) -> {out}")
        train_imdb_word2vec(EmbeddingOptions(**AUTO_SETTINGS, data_path=data_path, cache_dir=str(cache), out=str(out),
                                             dim=dim, download=bool(download), progress=bool(progress)))

    return _build_once(out, build)


def _build_once(out, build):
    """``out``, made by ``build()`` unless it exists; under a file lock beside it, so parallel runs
    (a sweep's) build it once and the others wait for it."""
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(out.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out.is_file():
            build()
    return out


def ensure_corpus_vectors(cfg, info, log=print):
    """``preset=authors`` on a user's corpus: word2vec (`AUTO_SETTINGS`, one worker thread so it is
    reproducible) trained on the corpus's own non-test texts, on first use, and cached under the
    corpus's content SHA-256 (`lstm_adv.data.corpus.corpus_sentences`).

    Returns
    -------
    Path of a word2vec binary file
    """
    from gensim.models import Word2Vec  # gensim is slow to import: only when training

    from .corpus import corpus_sentences

    a, cache = AUTO_SETTINGS, cache_dir()
    columns = Path(info["cache"]).name.split("-")[2]   # the cache's key for the columns read
    out = cache / (f"corpus-{info['sha256'][:16]}-{columns}-word2vec-{cfg.wdim}d-cbow-e{a['epochs']}-w{a['window']}"
                   f"-m{a['min_count']}-s{a['seed']}-t{cfg.test_portion!r}.bin")

    def build():
        log(f"training word2vec on {cfg.data} ({cfg.wdim}-d, once) -> {out}")
        model = Word2Vec(sentences=corpus_sentences(cfg), vector_size=cfg.wdim, window=a["window"],
                         min_count=a["min_count"], workers=1, epochs=a["epochs"], seed=a["seed"])
        save_word2vec(model.wv, out)

    return _build_once(out, build)


@dataclass(frozen=True)
class EmbeddingOptions:
    """The keys of ``python -m lstm_adv.embeddings train``."""

    data_path: str = option("", "aclImdb tarball or folder (else $LSTM_ADV_DATA, else the cache dir)")
    cache_dir: str = option("", "cache folder (else $LSTM_ADV_CACHE, else the user cache dir)")
    out: str = option("", "output (default: CACHE/imdb-word2vec-<dim>d-....bin); .txt/.vec = text format")
    dim: int = option(300, "vector size (GoogleNews has 300)", minimum=1)
    epochs: int = option(5, "passes over the reviews", minimum=1)
    window: int = option(5, "context window", minimum=1)
    min_count: int = option(5, "ignore rarer words", minimum=1)
    workers: int = option(2, "processes for tokenising, threads for training", minimum=1)
    unsup: bool = option(True, "also use train/unsup (0 = labelled train reviews only)")
    seed: int = option(123, "gensim's seed (training with workers > 1 is not bit-reproducible)", minimum=0)
    download: bool = option(True, "fetch the archive if it is nowhere")
    progress: bool = option(True, "progress bars and gensim's log")


HELP = help_text(EmbeddingOptions, "python -m lstm_adv.embeddings train [key=value ...]", """\
Train word2vec vectors (gensim, CBOW with negative sampling) on the IMDB train reviews plus the
50,000 unlabelled ones, tokenised as for the classifier, and save them in word2vec binary format.
Then: python -m lstm_adv.train wemb_init=word2vec w2v_path=FILE wdim=DIM""")


def _parse(args):
    opts = parse(EmbeddingOptions, args)
    # The vectors (dim per word of at most ~1M distinct tokens) and gensim's two copies must fit.
    checks.fits_in_memory(f"dim={opts.dim}", opts.dim * 4 * 3 * 1_000_000, "use a smaller dim")
    if opts.data_path:
        checks.readable_path("data_path", opts.data_path)
    cache = Path(opts.cache_dir).expanduser() if opts.cache_dir else cache_dir()
    checks.writable_dir("cache_dir", cache)
    checks.writable_file("out", opts.out or cache / "vectors.bin")
    return opts


def imdb_sentences(source, workers=2, unsup=True, cache=None, progress=True):
    """The IMDB train reviews (+ unlabelled ones) as token lists, tokenised like the classifier's.

    Returns
    -------
    list of list of str
    """
    corpus = load_corpus(source, workers=workers, cache=cache, progress=progress)
    words = corpus.words
    sentences = [[words[i] for i in s] for s in corpus.train.seqs]
    if unsup:
        try:
            found = read_reviews(source, parts=(("train", "unsup", None),))
        except UserError as err:
            raise UserError(f"{err}; or train on the labelled reviews only with unsup=0") from None
        texts = [t for _, t in found[("train", "unsup")]]
        shared = {}  # one string object per distinct word: 13M tokens would otherwise each own one
        for tokens in tokenize_texts(texts, workers=workers, progress=progress, desc="tokenise unsup"):
            sentences.append([shared.setdefault(t, t) for t in tokens])
    return sentences


def save_word2vec(kv, out, binary=True):
    """Save ``KeyedVectors`` in word2vec format atomically (temp file in the folder, then rename)."""
    out = Path(out)
    # The temp name ends like ``out`` so gensim compresses a .gz target.
    with atomic_path(out, suffix=out.name) as tmp:
        kv.save_word2vec_format(str(tmp), binary=binary)
    return out


def train_imdb_word2vec(opts):
    """Train and save vectors as ``opts`` (an `EmbeddingOptions`) says; returns the file and its word count."""
    from gensim.models import Word2Vec  # gensim is slow to import: only when training

    cache = Path(opts.cache_dir).expanduser() if opts.cache_dir else cache_dir()
    source = find_source(opts.data_path, download=opts.download, cache=cache, progress=opts.progress)
    sentences = imdb_sentences(source, workers=opts.workers, unsup=bool(opts.unsup), cache=cache,
                               progress=opts.progress)
    if opts.progress:
        logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)
    model = Word2Vec(sentences=sentences, vector_size=opts.dim, window=opts.window,
                     min_count=opts.min_count, workers=opts.workers, epochs=opts.epochs, seed=opts.seed)
    out = Path(opts.out) if opts.out else (
        cache / f"imdb-word2vec-{opts.dim}d-cbow-e{opts.epochs}-w{opts.window}-m{opts.min_count}"
                f"-s{opts.seed}.bin")
    binary = not out.name.lower().endswith(_TEXT_SUFFIXES)
    return save_word2vec(model.wv, out, binary=binary), len(model.wv)


@cli_entry
def main(argv):
    """``python -m lstm_adv.embeddings train [key=value ...]``; returns the exit status."""
    if wants_help(argv):
        print(HELP)
        return 0
    if not argv or argv[0] != "train":
        raise UserError("usage: python -m lstm_adv.embeddings train [key=value ...] (see --help)")
    opts = _parse(argv[1:])
    out, n = train_imdb_word2vec(opts)
    print(f"{n} vectors of dimension {opts.dim} written to {out}", file=sys.stderr)
    print(f"use them with: python -m lstm_adv.train wemb_init=word2vec w2v_path={out} wdim={opts.dim}",
          file=sys.stderr)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

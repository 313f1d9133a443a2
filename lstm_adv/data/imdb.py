"""IMDB (Maas et al. 2011) prepared as the Theano tutorial's ``imdb_preprocess.py`` did it.

Where the raw release is found (``data_path``, ``$LSTM_ADV_DATA``, the cache dir, else a
download) and how a review is tokenised: `lstm_adv.data.imdb_source`.

Preprocessing (once per source): every labelled review is Moses-tokenised (sacremoses,
English), lowercased and split on whitespace; the dictionary is built from the train split
only (`lstm_adv.data.base.build_dictionary`). The result is cached as an ``.npz`` of token ids
plus a JSON vocabulary, named by the source's checksum and `PREPROCESS_VERSION`, so a changed
source or tokeniser rebuilds it and a cached load takes a second or two.

``python -m lstm_adv.data fetch|build|export`` (see `data_main`) does these steps explicitly.
"""

import importlib.metadata
import json
import pickle
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..common import checks
from ..common.errors import UserError
from ..common.lifecycle import cli_entry
from ..common.utils import atomic_path, atomic_savez, atomic_write_bytes
from ..common.options import help_text, option, parse, wants_help
from .base import Split, build_dictionary, encode, finalize, finalize_unlabelled
from .cache_pair import consistent, pack, read_pair, unpack, write_pair
from .imdb_source import (ARCHIVE_NAME, LABELLED, OFFICIAL_SHA256, OFFICIAL_URL, cache_dir, default_workers,
                          fetch, find_source, moses_tokenizer, offline, read_reviews, sha256_file,
                          source_fingerprint, tokenize_texts)

# Bump when tokenisation or the cache layout changes: old caches then no longer match.
PREPROCESS_VERSION = 1

#: The class names of label ids 0 and 1 (``label_names`` in a run's ``config.json``).
LABEL_NAMES = ("negative", "positive")

# ---------------------------------------------------------------------------------------------
# the cache

@dataclass
class Corpus:
    """The whole labelled release, ids over the full train dictionary (no n_words cut yet)."""

    train: Split
    test: Split
    words: list
    counts: list
    info: dict = field(default_factory=dict)


def cache_paths(fingerprint, cache=None):
    """The ``(npz, vocabulary json)`` pair for a source fingerprint and this preprocessing."""
    cache = Path(cache) if cache is not None else cache_dir()
    key = f"imdb-{fingerprint[:16]}-p{PREPROCESS_VERSION}-sacremoses{_sacremoses_version()}"
    return cache / f"{key}.npz", cache / f"{key}.vocab.json"


def build_corpus(source, workers=None, progress=True):
    """Read and tokenise the release and build the train dictionary (no cache involved).

    Returns
    -------
    Corpus
    """
    t0 = time.perf_counter()
    found = read_reviews(source)
    keys, texts, labels = [], [], []
    for split, cls, label in LABELLED:
        for name, text in found[(split, cls)]:
            keys.append((split, cls, name))
            texts.append(text)
            labels.append(label)
    t_read = time.perf_counter() - t0
    tokens = tokenize_texts(texts, workers=workers, progress=progress, desc="tokenise IMDB")
    t_tok = time.perf_counter() - t0 - t_read
    for key, toks in zip(keys, tokens):
        if not toks:
            raise UserError(f"review {'/'.join(key)} in {source} has no tokens; the copy is damaged")
    is_train = [k[0] == "train" for k in keys]
    train_tokens = [t for t, tr in zip(tokens, is_train) if tr]
    test_tokens = [t for t, tr in zip(tokens, is_train) if not tr]
    words, counts = build_dictionary(train_tokens)
    word_to_id = {w: i for i, w in enumerate(words)}
    labels = np.asarray(labels, dtype=np.int64)
    train = Split(encode(train_tokens, word_to_id), labels[np.asarray(is_train, dtype=bool)])
    test = Split(encode(test_tokens, word_to_id), labels[~np.asarray(is_train, dtype=bool)])
    info = {"read_seconds": round(t_read, 2), "tokenise_seconds": round(t_tok, 2),
            "build_seconds": round(time.perf_counter() - t0, 2)}
    return Corpus(train, test, words, counts, info)


def write_cache(corpus, npz_path, json_path, meta):
    """Write a corpus to its cache pair (`lstm_adv.data.cache_pair`: the JSON, last, marks it complete)."""
    arrays = {}
    for name, split in (("train", corpus.train), ("test", corpus.test)):
        arrays[f"{name}_tokens"], arrays[f"{name}_offsets"] = pack(split.seqs)
        arrays[f"{name}_labels"] = np.asarray(split.labels, dtype=np.int8)
    vocab = dict(meta, format="lstm_adv imdb cache", preprocess_version=PREPROCESS_VERSION,
                 n_train=len(corpus.train), n_test=len(corpus.test),
                 n_tokens={"train": int(arrays["train_offsets"][-1]), "test": int(arrays["test_offsets"][-1])},
                 words=corpus.words, counts=corpus.counts)
    write_pair(npz_path, json_path, arrays, vocab)


def _complete(arrays, vocab):
    return all(consistent(arrays[f"{name}_tokens"], arrays[f"{name}_offsets"], vocab[f"n_{name}"],
                          vocab["n_tokens"][name], len(vocab["words"]))
               and len(arrays[f"{name}_labels"]) == vocab[f"n_{name}"] for name in ("train", "test"))


def read_cache(npz_path, json_path):
    """The cached corpus, or None if the pair is missing, incomplete or inconsistent."""
    pair = read_pair(npz_path, json_path, _complete)
    if pair is None:
        return None
    arrays, vocab = pair
    train, test = (Split(unpack(arrays[f"{name}_tokens"], arrays[f"{name}_offsets"]),
                         arrays[f"{name}_labels"].astype(np.int64)) for name in ("train", "test"))
    info = {k: v for k, v in vocab.items() if k not in ("words", "counts")}
    return Corpus(train, test, vocab["words"], vocab["counts"], info)


def load_corpus(source, workers=None, cache=None, progress=True, force=False):
    """The preprocessed release: from the cache if it is there, else built and cached.

    Parameters
    ----------
    source : path
        Tarball or ``aclImdb`` folder (see `find_source`).
    force : bool
        Rebuild even if a cache exists.

    Returns
    -------
    Corpus
        ``info`` has source, sha256 (tarball) or the folder fingerprint, cache, built, seconds.
    """
    t0 = time.perf_counter()
    source = Path(source).resolve()
    fingerprint = source_fingerprint(source)
    npz_path, json_path = cache_paths(fingerprint, cache)
    corpus = None if force else read_cache(npz_path, json_path)
    built = corpus is None
    if built:
        # Checked before the minute of building, not after it.
        checks.writable_files("LSTM_ADV_CACHE", npz_path.parent, (npz_path.name, json_path.name))
        if progress:
            print(f"building the IMDB cache from {source} (once; about a minute on 2 cores)", file=sys.stderr)
        corpus = build_corpus(source, workers=workers, progress=progress)
        meta = dict(corpus.info, source=str(source), sha256=fingerprint,
                    fingerprint="sha256 of the file" if source.is_file()
                    else "sha256 of the sorted (path, size, mtime) list of review files",
                    tokenizer=_tokenizer_description(), workers=workers or default_workers())
        try:
            write_cache(corpus, npz_path, json_path, meta)
        except OSError as err:
            raise UserError(f"cannot write the IMDB cache in {npz_path.parent} ({err}); free some space or "
                            "point LSTM_ADV_CACHE (or cache_dir=) at another folder") from None
        corpus.info.update(meta)
        if progress:
            print(f"IMDB cache written to {npz_path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    corpus.info.update(source=str(source), sha256=fingerprint, cache=str(npz_path), built=built,
                       load_seconds=round(time.perf_counter() - t0, 2))
    return corpus


def _sacremoses_version():
    # Not ``import sacremoses``: that compiles its large regexes, a second a cached load need not pay.
    return importlib.metadata.version("sacremoses")


def _tokenizer_description():
    return f"sacremoses {_sacremoses_version()} MosesTokenizer(lang=en), escape=False; lowercase; whitespace split"


def load_unlabelled(source, corpus, workers=None, cache=None, progress=True):
    """IMDB's ``train/unsup`` reviews (50,000), tokenised as the labelled ones, ids over ``corpus.words``.

    Words outside the labelled train dictionary become UNK (1). Cached next to the labelled
    corpus (same name, ``-unsup.npz``), keyed by the same fingerprint and preprocessing, and
    checked against the dictionary's size; built once (a few minutes on 2 cores).

    Returns
    -------
    list of list of int, in review-id order
    """
    npz_path, _ = cache_paths(corpus.info["sha256"], cache)
    path = npz_path.with_name(npz_path.name[:-len(".npz")] + "-unsup.npz")
    try:
        with np.load(path, allow_pickle=False) as z:
            flat, offsets, n_dict = z["tokens"], z["offsets"], int(z["n_words_dict"])
        if n_dict == len(corpus.words) and offsets[-1] == len(flat):
            return unpack(flat, offsets)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        pass
    if progress:
        print(f"tokenising IMDB's unlabelled reviews (train/unsup) from {source} (once)", file=sys.stderr)
    found = read_reviews(source, parts=(("train", "unsup", -1),))
    texts = [text for _, text in found[("train", "unsup")]]
    tokens = tokenize_texts(texts, workers=workers, progress=progress, desc="tokenise IMDB unsup")
    seqs = encode(tokens, {w: i for i, w in enumerate(corpus.words)})
    flat, offsets = pack(seqs)
    try:
        atomic_savez(path, {"tokens": flat, "offsets": offsets, "n_words_dict": np.array(len(corpus.words))})
    except OSError as err:
        raise UserError(f"cannot write the IMDB unlabelled cache {path} ({err}); free some space") from None
    return seqs


def load_imdb(cfg, workers=None, cache=None):
    """IMDB as the tutorial's ``imdb.load_data`` returned it (see `lstm_adv.data.base.finalize`).

    Parameters
    ----------
    cfg : Config
        Uses data_path, download, progress, and what `finalize` uses.
    workers : int, optional
        Tokenising processes for a first build (default: all CPUs).
    cache : path, optional
        Cache folder (default `cache_dir`).

    Returns
    -------
    Dataset
        ``info`` has source, sha256, cache, word_counts (train frequency per id), and the
        split sizes from `finalize`.
    """
    progress = bool(cfg.progress)
    source = find_source(cfg.data_path, download=bool(cfg.download), cache=cache, progress=progress)
    corpus = load_corpus(source, workers=workers, cache=cache, progress=progress)
    info = dict(corpus.info, label_names=list(LABEL_NAMES), n_classes=2, word_counts=corpus.counts)
    data = finalize(corpus.train, corpus.test, corpus.words, cfg, info)
    if cfg.unlabelled:
        seqs = load_unlabelled(source, corpus, workers=workers, cache=cache, progress=progress)
        data.unlabelled = finalize_unlabelled(seqs, cfg, len(corpus.words))
        data.info["n_unlabelled"] = len(data.unlabelled)
    return data


# ---------------------------------------------------------------------------------------------
# export for the Theano tutorial

#: What ``export`` writes into out=DIR.
EXPORT_FILES = ("imdb.pkl", "imdb.dict.pkl")


def export_tutorial(corpus, out_dir, escape=False):
    """Write the tutorial's ``imdb.pkl`` and ``imdb.dict.pkl`` into ``out_dir``.

    ``imdb.pkl`` holds two pickles one after the other, ``(train_x, train_y)`` then
    ``(test_x, test_y)`` (lists of id lists and of 0/1), as ``imdb_preprocess.py`` wrote and
    ``imdb.load_data`` reads them; ``imdb.dict.pkl`` is ``{word: id}`` for ids >= 2. Protocol 2
    so Python 2 can read them. ``escape=True`` spells the words as tokenizer.perl did.

    Returns
    -------
    list of Path
    """
    out_dir = Path(out_dir)

    def as_lists(split):
        return [list(s) for s in split.seqs], [int(y) for y in split.labels]

    data = pickle.dumps(as_lists(corpus.train), protocol=2) + pickle.dumps(as_lists(corpus.test), protocol=2)
    words = corpus.words[2:]
    if escape:
        escaper = moses_tokenizer()
        words = [escaper.escape_xml(w) for w in words]
    dictionary = {w: i for i, w in enumerate(words, start=2)}
    paths = [out_dir / name for name in EXPORT_FILES]
    atomic_write_bytes(paths[0], data)
    atomic_write_bytes(paths[1], pickle.dumps(dictionary, protocol=2))
    return paths


def export_corpus(source, out, fmt):
    """Write the labelled release as one CSV or JSONL file that ``data=FILE`` reads as ``data=imdb``.

    Rows in the order `build_corpus` reads them (train then test; positives, then negatives; by
    review id), fields ``text`` (the raw review), ``label`` (``negative``/``positive``: ids 0/1 in
    sorted order, as IMDB's) and ``split``; so a run on the file has the same splits, dictionary
    and parameters as on ``data=imdb`` with the same keys. Written to a temporary file, then
    renamed: a failure leaves no half file.

    Returns
    -------
    int
        The number of reviews written.
    """
    import csv

    found = read_reviews(source)
    n = 0
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh) if fmt == "csv" else None
        if writer:
            writer.writerow(["text", "label", "split"])
        for split, cls, label in LABELLED:
            for _, text in found[(split, cls)]:
                if writer:
                    writer.writerow([text, LABEL_NAMES[label], split])
                else:
                    fh.write(json.dumps({"text": text, "label": LABEL_NAMES[label], "split": split},
                                        ensure_ascii=False) + "\n")
                n += 1
    return n


# ---------------------------------------------------------------------------------------------
# command line

@dataclass(frozen=True)
class DataOptions:
    """The keys of ``python -m lstm_adv.data``."""

    data_path: str = option("", "aclImdb tarball or folder (else $LSTM_ADV_DATA, else the cache dir)")
    cache_dir: str = option("", "cache folder (else $LSTM_ADV_CACHE, else the user cache dir, see above)")
    workers: int = option(0, "tokenising processes (0 = all CPUs)", minimum=0)
    download: bool = option(True, "build/export: fetch the archive if it is nowhere ($LSTM_ADV_OFFLINE=1 also "
                            "forbids it)")
    force: bool = option(False, "build: rebuild even if the cache is up to date")
    out: str = option("", "export: the folder for imdb.pkl and imdb.dict.pkl (format=pkl), or the file to write "
                      "(format=csv, jsonl) (required)")
    format: str = option("pkl", "export: pkl (the Theano tutorial's pickles), csv or jsonl (text,label,split rows "
                         "that data=FILE reads as data=imdb)", ("pkl", "csv", "jsonl"))
    escape: bool = option(False, "export: spell words as tokenizer.perl did (&quot; &apos;s ...)")
    url: str = option(OFFICIAL_URL, "fetch: another address of the same archive (the SHA-256 is still checked)")
    progress: bool = option(True, "progress bars")


def data_help():
    """``python -m lstm_adv.data --help``."""
    return help_text(DataOptions, "python -m lstm_adv.data COMMAND [key=value ...]", f"""\
Manage the IMDB data (Maas et al. 2011) for lstm_adv.

commands:
  fetch    download the official {ARCHIVE_NAME} (SHA-256 checked, resumable) into the cache dir
  build    preprocess the release once and write the cache (.npz + .vocab.json)
  export   also write the Theano tutorial's imdb.pkl and imdb.dict.pkl into out=DIR, or with
           format=csv|jsonl the reviews as one file out=FILE (text,label,split) for data=FILE

The cache dir here: {cache_dir()}""", """\
examples:
  python -m lstm_adv.data fetch
  python -m lstm_adv.data build data_path=../shared/data/aclImdb.tar.gz
  python -m lstm_adv.data export out=tutorial_data
  python -m lstm_adv.data export format=csv out=imdb.csv""")


def _parse_cli(args):
    opts = parse(DataOptions, args)
    if not opts.url.startswith(("http://", "https://", "ftp://", "file://")):
        raise UserError(f"url={opts.url} is not a URL (http://, https://, ftp:// or file://)")
    return opts


def _check_cli(command, opts, cache):
    """Everything a command line can be checked for before it downloads, builds or writes."""
    if opts.data_path:
        checks.readable_path("data_path", opts.data_path)
    if command == "fetch":
        checks.writable_files("cache_dir", cache, (ARCHIVE_NAME, ARCHIVE_NAME + ".part"))
    elif opts.cache_dir or command == "build":
        checks.writable_dir("cache_dir", cache)
    if command == "export" and opts.format != "pkl":
        if not opts.out:
            raise UserError(f"export format={opts.format} needs out=FILE (e.g. out=imdb.{opts.format})")
        checks.writable_file("out", opts.out)
    elif command == "export":
        if not opts.out:
            raise UserError("export needs out=DIR (where imdb.pkl and imdb.dict.pkl go)")
        checks.writable_files("out", opts.out, EXPORT_FILES)


@cli_entry
def data_main(argv):
    """``python -m lstm_adv.data fetch|build|export [key=value ...]``; returns the exit status."""
    if not argv:
        raise UserError("no command; use fetch, build or export (see python -m lstm_adv.data --help)")
    if wants_help(argv):
        print(data_help())
        return 0
    command, opts = argv[0], _parse_cli(argv[1:])
    if command not in ("fetch", "build", "export"):
        raise UserError(f"unknown command {command!r}; use fetch, build or export (see --help)")
    cache = Path(opts.cache_dir).expanduser() if opts.cache_dir else cache_dir()
    _check_cli(command, opts, cache)
    progress = opts.progress
    if command == "fetch":
        if offline():
            raise UserError("$LSTM_ADV_OFFLINE is set; unset it to download")
        dest = cache / ARCHIVE_NAME
        if dest.exists():
            got = sha256_file(dest)
            if got != OFFICIAL_SHA256:
                raise UserError(f"{dest} exists but its SHA-256 is {got}, not the official {OFFICIAL_SHA256}; "
                                "delete it and run fetch again")
            print(f"{dest} is already there (SHA-256 checked)")
            return 0
        print(f"downloading {opts.url} to {dest}", file=sys.stderr)
        fetch(dest, url=opts.url, progress=progress)
        print(dest)
        return 0
    if command == "export" and opts.format != "pkl":
        source = find_source(opts.data_path, download=opts.download, cache=cache, progress=progress)
        Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
        n = export_corpus(source, opts.out, opts.format)
        print(f"{n} reviews written to {opts.out}; train on them with python -m lstm_adv.train data={opts.out}",
              file=sys.stderr)
        print(opts.out)
        return 0
    if command in ("build", "export"):
        source = find_source(opts.data_path, download=opts.download, cache=cache, progress=progress)
        corpus = load_corpus(source, workers=opts.workers or None, cache=cache, progress=progress,
                             force=opts.force)
        state = "built" if corpus.info["built"] else "up to date"
        print(f"cache {state}: {corpus.info['cache']} ({len(corpus.train)} train, {len(corpus.test)} test "
              f"reviews, {len(corpus.words)} words; {corpus.info['load_seconds']:.1f} s)")
        if command == "export":
            for path in export_tutorial(corpus, opts.out, escape=opts.escape):
                print(path)
        return 0
    raise UserError(f"unknown command {command!r}; use fetch, build or export (see --help)")

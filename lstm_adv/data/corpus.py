"""A user's corpus (``data=PATH``): a CSV, TSV or JSONL file, or a folder of class folders.

Formats (read by `lstm_adv.data.corpus_rows`): a CSV or TSV file with a header row, a JSONL
file, or a folder of class folders (the aclImdb layout with any class names,
`lstm_adv.data.corpus_folder`). A folder with aclImdb's own layout and file names, or an
aclImdb tarball, is aclImdb itself and is read as ``data=imdb data_path=PATH``
(`lstm_adv.data.imdb`): the same splits, cache and model.

Splits: a ``split`` column or field says ``train``, ``test``, ``valid`` or ``unlabelled`` (texts
for ``unlabelled=N``, label ignored). Without test texts, a fraction ``test_portion`` of the
training rows is held out, the same rows for every seed (deviation from a seed-dependent draw:
runs of different seeds are then compared on one test set, as on IMDB); without valid texts the
validation split is drawn from the train split as for IMDB (`lstm_adv.data.base.finalize`).

Labels are strings or integers (all of one kind); they map to class ids in sorted order
(numerically for integers), and the names go with the run (``label_names`` in ``config.json``).
Texts are tokenised as IMDB's (Moses, lowercase, `lstm_adv.data.imdb_source.tokenize`); empty
texts (and a folder's files outside its layout) are skipped, counted by reason and said in the
log's data line; too many skipped, or a split or class that makes no sense, is refused before
anything is written (`lstm_adv.data.corpus_checks`). The file is read as a stream, a chunk of
rows at a time, and cached (token ids, labels, splits) under the SHA-256 of its content, so a second load takes
seconds. Every malformed input ends in one `UserError` before anything is written
(`check_corpus`, called by the entry points' start-up checks).
"""

import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from ..common import checks
from ..common.errors import UserError
from ..common.utils import make_rng
from .base import UNK, Split, check_valid_draw, dictionary_order, finalize, finalize_unlabelled
from .cache_pair import consistent, pack, read_pair, write_pair
from .corpus_checks import RowTally, check_seen_in_train
from .corpus_folder import list_folder
from .corpus_rows import SPLITS, corpus_format, iter_rows
from .imdb_source import cache_dir, default_workers, sha256_file, tokenize_texts

# Bump when reading, tokenisation or the cache layout changes: old caches then no longer match.
PREPROCESS_VERSION = 2   # 2: column names matched without case, folders' skipped files counted

#: Rows tokenised at a time: texts of one chunk at most are in memory besides the token ids.
CHUNK_ROWS = 20_000
#: The fixed seed of the ``test_portion`` hold-out (the same test rows for every run seed).
TEST_SPLIT_SEED = 20151201


def check_corpus(cfg):
    """Refuse a bad ``data=PATH`` before anything is written: one pass over the rows, no tokenising.

    Skipped when the corpus is cached (it was checked when the cache was built). Returns the
    format; raises `UserError` as `corpus_format`, `iter_rows` and the label checks do.
    """
    fmt = corpus_format(cfg.data)
    if fmt == "imdb":
        from .imdb_source import find_source  # the aclImdb checks
        find_source(str(Path(cfg.data).expanduser()), download=False, progress=False)
        return fmt
    path = Path(cfg.data).expanduser()
    npz_path, json_path = cache_paths(path, fmt, cfg)
    if npz_path.exists() and json_path.exists():
        return fmt
    tally, rows = read_rows(path, fmt, cfg)
    for row in rows:
        tally.add(*row)
    tally.finish()
    splits = tally.splits
    if cfg.unlabelled and not splits.get("unlabelled"):
        raise UserError(f"unlabelled={cfg.unlabelled}: {path} has no unlabelled texts (rows with split=unlabelled, or "
                        "a train/unsup/ folder)")
    # The draws from the train split (split_rows, finalize), checked before the cache is written.
    n_train = splits["train"] - (0 if splits.get("test") else _n_held_out(splits["train"], cfg))
    if not splits.get("valid"):
        check_valid_draw(n_train, cfg)
    return fmt


def read_rows(path, fmt, cfg):
    """``(RowTally, rows)``: an empty tally of the corpus (with a folder's skipped files and class
    folders) and the `iter_rows` stream to feed it."""
    listing = list_folder(path) if fmt == "folder" else None
    tally = RowTally(path, cfg.label_col, skipped=listing.skipped.copy() if listing else Counter(),
                     classes=dict(listing.classes) if listing else {})
    return tally, iter_rows(path, fmt, cfg.text_col, cfg.label_col, listing=listing,
                            columns_seen=tally.columns_ignored)


def content_sha256(path):
    """The SHA-256 naming a corpus's content: of the file, or of a folder's texts (`list_folder`:
    the files read, links followed) as sorted (relative path, bytes), and of what it skipped."""
    path = Path(path)
    try:
        if path.is_file():
            return sha256_file(path)
        listing = list_folder(path)
        h = hashlib.sha256(json.dumps(sorted(listing.skipped.items())).encode())
        for _, _, full in sorted(listing.files, key=lambda f: str(f[2])):
            h.update(str(full.relative_to(path)).encode("utf-8", "surrogateescape") + b"\0")
            h.update(hashlib.sha256(full.read_bytes()).digest())
    except OSError as err:
        raise UserError(f"cannot read {err.filename or path} ({err.strerror}); fix its permissions or remove "
                        "it") from None
    return h.hexdigest()


_SHA_MEMO = {}


def _sha_once(path):
    # The start-up check and the load in one process read the file's hash once.
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_MEMO:
        _SHA_MEMO[key] = content_sha256(path)
    return _SHA_MEMO[key]


def cache_paths(path, fmt, cfg, cache=None):
    """The ``(npz, json)`` cache pair of a corpus: its content's SHA-256, the columns read, the preprocessing."""
    from .imdb import _sacremoses_version  # noqa: the IMDB cache's naming, shared
    cache = Path(cache) if cache is not None else cache_dir()
    columns = hashlib.sha256(f"{fmt}\0{cfg.text_col}\0{cfg.label_col}".encode()).hexdigest()[:8]
    key = f"corpus-{_sha_once(Path(path))[:16]}-{columns}-p{PREPROCESS_VERSION}-sacremoses{_sacremoses_version()}"
    return cache / f"{key}.npz", cache / f"{key}.vocab.json"


def build_cache(path, fmt, cfg, npz_path, json_path, workers=None, progress=True):
    """Read, check and tokenise a corpus a chunk of rows at a time, and write its cache pair.

    The tokens go into one growing id array over a vocabulary in order of first appearance; the
    train dictionary is ranked at load time (`load_corpus`), since which rows are train depends
    on ``test_portion``.
    """
    t0 = time.perf_counter()
    tally, rows = read_rows(path, fmt, cfg)
    split_names = {code: name for name, code in SPLITS.items()}
    vocab, ids, lengths, labels, splits = {}, [], [], [], []
    chunk = []

    def flush():
        tokens = tokenize_texts([c[0] for c in chunk], workers=workers, progress=False)
        for toks, (_, label, code) in zip(tokens, chunk):
            if not toks:   # only punctuation Moses drops, or odd whitespace: skipped as empty
                name = split_names[code]
                tally.drop(name, label if name != "unlabelled" else "", kept=True)
                continue
            ids.append(np.fromiter((vocab.setdefault(t, len(vocab)) for t in toks), dtype=np.int32, count=len(toks)))
            lengths.append(len(toks))
            labels.append(label)
            splits.append(code)
        chunk.clear()

    for where, text, label, split in rows:
        code = tally.add(where, text, label, split)
        if code is not None:
            chunk.append((text, label, code))
        if len(chunk) >= CHUNK_ROWS:
            flush()
            if progress:
                print(f"  {tally.n_rows} texts read", file=sys.stderr)
    flush()
    names, kind, index = tally.finish(n_kept=len(lengths))
    flat, offsets = pack(ids)
    codes = np.asarray(splits, dtype=np.int8)
    label_ids = np.asarray([index[lb] if c != SPLITS["unlabelled"] else -1 for lb, c in zip(labels, codes)],
                           dtype=np.int64)
    from .imdb import _tokenizer_description  # noqa: the same tokeniser as IMDB's
    write_pair(npz_path, json_path, {"tokens": flat, "offsets": offsets, "labels": label_ids, "splits": codes}, {
        "format": "lstm_adv corpus cache", "preprocess_version": PREPROCESS_VERSION, "source": str(path),
        "source_format": fmt, "sha256": _sha_once(Path(path)), "text_col": cfg.text_col, "label_col": cfg.label_col,
        "tokenizer": _tokenizer_description(), "n_rows": tally.n_rows, "n_empty_skipped": tally.n_empty,
        "n_texts": len(lengths), "n_tokens": int(offsets[-1]), "label_names": names, "label_kind": kind,
        **tally.info(), "read_note": tally.note(),
        "build_seconds": round(time.perf_counter() - t0, 2), "words": list(vocab)})


def _complete(arrays, meta):
    n = meta["n_texts"]
    return (consistent(arrays["tokens"], arrays["offsets"], n, meta["n_tokens"], len(meta["words"]))
            and len(arrays["labels"]) == len(arrays["splits"]) == n)


def read_cache(npz_path, json_path):
    """``(arrays, meta)`` of a cache pair, or None if missing, incomplete or inconsistent."""
    return read_pair(npz_path, json_path, _complete)


# ---------------------------------------------------------------------------------------------
# loading

def _rank_dictionary(words, tokens, rows, offsets):
    """The train dictionary (`lstm_adv.data.base.build_dictionary`'s ranking) from cached ids.

    Returns ``(words, counts, remap)``: ``remap[global id]`` is the id in the ranked dictionary
    (UNK for words no training text holds).
    """
    sel = np.concatenate([tokens[offsets[i]:offsets[i + 1]] for i in rows] + [np.zeros(0, np.int32)])
    counts = np.bincount(sel, minlength=len(words))
    present = np.flatnonzero(counts).tolist()
    order = [present[j] for j in dictionary_order([words[i] for i in present], counts[present])]
    remap = np.full(len(words), UNK, dtype=np.int64)
    remap[np.asarray(order, dtype=np.int64)] = np.arange(2, 2 + len(order))
    ranked = ["<pad>", "<unk>"] + [words[i] for i in order]
    return ranked, [0, 0] + [int(counts[i]) for i in order], remap


def _n_held_out(n_train, cfg):
    """How many of ``n_train`` texts ``test_portion`` holds out; a `UserError` if none or all."""
    n_test = int(round(n_train * cfg.test_portion))
    if n_test < 1 or n_test >= n_train:
        raise UserError(f"test_portion={cfg.test_portion} of {n_train} texts leaves no test or no training "
                        "text; change test_portion= or add split=test rows")
    return n_test


def split_rows(codes, cfg):
    """The cached rows of each split: ``({split name: sorted row indices}, how the test split came)``.

    Without ``split=test`` rows, ``test_portion`` of the training rows are held out by a fixed seed
    (the same for every run seed), before the dictionary is built (train words only).
    """
    rows = {name: np.flatnonzero(codes == code) for name, code in SPLITS.items()}
    if len(rows["test"]):
        return rows, "given"
    train_rows = rows["train"]
    n_test = _n_held_out(len(train_rows), cfg)
    perm = make_rng(TEST_SPLIT_SEED, "test_portion").permutation(len(train_rows))
    rows["test"] = np.sort(train_rows[perm[:n_test]])
    rows["train"] = np.sort(train_rows[perm[n_test:]])
    return rows, f"test_portion={cfg.test_portion} of the texts held out (fixed seed)"


def corpus_sentences(cfg, cache=None):
    """Every text of a cached corpus but the test split's, as token lists (for word2vec), in file order.

    The train, valid and unlabelled rows, whole (no maxlen, no n_words cut): what
    ``preset=authors`` trains its word2vec stand-in on (`lstm_adv.data.embeddings.ensure_corpus_vectors`).
    """
    path = Path(cfg.data).expanduser()
    cached = read_cache(*cache_paths(path, corpus_format(path), cfg, cache))
    if cached is None:
        raise UserError(f"data={cfg.data} is not cached yet; load it first (python -m lstm_adv.train data=...)")
    arrays, meta = cached
    rows, _ = split_rows(arrays["splits"], cfg)
    keep = np.sort(np.concatenate([rows["train"], rows["valid"], rows["unlabelled"]]))
    words, tokens, offsets = meta["words"], arrays["tokens"], arrays["offsets"]
    return [[words[t] for t in tokens[offsets[i]:offsets[i + 1]]] for i in keep]


def load_corpus(cfg, workers=None, cache=None):
    """A user's corpus as a `Dataset` (see the module docstring and `lstm_adv.data.base.finalize`).

    Parameters
    ----------
    cfg : Config
        Uses data, text_col, label_col, test_portion, unlabelled, progress, and what `finalize` uses.
    workers : int, optional
        Tokenising processes for a first build (default: all CPUs).
    cache : path, optional
        Cache folder (default `lstm_adv.data.imdb_source.cache_dir`).

    Returns
    -------
    Dataset
        ``info`` has source, source_format, sha256, cache, built, label_names, n_classes,
        n_empty_skipped, n_skipped (by reason), columns_ignored, read_note (the log's words on
        both), test_split (``"given"`` or how it was held out), word_counts, and the split sizes
        from `finalize`.
    """
    t0 = time.perf_counter()
    fmt = check_corpus(cfg)
    path = Path(cfg.data).expanduser()
    if fmt == "imdb":
        import dataclasses
        from .imdb import load_imdb  # aclImdb itself: exactly data=imdb data_path=PATH
        return load_imdb(dataclasses.replace(cfg, data="imdb", data_path=str(path)), workers=workers, cache=cache)
    npz_path, json_path = cache_paths(path, fmt, cfg, cache)
    cached = read_cache(npz_path, json_path)
    built = cached is None
    if built:
        checks.writable_files("LSTM_ADV_CACHE", npz_path.parent, (npz_path.name, json_path.name))  # before reading it all
        if cfg.progress:
            print(f"building the corpus cache from {path} (once)", file=sys.stderr)
        try:
            build_cache(path, fmt, cfg, npz_path, json_path, workers=workers or default_workers(),
                        progress=bool(cfg.progress))
        except OSError as err:
            raise UserError(f"cannot write the corpus cache in {npz_path.parent} ({err}); free some space or "
                            "point LSTM_ADV_CACHE at another folder") from None
        cached = read_cache(npz_path, json_path)
    try:
        data = _dataset(cfg, path, fmt, cached, npz_path, built)
    except UserError:
        if built:   # refused by a check that needs the tokens: the run leaves nothing written, no cache either
            npz_path.unlink(missing_ok=True)
            json_path.unlink(missing_ok=True)
        raise
    data.info["load_seconds"] = round(time.perf_counter() - t0, 2)
    return data


def _dataset(cfg, path, fmt, cached, npz_path, built):
    """The `Dataset` of a read cache pair (`load_corpus`): the splits, the train dictionary, `finalize`."""
    arrays, meta = cached
    tokens, offsets, labels = arrays["tokens"], arrays["offsets"], arrays["labels"]
    rows, test_split = split_rows(arrays["splits"], cfg)
    if test_split != "given":   # the hold-out may have drawn every text of a small class
        names = meta["label_names"]
        held = zip(*np.unique(labels[rows["test"]], return_counts=True))
        check_seen_in_train({names[i] for i in labels[rows["train"]]}, {("test", names[i]): n for i, n in held},
                            lambda split, label: path, how=f" (drawn by test_portion={cfg.test_portion})")
    words, counts, remap = _rank_dictionary(meta["words"], tokens, rows["train"], offsets)
    ids = remap[tokens]

    def split(name):
        r = rows[name]
        return Split([ids[offsets[i]:offsets[i + 1]].tolist() for i in r], labels[r].astype(np.int64))

    K = len(meta["label_names"])
    info = {"source": str(path), "source_format": fmt, "sha256": meta["sha256"], "cache": str(npz_path),
            "built": built, "label_names": meta["label_names"], "label_kind": meta["label_kind"], "n_classes": K,
            "n_rows": meta["n_rows"], "n_empty_skipped": meta["n_empty_skipped"], "n_skipped": meta["n_skipped"],
            "columns_ignored": meta["columns_ignored"], "test_split": test_split,
            # The log's data line says what was not read, and a test split drawn rather than given.
            "read_note": "; ".join(n for n in (meta["read_note"], test_split != "given" and f"test: {test_split}")
                                   if n),
            "word_counts": counts}
    valid = split("valid") if len(rows["valid"]) else None
    data = finalize(split("train"), split("test"), words, cfg, info, valid=valid)
    if len(np.unique(data.train.labels)) < 2:
        raise UserError(f"{path}: the training split holds one class only after the maxlen={cfg.maxlen} rule and the "
                        "validation draw; a classifier needs at least two: raise maxlen, use maxlen_mode=truncate, "
                        "or add texts")
    if cfg.unlabelled:
        data.unlabelled = finalize_unlabelled(split("unlabelled").seqs, cfg, len(words))
        data.info["n_unlabelled"] = len(data.unlabelled)
    return data

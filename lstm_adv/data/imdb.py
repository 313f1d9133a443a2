"""IMDB (Maas et al. 2011) prepared as the Theano tutorial's ``imdb_preprocess.py`` did it.

Finding the raw release (``aclImdb_v1.tar.gz``, any tarball with its ``aclImdb/`` layout, or
the extracted folder), in this order:

1. the ``data_path`` key;
2. the environment variable ``LSTM_ADV_DATA``;
3. the cache dir (``$LSTM_ADV_CACHE``, else ``platformdirs.user_cache_dir("lstm_adv")``):
   ``aclImdb_v1.tar.gz``, ``aclImdb.tar.gz`` or ``aclImdb/`` there;
4. else, unless ``download=0`` or ``$LSTM_ADV_OFFLINE`` is set, the official archive is
   downloaded into the cache dir (resumable, SHA-256 checked).

Preprocessing (once per source): every labelled review is Moses-tokenised (sacremoses,
English), lowercased and split on whitespace; the dictionary is built from the train split
only (`lstm_adv.data.build_dictionary`). The result is cached as an ``.npz`` of token ids plus
a JSON vocabulary, named by the source's checksum and `PREPROCESS_VERSION`, so a changed
source or tokeniser rebuilds it and a cached load takes a second or two.

``python -m lstm_adv.data fetch|build|export`` (see `data_main`) does these steps explicitly.
"""

import bz2
import gzip
import hashlib
import json
import lzma
import multiprocessing
import os
import pickle
import re
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import checks
from .data import Split, build_dictionary, encode, finalize, finalize_unlabelled
from .config import split_key_values
from .errors import UserError, cli_entry
from .utils import atomic_savez, atomic_write_bytes, atomic_write_json

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
OFFICIAL_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
ARCHIVE_NAME = "aclImdb_v1.tar.gz"

# Bump when tokenisation or the cache layout changes: old caches then no longer match.
PREPROCESS_VERSION = 1

# (split, class folder, label), in the tutorial's order: positives first.
LABELLED = (("train", "pos", 1), ("train", "neg", 0), ("test", "pos", 1), ("test", "neg", 0))

# Below this many reviews, starting worker processes costs more than it saves.
POOL_MIN_REVIEWS = 200

_MEMBER_RE = re.compile(r"(?:^|/)(train|test)/(pos|neg|unsup)/([^/]+\.txt)$")


# ---------------------------------------------------------------------------------------------
# where things are

def cache_dir():
    """The cache folder: ``$LSTM_ADV_CACHE`` if set, else the platform's user cache dir."""
    env = os.environ.get("LSTM_ADV_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs
    return Path(platformdirs.user_cache_dir("lstm_adv"))


def offline():
    """Whether ``$LSTM_ADV_OFFLINE`` forbids downloads (any value but empty or 0)."""
    return os.environ.get("LSTM_ADV_OFFLINE", "") not in ("", "0")


def find_source(data_path="", download=True, cache=None, progress=True):
    """Locate the raw release, downloading it if it is nowhere and that is allowed.

    Parameters
    ----------
    data_path : str
        Explicit tarball or folder ("" = not given).
    download : bool
        Fetch the official archive into the cache dir when nothing is found.
    cache : path, optional
        Cache folder (default `cache_dir`).

    Returns
    -------
    Path
        A tarball, or the ``aclImdb`` folder itself (the one holding ``train/`` and ``test/``).
    """
    cache = Path(cache) if cache is not None else cache_dir()
    if data_path:
        return _check_source(Path(data_path).expanduser(), f"data_path={data_path}")
    env = os.environ.get("LSTM_ADV_DATA", "")
    if env:
        return _check_source(Path(env).expanduser(), f"$LSTM_ADV_DATA={env}")
    for name in (ARCHIVE_NAME, "aclImdb.tar.gz", "aclImdb"):
        if (cache / name).exists():
            return _check_source(cache / name, str(cache / name))
    if download and not offline():
        print(f"IMDB data not found; downloading {OFFICIAL_URL} (84 MB) into {cache} "
              "(download=0 or LSTM_ADV_OFFLINE=1 turn this off)", file=sys.stderr)
        return fetch(cache / ARCHIVE_NAME, progress=progress)
    why = "download=0" if not download else "$LSTM_ADV_OFFLINE is set"
    raise UserError(
        f"IMDB data not found: data_path is not set, $LSTM_ADV_DATA is not set, and the cache dir {cache} "
        f"has no {ARCHIVE_NAME}, aclImdb.tar.gz or aclImdb/ (no download: {why}); fix: pass "
        f"data_path=/path/to/{ARCHIVE_NAME} (or the aclImdb folder), set LSTM_ADV_DATA, or run "
        "`python -m lstm_adv.data fetch` where there is internet")


def _check_source(path, what):
    """``path`` if it can be an aclImdb release, else a `UserError` naming ``what``."""
    if not path.exists():
        raise UserError(f"{what}: no such file or folder; give the {ARCHIVE_NAME} tarball or the "
                        "extracted aclImdb folder")
    if path.is_dir() and not (path / "train").is_dir():
        # Also accept the folder that holds the release (aclImdb/ or the tarball).
        for name in ("aclImdb", ARCHIVE_NAME, "aclImdb.tar.gz"):
            if (path / name).exists():
                path = path / name
                break
    if path.is_dir():
        for split, cls, _ in LABELLED:
            if not (path / split / cls).is_dir():
                raise UserError(f"{what}: folder {path} has no {split}/{cls}; point it at the extracted "
                                f"aclImdb folder (with train/pos, train/neg, test/pos, test/neg) or the tarball")
        return path
    try:
        ok = tarfile.is_tarfile(path)
    except OSError as err:
        raise UserError(f"{what}: cannot read {path} ({err})") from None
    if not ok:
        raise UserError(f"{what}: {path} is not a tar archive (corrupt or the wrong file); fetch "
                        f"{ARCHIVE_NAME} again (python -m lstm_adv.data fetch) or give the aclImdb folder")
    return path


def source_fingerprint(path):
    """A checksum naming the source's content, for the cache key.

    A tarball: the SHA-256 of its bytes. A folder: the SHA-256 of the sorted
    (relative path, size, mtime) list of its labelled review files -- cheap, and any edit,
    addition or removal changes it.

    Returns
    -------
    str
        64 hex digits.
    """
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    listing = []
    for split, cls, _ in LABELLED:
        for entry in os.scandir(path / split / cls):
            if entry.name.endswith(".txt"):
                st = entry.stat()
                listing.append(f"{split}/{cls}/{entry.name}\t{st.st_size}\t{st.st_mtime_ns}")
    listing.sort()
    return hashlib.sha256("\n".join(listing).encode()).hexdigest()


def sha256_file(path, chunk_size=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# download

def fetch(dest=None, url=OFFICIAL_URL, sha256=OFFICIAL_SHA256, opener=None, progress=True,
          chunk_size=1 << 20, timeout=60):
    """Download ``url`` to ``dest``, resumably, and refuse it unless its SHA-256 matches.

    Bytes go to ``dest + ".part"``; a rerun after an interruption asks the server for the rest
    (HTTP ``Range``) and appends. Only a complete file with the right checksum is renamed to
    ``dest``; a mismatching one is deleted, so nothing half-made is ever trusted.

    Parameters
    ----------
    dest : path, optional
        Target file (default: ``aclImdb_v1.tar.gz`` in the cache dir).
    url, sha256 : str
    opener : callable, optional
        ``opener(request, timeout=...)`` returning a response like `urllib.request.urlopen`'s
        (the default); tests pass a fake one.

    Returns
    -------
    Path
        ``dest``.
    """
    from tqdm import tqdm

    dest = Path(dest) if dest is not None else cache_dir() / ARCHIVE_NAME
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create {dest.parent} for the download ({err}); set LSTM_ADV_CACHE "
                        "(or cache_dir=) to a writable folder") from None
    part = dest.with_name(dest.name + ".part")
    opener = opener or urllib.request.urlopen
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "lstm_adv"}
    if start:
        headers["Range"] = f"bytes={start}-"
    resume_hint = f"run the same command again to resume from {part}, or download {url} by hand and pass data_path="
    response = None
    try:
        response = opener(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        # 416: we asked for bytes past the end, i.e. the part file is already complete.
        if not (err.code == 416 and start):
            raise UserError(f"download of {url} failed: HTTP {err.code} {err.reason}; {resume_hint}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(f"download of {url} failed ({reason}); {resume_hint}") from None

    if response is not None:
        with response:
            status = getattr(response, "status", None)
            if start and status != 206:
                start = 0  # the server (or a file:// URL) ignored the range: start over
            length = response.headers.get("Content-Length") if response.headers is not None else None
            expected = int(length) + start if length is not None and str(length).isdigit() else None
            received = start
            try:
                with open(part, "ab" if start else "wb") as fh, \
                        tqdm(total=expected, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                             desc=f"fetch {dest.name}", disable=not progress, file=sys.stderr) as bar:
                    for block in iter(lambda: response.read(chunk_size), b""):
                        fh.write(block)
                        received += len(block)
                        bar.update(len(block))
            except OSError as err:
                raise UserError(f"download of {url} interrupted after {received} bytes ({err}); "
                                f"{resume_hint}") from None
            if expected is not None and received < expected:
                raise UserError(f"download of {url} stopped after {received} of {expected} bytes; {resume_hint}")

    got = sha256_file(part)
    if got != sha256:
        part.unlink()
        raise UserError(f"{url} downloaded with SHA-256 {got}, expected {sha256}; the file was deleted: "
                        "run again, or download it by hand, check it and pass data_path=")
    os.replace(part, dest)
    return dest


# ---------------------------------------------------------------------------------------------
# reading and tokenising

def read_reviews(source, parts=LABELLED):
    """Every review text under the given (split, class) folders, in a fixed order.

    Parameters
    ----------
    source : path
        A tarball (read as a stream, never extracted) or the ``aclImdb`` folder.
    parts : sequence of (split, class, label)

    Returns
    -------
    dict
        ``{(split, class): [(file name, text), ...]}``, each list sorted by review id.

    Raises
    ------
    UserError
        Truncated or corrupt tarball, a part with no reviews, an empty review, bad UTF-8.
    """
    source = Path(source)
    wanted = {(split, cls) for split, cls, *_ in parts}
    found = {key: [] for key in wanted}
    if source.is_dir():
        for split, cls in wanted:
            folder = source / split / cls
            if not folder.is_dir():
                raise UserError(f"folder {source} has no {split}/{cls}; point data_path at the extracted "
                                "aclImdb folder or the tarball")
            for entry in os.scandir(folder):
                if entry.name.endswith(".txt"):
                    with open(entry.path, "rb") as fh:
                        found[(split, cls)].append((entry.name, _decode(fh.read(), entry.path)))
    else:
        try:
            with _open_compressed(source) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
                # Stream mode ("r|"): one sequential pass, nothing extracted to disk.
                for member in tar:
                    m = _MEMBER_RE.search(member.name)
                    if m is None or not member.isfile() or (m[1], m[2]) not in wanted:
                        continue
                    data = tar.extractfile(member).read()
                    found[(m[1], m[2])].append((m[3], _decode(data, f"{source}:{member.name}")))
                # tarfile stops at the end-of-archive blocks and shrugs at a stream cut short;
                # reading to the end makes the decompressor check its end marker and CRC.
                while raw.read(1 << 20):
                    pass
        except (tarfile.TarError, EOFError, zlib.error, OSError, lzma.LZMAError) as err:
            raise UserError(f"{source} is truncated or corrupt ({type(err).__name__}: {err}); fetch "
                            f"{ARCHIVE_NAME} again (python -m lstm_adv.data fetch) or give another copy") from None
    for (split, cls), items in found.items():
        if not items:
            raise UserError(f"{source} has no reviews under {split}/{cls}; it does not look like the aclImdb "
                            "release (train/pos, train/neg, test/pos, test/neg of ID_RATING.txt files)")
        for name, text in items:
            if not text.strip():
                raise UserError(f"review {split}/{cls}/{name} in {source} is empty; the copy is damaged: "
                                f"fetch {ARCHIVE_NAME} again or point data_path at a good copy")
        items.sort(key=_review_order)
    return found


def _open_compressed(path):
    """``path`` opened for reading, decompressed by its magic bytes (gzip, bzip2, xz or none)."""
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic[:3] == b"BZh":
        return bz2.open(path, "rb")
    if magic == b"\xfd7zXZ\x00":
        return lzma.open(path, "rb")
    return open(path, "rb")


def _decode(data, where):
    try:
        # Deviation: the tutorial read only the first line (readline); the release has no
        # newlines (line breaks are <br />), so the whole file is the same thing.
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"review {where} is not valid UTF-8 ({err}); the copy is damaged") from None


def _review_order(item):
    # Files are ID_RATING.txt: numeric id order (the tutorial used glob order, i.e. arbitrary).
    name = item[0]
    head = name.split("_", 1)[0]
    return (0, int(head), name) if head.isdigit() else (1, 0, name)


_TOKENIZER = None


def moses_tokenizer():
    """sacremoses' English `MosesTokenizer`, with the same output about three times faster.

    Its ``islower``/``isanyalpha`` rebuild sets of thousands of Unicode characters on every
    call, which is most of the time spent on an IMDB review; here the sets are built once.
    (Checked: the cache built with the stock class is byte-identical on all 50,000 reviews.)
    """
    from sacremoses import MosesTokenizer

    class FastMosesTokenizer(MosesTokenizer):
        _LOWER = frozenset(MosesTokenizer.IsLower)
        _ALPHA = frozenset(MosesTokenizer.IsAlpha)

        def islower(self, text):
            return not set(text).difference(self._LOWER)

        def isanyalpha(self, text):
            return any(set(text).intersection(self._ALPHA))

    return FastMosesTokenizer(lang="en")


def tokenize(text):
    """One review as the tutorial tokenised it: Moses (English), then lowercase, whitespace split.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of str
    """
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = moses_tokenizer()
    # Deviation: tokenizer.perl (run as `-l en -q`) escapes by default, so the tutorial's words
    # were spelt &quot; &apos;s &lt; &gt; &amp; &#91; &#93; &#124;. We keep the plain characters
    # (" 's < > & [ ] |): escaping is one-to-one, so token boundaries, counts and frequency ranks
    # are the same, and the plain spelling matches word2vec vocabularies and reads back as text.
    # `export escape=1` writes the tutorial's spelling.
    # Deviation: Python 3 lowercases and splits Unicode; the tutorial's Python 2 byte strings
    # only lowercased ASCII (e.g. "É" stayed upper case).
    return _TOKENIZER.tokenize(text, escape=False, return_str=True).lower().split()


def _tokenize_chunk(texts):
    return [tokenize(t) for t in texts]


def default_workers():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def tokenize_texts(texts, workers=None, progress=True, desc="tokenise"):
    """Tokenise many reviews with `tokenize`, on a process pool, with a progress bar.

    Parameters
    ----------
    texts : list of str
        ``n`` reviews.
    workers : int, optional
        Processes (default: the CPUs this process may use); 1 = in this process.

    Returns
    -------
    list of list of str
        ``n`` token lists, in the order of ``texts``.
    """
    from tqdm import tqdm

    workers = workers or default_workers()
    out = []
    with tqdm(total=len(texts), desc=desc, unit="review", disable=not progress, file=sys.stderr) as bar:
        if workers <= 1 or len(texts) < POOL_MIN_REVIEWS:
            for t in texts:
                out.append(tokenize(t))
                bar.update(1)
            return out
        size = max(1, min(256, len(texts) // (workers * 16)))
        chunks = [texts[i:i + size] for i in range(0, len(texts), size)]
        with multiprocessing.Pool(workers) as pool:
            for tokens in pool.imap(_tokenize_chunk, chunks):
                out.extend(tokens)
                bar.update(len(tokens))
    return out


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


def _pack(split):
    lengths = np.fromiter((len(s) for s in split.seqs), dtype=np.int64, count=len(split))
    offsets = np.zeros(len(split) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate([np.asarray(s, dtype=np.int32) for s in split.seqs] + [np.zeros(0, np.int32)])
    return flat, offsets, np.asarray(split.labels, dtype=np.int8)


def _unpack(flat, offsets, labels):
    seqs = [a.tolist() for a in np.split(flat, offsets[1:-1])] if len(labels) else []
    return Split(seqs, labels.astype(np.int64))


def write_cache(corpus, npz_path, json_path, meta):
    """Write a corpus to its cache pair; the JSON (written last) is what marks it complete."""
    arrays = {}
    for name, split in (("train", corpus.train), ("test", corpus.test)):
        arrays[f"{name}_tokens"], arrays[f"{name}_offsets"], arrays[f"{name}_labels"] = _pack(split)
    atomic_savez(npz_path, arrays)
    vocab = dict(meta, format="lstm_adv imdb cache", preprocess_version=PREPROCESS_VERSION,
                 n_train=len(corpus.train), n_test=len(corpus.test),
                 n_tokens={"train": int(arrays["train_offsets"][-1]), "test": int(arrays["test_offsets"][-1])},
                 words=corpus.words, counts=corpus.counts)
    atomic_write_json(json_path, vocab)


def read_cache(npz_path, json_path):
    """The cached corpus, or None if the pair is missing, incomplete or inconsistent."""
    if not (npz_path.exists() and json_path.exists()):
        return None
    try:
        vocab = json.loads(json_path.read_text(encoding="utf-8"))
        with np.load(npz_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        splits = {}
        for name in ("train", "test"):
            flat, offsets, labels = (arrays[f"{name}_{k}"] for k in ("tokens", "offsets", "labels"))
            ok = (len(offsets) == vocab[f"n_{name}"] + 1 == len(labels) + 1 and offsets[-1] == len(flat)
                  == vocab["n_tokens"][name] and (len(flat) == 0 or int(flat.max()) < len(vocab["words"])))
            if not ok:
                return None
            splits[name] = _unpack(flat, offsets, labels)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        return None
    info = {k: v for k, v in vocab.items() if k not in ("words", "counts")}
    return Corpus(splits["train"], splits["test"], vocab["words"], vocab["counts"], info)


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
    import importlib.metadata
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
            return [a.tolist() for a in np.split(flat, offsets[1:-1])] if len(offsets) > 1 else []
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        pass
    if progress:
        print(f"tokenising IMDB's unlabelled reviews (train/unsup) from {source} (once)", file=sys.stderr)
    found = read_reviews(source, parts=(("train", "unsup", -1),))
    texts = [text for _, text in found[("train", "unsup")]]
    tokens = tokenize_texts(texts, workers=workers, progress=progress, desc="tokenise IMDB unsup")
    seqs = encode(tokens, {w: i for i, w in enumerate(corpus.words)})
    flat, offsets, _ = _pack(Split(seqs, np.zeros(len(seqs), dtype=np.int64)))
    try:
        atomic_savez(path, {"tokens": flat, "offsets": offsets, "n_words_dict": np.array(len(corpus.words))})
    except OSError as err:
        raise UserError(f"cannot write the IMDB unlabelled cache {path} ({err}); free some space") from None
    return seqs


def load_imdb(cfg, workers=None, cache=None):
    """IMDB as the tutorial's ``imdb.load_data`` returned it (see `lstm_adv.data.finalize`).

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
    info = dict(corpus.info, word_counts=corpus.counts)
    data = finalize(corpus.train, corpus.test, corpus.words, cfg, info)
    if cfg.unlabelled:
        seqs = load_unlabelled(source, corpus, workers=workers, cache=cache, progress=progress)
        data.unlabelled = finalize_unlabelled(seqs, cfg)
        data.info["n_unlabelled"] = len(data.unlabelled)
    return data


# ---------------------------------------------------------------------------------------------
# export for the Theano tutorial

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
    paths = [out_dir / "imdb.pkl", out_dir / "imdb.dict.pkl"]
    atomic_write_bytes(paths[0], data)
    atomic_write_bytes(paths[1], pickle.dumps(dictionary, protocol=2))
    return paths


# ---------------------------------------------------------------------------------------------
# command line

USAGE = """usage: python -m lstm_adv.data COMMAND [key=value ...]

Manage the IMDB data (Maas et al. 2011) for lstm_adv.

commands:
  fetch    download the official {archive} (SHA-256 checked, resumable) into the cache dir
  build    preprocess the release once and write the cache (.npz + .vocab.json)
  export   also write the Theano tutorial's imdb.pkl and imdb.dict.pkl into out=DIR

keys (key=value; a leading -- is allowed; a bare flag means =1):
  data_path=PATH   aclImdb tarball or folder (else $LSTM_ADV_DATA, else the cache dir)
  cache_dir=DIR    cache folder (else $LSTM_ADV_CACHE, else the user cache dir:
                   {cache})
  workers=N        tokenising processes (default: all CPUs)
  download=0|1     build/export: fetch the archive if it is nowhere (default 1;
                   $LSTM_ADV_OFFLINE=1 also forbids it)
  force=0|1        build: rebuild even if the cache is up to date
  out=DIR          export: where imdb.pkl and imdb.dict.pkl go (required)
  escape=0|1       export: spell words as tokenizer.perl did (&quot; &apos;s ...)
  url=URL          fetch: another address of the same archive (the SHA-256 is still checked)
  progress=0|1     progress bars (default 1)

examples:
  python -m lstm_adv.data fetch
  python -m lstm_adv.data build data_path=../shared/data/aclImdb.tar.gz
  python -m lstm_adv.data export out=tutorial_data
"""

_KEYS = {"data_path": str, "cache_dir": str, "workers": int, "download": int, "force": int, "out": str,
         "escape": int, "url": str, "progress": int}
_FLAGS = ("download", "force", "escape", "progress")


def _parse_cli(args):
    opts = {"data_path": "", "cache_dir": "", "workers": 0, "download": 1, "force": 0, "out": "",
            "escape": 0, "url": OFFICIAL_URL, "progress": 1}
    for name, raw in split_key_values(args, _KEYS, _FLAGS):
        if name in _FLAGS:
            opts[name] = int(checks.choice(name, raw.strip(), (0, 1)))
        elif _KEYS[name] is int:
            opts[name] = checks.integer(name, raw, minimum=0)   # workers: 0 = all CPUs
        else:
            opts[name] = raw
    if not opts["url"].startswith(("http://", "https://", "ftp://", "file://")):
        raise UserError(f"url={opts['url']} is not a URL (http://, https://, ftp:// or file://)")
    return opts


def _check_cli(command, opts, cache):
    """Everything a command line can be checked for before it downloads, builds or writes."""
    if opts["data_path"]:
        checks.readable_path("data_path", opts["data_path"])
    if opts["cache_dir"] or command in ("fetch", "build"):
        checks.writable_dir("cache_dir", cache)
    if command == "export":
        if not opts["out"]:
            raise UserError("export needs out=DIR (where imdb.pkl and imdb.dict.pkl go)")
        checks.writable_dir("out", opts["out"])
        for name in ("imdb.pkl", "imdb.dict.pkl"):
            checks.writable_file("out", Path(opts["out"]) / name)


@cli_entry
def data_main(argv):
    """``python -m lstm_adv.data fetch|build|export [key=value ...]``; returns the exit status."""
    if not argv:
        raise UserError("no command; use fetch, build or export (see python -m lstm_adv.data --help)")
    if argv[0] in ("-h", "--help", "help") or any(a in ("-h", "--help") for a in argv[1:]):
        print(USAGE.format(archive=ARCHIVE_NAME, cache=cache_dir()))
        return 0
    command, opts = argv[0], _parse_cli(argv[1:])
    if command not in ("fetch", "build", "export"):
        raise UserError(f"unknown command {command!r}; use fetch, build or export (see --help)")
    cache = Path(opts["cache_dir"]).expanduser() if opts["cache_dir"] else cache_dir()
    _check_cli(command, opts, cache)
    progress = bool(opts["progress"])
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
        print(f"downloading {opts['url']} to {dest}", file=sys.stderr)
        fetch(dest, url=opts["url"], progress=progress)
        print(dest)
        return 0
    if command in ("build", "export"):
        source = find_source(opts["data_path"], download=bool(opts["download"]), cache=cache, progress=progress)
        corpus = load_corpus(source, workers=opts["workers"] or None, cache=cache, progress=progress,
                             force=bool(opts["force"]))
        state = "built" if corpus.info["built"] else "up to date"
        print(f"cache {state}: {corpus.info['cache']} ({len(corpus.train)} train, {len(corpus.test)} test "
              f"reviews, {len(corpus.words)} words; {corpus.info['load_seconds']:.1f} s)")
        if command == "export":
            for path in export_tutorial(corpus, opts["out"], escape=bool(opts["escape"])):
                print(path)
        return 0
    raise UserError(f"unknown command {command!r}; use fetch, build or export (see --help)")

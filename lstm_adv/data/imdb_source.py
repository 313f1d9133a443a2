"""The raw IMDB release (Maas et al. 2011): finding it, downloading it, reading and tokenising it.

Finding the raw release (``aclImdb_v1.tar.gz``, any tarball with its ``aclImdb/`` layout, or
the extracted folder), in this order:

1. the ``data_path`` key;
2. the environment variable ``LSTM_ADV_DATA``;
3. the cache dir (``$LSTM_ADV_CACHE``, else ``platformdirs.user_cache_dir("lstm_adv")``):
   ``aclImdb_v1.tar.gz``, ``aclImdb.tar.gz`` or ``aclImdb/`` there;
4. else, unless ``download=0`` or ``$LSTM_ADV_OFFLINE`` is set, the official archive is
   downloaded into the cache dir (resumable, SHA-256 checked).

Every review is Moses-tokenised as the Theano tutorial's ``imdb_preprocess.py`` did it
(`tokenize`); `lstm_adv.data.imdb` builds the dictionary and caches the result.
"""

import bz2
import gzip
import hashlib
import lzma
import multiprocessing
import os
import re
import signal
import sys
import tarfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import platformdirs

from ..common.errors import UserError

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
OFFICIAL_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
ARCHIVE_NAME = "aclImdb_v1.tar.gz"

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
    except (EOFError, zlib.error, lzma.LZMAError):
        # A compressed stream that breaks off or does not decode (a gzip header followed by junk):
        # is_tarfile lets the decompressor's error through instead of answering False.
        ok = False
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
    from tqdm import tqdm  # only when downloading: keeps `import lstm_adv.train` light

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
                             desc=f"fetch {dest.name}", disable=None if progress else True, file=sys.stderr) as bar:
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
    from sacremoses import MosesTokenizer  # compiles large regexes: only when tokenising

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


def _quiet_worker_signals():
    """In a pool worker: die quietly on SIGTERM and leave SIGINT to the parent.

    Forked workers inherit the training's signal handlers, which raise; the pool's own
    ``terminate()`` (leaving the ``with`` block) sends SIGTERM, and a terminal's Ctrl-C reaches
    every process of the group, so each worker printed a traceback. The parent still stops on
    either signal and terminates the pool.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
    from tqdm import tqdm  # only when tokenising: keeps `import lstm_adv.train` light

    workers = workers or default_workers()
    out = []
    # disable=None: a bar on a terminal only; into a log file or a pipe its redraws would be noise.
    with tqdm(total=len(texts), desc=desc, unit="review", disable=None if progress else True, file=sys.stderr) as bar:
        if workers <= 1 or len(texts) < POOL_MIN_REVIEWS:
            for t in texts:
                out.append(tokenize(t))
                bar.update(1)
            return out
        size = max(1, min(256, len(texts) // (workers * 16)))
        chunks = [texts[i:i + size] for i in range(0, len(texts), size)]
        # forkserver (spawn where there is none): a forked copy of a multithreaded parent (JAX and
        # BLAS start threads) can deadlock in its workers, and JAX warns about it.
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        with ctx.Pool(workers, initializer=_quiet_worker_signals) as pool:
            for tokens in pool.imap(_tokenize_chunk, chunks):
                out.extend(tokens)
                bar.update(len(tokens))
    return out


"""IMDB loading (lstm_adv.data.imdb, lstm_adv.data.imdb_source) on tiny aclImdb-shaped trees made here; never the network.

The real archive is checked only when LSTM_ADV_DATA points to it (opt-in, about a minute on
a first build).
"""

import io
import os
import pickle
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import HANG_GUARD, merge
from lstm_adv.data import imdb, imdb_source
from lstm_adv.config import parse_args
from lstm_adv.data import PAD, UNK
from lstm_adv.common.errors import UserError

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = os.environ.get("LSTM_ADV_DATA", "")
REAL_CACHE = os.environ.get("LSTM_ADV_CACHE", "")

SPECIAL = "It's a GREAT film.<br /><br />Really."
SPECIAL_TOKENS = ["it", "'s", "a", "great", "film", ".", "<", "br", "/", ">", "<", "br", "/", ">", "really", "."]
LONG_TEST = "the film was " + "bad " * 12  # 15 tokens: longer than any maxlen used here


def tiny_reviews():
    """{(split, class): {file name: text}}: 11 positive and 10 negative train reviews of
    lengths 4..13 (plus one with punctuation), 3 test reviews, 2 unlabelled ones."""
    reviews = {
        ("train", "pos"): {f"{i}_{7 + i % 4}.txt": "the movie was " + "good " * (i + 1) for i in range(10)},
        ("train", "neg"): {f"{i}_{1 + i % 4}.txt": "the film was " + "bad " * (i + 1) for i in range(10)},
        ("test", "pos"): {"0_10.txt": "the movie was good zebra", "1_8.txt": "good good"},
        ("test", "neg"): {"0_2.txt": LONG_TEST},
        ("train", "unsup"): {"0_0.txt": "a movie about a film", "1_0.txt": "the good the bad"},
    }
    reviews[("train", "pos")]["10_9.txt"] = SPECIAL
    return reviews


def write_tree(root, reviews=None):
    """An aclImdb folder under ``root``; returns its path."""
    base = Path(root) / "aclImdb"
    for (split, cls), files in (reviews or tiny_reviews()).items():
        (base / split / cls).mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (base / split / cls / name).write_text(text, encoding="utf-8")
    (base / "README").write_text("tiny test copy\n")
    return base


def write_tarball(path, reviews=None):
    """The same tree as a .tar.gz (members under aclImdb/), built in memory."""
    with tarfile.open(path, "w:gz") as tar:
        for (split, cls), files in sorted((reviews or tiny_reviews()).items()):
            for name, text in sorted(files.items()):
                data = text.encode("utf-8")
                info = tarfile.TarInfo(f"aclImdb/{split}/{cls}/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return Path(path)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private cache, no LSTM_ADV_DATA, and downloads forbidden."""
    monkeypatch.setenv("LSTM_ADV_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LSTM_ADV_DATA", raising=False)
    monkeypatch.setenv("LSTM_ADV_OFFLINE", "1")


@pytest.fixture
def tree(tmp_path):
    return write_tree(tmp_path / "src")


@pytest.fixture
def tarball(tmp_path):
    return write_tarball(tmp_path / "aclImdb_tiny.tar.gz")


def cfg_for(path, *extra):
    return parse_args(merge([f"data_path={path}", "n_words=20", "maxlen=8", "valid_portion=0.3", "progress=0"], extra))


def decode(ds, seq):
    return [ds.words[i] for i in seq]


# --- preprocessing and the dictionary -----------------------------------------------------------

def test_tokenize_is_moses_lowercased():
    assert imdb_source.tokenize(SPECIAL) == SPECIAL_TOKENS


TRICKY = ["Mr. smith went to the U.S.A. in 1990. He said: no. 5 is fine.", "See e.g. this . And THAT.",
          "Étonnant. élan... Ça va? \u00c9cole. ok.", "a.b.c. D. e. F.G. h", "It's 5.5/10 -- I'd say \"meh\"..."]


def test_fast_tokenizer_matches_sacremoses():
    from sacremoses import MosesTokenizer

    stock = MosesTokenizer(lang="en")
    for text in TRICKY:
        assert imdb_source.moses_tokenizer().tokenize(text, escape=False) == stock.tokenize(text, escape=False)


def test_dictionary_order_and_ids(tree):
    corpus = imdb.load_corpus(tree, progress=False)
    counts = Counter()
    for (split, cls), files in tiny_reviews().items():
        if split == "train" and cls != "unsup":
            for text in files.values():
                counts.update(imdb_source.tokenize(text))
    expected = sorted(counts, key=lambda w: (-counts[w], w))
    assert corpus.words[:2] == ["<pad>", "<unk>"]
    assert corpus.words[2:] == expected
    # "bad" and "good" both occur 55 times: the tie goes to the alphabetically first word.
    assert corpus.words[2:4] == ["bad", "good"]
    assert corpus.counts[2:] == [counts[w] for w in expected] and corpus.counts[:2] == [0, 0]
    assert "zebra" not in corpus.words  # test words never enter the dictionary


def test_labels_and_order(tree):
    corpus = imdb.load_corpus(tree, progress=False)
    words = corpus.words
    train = [[words[i] for i in s] for s in corpus.train.seqs]
    assert list(corpus.train.labels) == [1] * 11 + [0] * 10  # positives first, as the tutorial
    assert train[10] == SPECIAL_TOKENS  # pos ids 0..10 in numeric order, so "10_9" comes after "9_..."
    for tokens, y in zip(train, corpus.train.labels):
        assert ("good" in tokens or "great" in tokens) == (y == 1)
    assert list(corpus.test.labels) == [1, 1, 0]
    assert corpus.test.labels.dtype == np.int64


def test_unk_mapping(tree):
    ds = imdb.load_imdb(cfg_for(tree, "n_words=4", "maxlen=0"))
    for split in (ds.train, ds.valid, ds.test):
        for s in split.seqs:
            assert PAD not in s and max(s) < 4
    # With n_words=4 only "bad" (2) and "good" (3) survive; "the movie was" become UNK.
    assert [1, 1, 1, 3] in ds.train.seqs + ds.valid.seqs
    # A test word unseen in train is UNK (1), never padding (0), whatever n_words is.
    big = imdb.load_imdb(cfg_for(tree, "n_words=1000", "maxlen=0"))
    zebra = [s for s in big.test.seqs if len(s) == 5][0]
    assert decode(big, zebra[:4]) == ["the", "movie", "was", "good"] and zebra[4] == UNK


def test_maxlen_filters_train_only(tree):
    ds = imdb.load_imdb(cfg_for(tree, "maxlen=8"))
    lengths = [len(s) for s in ds.train.seqs + ds.valid.seqs]
    # Train lengths are 4..13 per class and 16 for the special review: length < 8 keeps 4 per class.
    assert sorted(lengths) == sorted([4, 5, 6, 7] * 2)
    assert len(ds.test) == 3 and max(len(s) for s in ds.test.seqs) == 15
    assert ds.info["n_train_all"] == 21 and ds.info["train_kept_fraction"] == pytest.approx(8 / 21)


def test_seeded_valid_split(tree):
    def split(seed):
        ds = imdb.load_imdb(cfg_for(tree, "maxlen=0", f"seed={seed}"))
        return sorted(map(tuple, ds.valid.seqs)), sorted(map(tuple, ds.train.seqs))

    a, b, c = split(1), split(1), split(2)
    assert a == b
    assert a != c
    assert len(a[0]) == 21 - round(21 * 0.7) and len(a[0]) + len(a[1]) == 21


def test_sorted_by_length(tree):
    ds = imdb.load_imdb(cfg_for(tree, "maxlen=0"))
    for split in (ds.train, ds.valid, ds.test):
        lengths = [len(s) for s in split.seqs]
        assert lengths == sorted(lengths)


def test_truncate_mode(tree):
    ds = imdb.load_imdb(cfg_for(tree, "maxlen=5", "maxlen_mode=truncate"))
    assert len(ds.train) + len(ds.valid) == 21
    assert max(len(s) for s in ds.train.seqs + ds.valid.seqs) == 5
    assert max(len(s) for s in ds.test.seqs) == 15  # test is never cut


def test_folder_and_tarball_agree(tree, tarball):
    a, b = imdb.load_imdb(cfg_for(tree)), imdb.load_imdb(cfg_for(tarball))
    assert a.words == b.words
    for x, y in ((a.train, b.train), (a.valid, b.valid), (a.test, b.test)):
        assert x.seqs == y.seqs and list(x.labels) == list(y.labels)
    assert len(b.info["sha256"]) == 64 and b.info["sha256"] == imdb_source.sha256_file(tarball)
    assert b.info["source"] == str(tarball.resolve()) and b.info["word_counts"][2] == 55


def test_progress_bars_draw_only_on_a_terminal(capsys):
    # A first IMDB run whose output goes to a log file or a Slurm .out: no bar redraws there.
    assert imdb_source.tokenize_texts(["A good film.", "A bad one."], workers=1, progress=True) == [
        ["a", "good", "film", "."], ["a", "bad", "one", "."]]
    assert capsys.readouterr().err == ""   # capsys's stderr is not a terminal


def test_pool_gives_the_same_tokens():
    texts = [f"Review {i}: it's {'GOOD' if i % 2 else 'bad'}, isn't it?<br />" for i in range(imdb_source.POOL_MIN_REVIEWS)]
    assert imdb_source.tokenize_texts(texts, workers=2, progress=False) == [imdb_source.tokenize(t) for t in texts]


def test_pool_never_forks_the_parent(monkeypatch):
    """The tokeniser's workers start from a fork server (or spawn), not a fork of this process,
    which may run JAX's and BLAS's threads: a forked copy of those can deadlock (JAX warns)."""
    import multiprocessing

    methods = []
    real = multiprocessing.get_context
    monkeypatch.setattr(multiprocessing, "get_context", lambda m=None: methods.append(m) or real(m))
    texts = ["a fine film ."] * imdb_source.POOL_MIN_REVIEWS
    assert len(imdb_source.tokenize_texts(texts, workers=2, progress=False)) == len(texts)
    assert methods and methods[-1] in ("forkserver", "spawn")


def test_pool_workers_end_quietly_under_the_trainings_signal_handlers():
    # The training installs handlers that raise; forked workers used to inherit them and print a
    # traceback each when the pool terminated them (SIGTERM) at the end of the with block.
    code = ("import signal\nfrom lstm_adv.data import imdb_source\n"
            "def stop(signum, frame):\n    raise RuntimeError(f'signal {signum}')\n"
            "signal.signal(signal.SIGTERM, stop)\nsignal.signal(signal.SIGINT, stop)\n"
            "texts = ['a fine film , really .'] * (4 * imdb_source.POOL_MIN_REVIEWS)\n"
            "print(len(imdb_source.tokenize_texts(texts, workers=2, progress=False)))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_GUARD)
    assert r.returncode == 0 and r.stdout.strip() == str(4 * imdb_source.POOL_MIN_REVIEWS), r.stderr
    assert "Traceback" not in r.stderr, r.stderr[-2000:]


# --- the cache ----------------------------------------------------------------------------------

def test_cache_reused(tarball, monkeypatch, tmp_path):
    first = imdb.load_imdb(cfg_for(tarball))
    assert first.info["built"]
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(cached) == 2 and cached[0].endswith(".npz") and cached[1].endswith(".vocab.json")
    assert f"-p{imdb.PREPROCESS_VERSION}-" in cached[0] and first.info["sha256"][:16] in cached[0]

    def no_tokenising(text):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(imdb_source, "tokenize", no_tokenising)
    second = imdb.load_imdb(cfg_for(tarball))
    assert not second.info["built"]
    assert second.words == first.words and second.train.seqs == first.train.seqs
    assert second.test.seqs == first.test.seqs and list(second.train.labels) == list(first.train.labels)


def test_cache_rebuilt_when_source_changes(tree, tmp_path):
    first = imdb.load_imdb(cfg_for(tree, "maxlen=0"))
    review = tree / "train" / "pos" / "0_7.txt"
    review.write_text("the movie was marvellous indeed")
    second = imdb.load_imdb(cfg_for(tree, "maxlen=0"))
    assert second.info["built"] and second.info["sha256"] != first.info["sha256"]
    assert "marvellous" in second.words and "marvellous" not in first.words

    reviews = tiny_reviews()
    tar1 = write_tarball(tmp_path / "a.tar.gz", reviews)
    h1 = imdb.load_imdb(cfg_for(tar1)).info["sha256"]
    reviews[("train", "neg")]["0_1.txt"] = "the film was dreadful"
    tar2 = write_tarball(tmp_path / "a.tar.gz", reviews)
    ds = imdb.load_imdb(cfg_for(tar2))
    assert ds.info["built"] and ds.info["sha256"] != h1 and "dreadful" in ds.words


def test_cache_rebuilt_when_preprocessing_changes(tarball, monkeypatch):
    imdb.load_imdb(cfg_for(tarball))
    monkeypatch.setattr(imdb, "PREPROCESS_VERSION", imdb.PREPROCESS_VERSION + 1)
    assert imdb.load_imdb(cfg_for(tarball)).info["built"]


def test_damaged_cache_is_rebuilt(tarball, tmp_path):
    imdb.load_imdb(cfg_for(tarball))
    npz = next((tmp_path / "cache").glob("*.npz"))
    npz.write_bytes(npz.read_bytes()[:100])
    assert imdb.load_imdb(cfg_for(tarball)).info["built"]


def test_failed_build_leaves_no_cache(tmp_path, monkeypatch):
    reviews = tiny_reviews()
    reviews[("test", "neg")]["1_1.txt"] = "   "
    bad = write_tarball(tmp_path / "bad.tar.gz", reviews)
    with pytest.raises(UserError):
        imdb.load_imdb(cfg_for(bad))
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.iterdir())


def test_an_unwritable_cache_is_refused_before_building(tarball, tmp_path, monkeypatch):
    # A cache folder that cannot exist (under a file): refused before the minute of tokenising, not after.
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("LSTM_ADV_CACHE", str(tmp_path / "afile" / "cache"))
    monkeypatch.setattr(imdb, "build_corpus", lambda *a, **k: pytest.fail("built before checking the cache folder"))
    with pytest.raises(UserError, match=r"^LSTM_ADV_CACHE=.*afile/cache: .*afile is a file"):
        imdb.load_imdb(cfg_for(tarball))


# --- finding the data ---------------------------------------------------------------------------

def test_lookup_order(tree, tarball, tmp_path, monkeypatch):
    monkeypatch.setenv("LSTM_ADV_DATA", str(tarball))
    assert imdb_source.find_source("") == tarball
    assert imdb_source.find_source(str(tree)) == tree  # data_path wins
    assert imdb_source.find_source(str(tree.parent)) == tree  # a folder holding aclImdb/ is fine too
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    (shelf / "aclImdb.tar.gz").write_bytes(tarball.read_bytes())
    assert imdb_source.find_source(str(shelf)) == shelf / "aclImdb.tar.gz"  # a folder holding the tarball
    monkeypatch.delenv("LSTM_ADV_DATA")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / imdb_source.ARCHIVE_NAME).write_bytes(tarball.read_bytes())
    assert imdb_source.find_source("") == cache / imdb_source.ARCHIVE_NAME


def test_not_found_offline_says_where_it_looked(tmp_path):
    with pytest.raises(UserError) as err:
        imdb.load_imdb(parse_args(["progress=0"]))
    msg = str(err.value)
    assert "\n" not in msg
    for part in ("data_path", "$LSTM_ADV_DATA", str(tmp_path / "cache"), "LSTM_ADV_OFFLINE", "fetch"):
        assert part in msg


def test_download_zero_never_downloads(tmp_path, monkeypatch):
    monkeypatch.delenv("LSTM_ADV_OFFLINE")
    monkeypatch.setattr(imdb_source, "fetch", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(UserError, match="download=0"):
        imdb.load_imdb(parse_args(["download=0", "progress=0"]))


def test_not_found_online_downloads(tmp_path, monkeypatch, tarball):
    monkeypatch.delenv("LSTM_ADV_OFFLINE")
    calls = []

    def fake_fetch(dest, progress=True):
        calls.append(dest)
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        Path(dest).write_bytes(tarball.read_bytes())
        return Path(dest)

    monkeypatch.setattr(imdb_source, "fetch", fake_fetch)
    ds = imdb.load_imdb(parse_args(["progress=0", "n_words=20", "maxlen=0"]))
    assert calls == [tmp_path / "cache" / imdb_source.ARCHIVE_NAME] and len(ds.test) == 3


# --- bad data -----------------------------------------------------------------------------------

def check_user_error(path, *fragments, extra=()):
    with pytest.raises(UserError) as err:
        imdb.load_imdb(cfg_for(path, *extra))
    msg = str(err.value)
    assert "\n" not in msg
    for f in fragments:
        assert f in msg, msg
    return msg


def test_missing_path(tmp_path):
    check_user_error(tmp_path / "nowhere.tar.gz", "data_path=", "no such file")


def test_missing_path_in_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LSTM_ADV_DATA", str(tmp_path / "gone"))
    with pytest.raises(UserError, match=r"\$LSTM_ADV_DATA=.*no such file"):
        imdb.load_imdb(parse_args(["progress=0"]))


def test_truncated_tarball(tarball, tmp_path):
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(tarball.read_bytes()[: tarball.stat().st_size // 2])
    check_user_error(cut, "truncated or corrupt", "fetch")


def test_corrupt_tarball(tmp_path):
    # Fixed bytes, not os.urandom: about one random tail in 500 made tarfile.is_tarfile raise
    # EOFError (a gzip header with method 8 and flags that run past the end) instead of saying False.
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b" + np.random.default_rng(0).bytes(4000))
    check_user_error(junk, "not a tar archive")
    # That header, written out: deflate (8), FEXTRA (4), an extra field longer than the file.
    junk.write_bytes(b"\x1f\x8b\x08\x04" + bytes(6) + b"\xff\xff" + b"x" * 100)
    check_user_error(junk, "not a tar archive")
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    check_user_error(text, "not a tar archive")


def test_folder_missing_train_pos(tree):
    for f in (tree / "train" / "pos").iterdir():
        f.unlink()
    (tree / "train" / "pos").rmdir()
    check_user_error(tree, "train/pos")


def test_tarball_without_a_class(tmp_path):
    reviews = tiny_reviews()
    del reviews[("test", "pos")]
    check_user_error(write_tarball(tmp_path / "part.tar.gz", reviews), "no reviews under test/pos")


def test_empty_review(tree):
    (tree / "test" / "neg" / "7_1.txt").write_text("")
    check_user_error(tree, "7_1.txt", "empty")


def test_cli_bad_data_exits_2_with_one_line(tmp_path):
    env = dict(os.environ, LSTM_ADV_CACHE=str(tmp_path / "cache"), LSTM_ADV_OFFLINE="1")
    env.pop("LSTM_ADV_DATA", None)
    bad = tmp_path / "broken.tar.gz"
    bad.write_bytes(b"not a tarball")
    for args in (["build", f"data_path={bad}"], ["build", f"data_path={tmp_path / 'missing'}"],
                 ["build", "colour=blue"], ["frobnicate"]):
        proc = subprocess.run([sys.executable, "-m", "lstm_adv.data", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=HANG_GUARD)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr


def test_cli_help():
    proc = subprocess.run([sys.executable, "-m", "lstm_adv.data", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=HANG_GUARD)
    assert proc.returncode == 0
    for word in ("fetch", "build", "export", "data_path=", "cache_dir=", "LSTM_ADV_DATA", "LSTM_ADV_OFFLINE"):
        assert word in proc.stdout


# --- build and export on the command line -------------------------------------------------------

def test_cli_build_and_export(tarball, tmp_path, capsys):
    out = tmp_path / "theano"
    assert imdb.data_main(["build", f"data_path={tarball}", "progress=0"]) == 0
    assert "cache built" in capsys.readouterr().out
    assert imdb.data_main(["export", f"data_path={tarball}", f"out={out}", "--progress=0"]) == 0
    assert "up to date" in capsys.readouterr().out
    with open(out / "imdb.pkl", "rb") as fh:
        train_x, train_y = pickle.load(fh)  # two pickles in a row, as imdb.load_data reads them
        test_x, test_y = pickle.load(fh)
    with open(out / "imdb.dict.pkl", "rb") as fh:
        dictionary = pickle.load(fh)
    assert train_y == [1] * 11 + [0] * 10 and test_y == [1, 1, 0] and len(test_x) == 3
    assert dictionary["bad"] == 2 and dictionary["good"] == 3 and min(dictionary.values()) == 2
    words = {i: w for w, i in dictionary.items()}
    assert [words[i] for i in train_x[10]] == SPECIAL_TOKENS
    assert [words.get(i, "<unk>") for i in test_x[0]] == ["the", "movie", "was", "good", "<unk>"]

    assert imdb.data_main(["export", f"data_path={tarball}", f"out={out}", "escape=1", "progress=0"]) == 0
    with open(out / "imdb.dict.pkl", "rb") as fh:
        escaped = pickle.load(fh)
    assert "&apos;s" in escaped and "&lt;" in escaped and "'s" not in escaped


def test_cli_cache_dir_key(tarball, tmp_path):
    other = tmp_path / "elsewhere"
    assert imdb.data_main(["build", f"data_path={tarball}", f"cache_dir={other}", "progress=0"]) == 0
    assert len(list(other.glob("imdb-*.npz"))) == 1


def test_cli_fetch_refuses_offline(capsys):
    assert imdb.data_main(["fetch"]) == 2
    assert "LSTM_ADV_OFFLINE" in capsys.readouterr().err


# --- download (never the network) ---------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 200
PAYLOAD_SHA = __import__("hashlib").sha256(PAYLOAD).hexdigest()


class FakeResponse(io.BytesIO):
    def __init__(self, data, status, headers):
        super().__init__(data)
        self.status, self.headers = status, headers


def fake_server(payload, honour_range=True, cut=None):
    """An ``opener`` serving ``payload``, recording each request's Range header."""
    requests = []

    def opener(request, timeout=None):
        rng = request.get_header("Range")
        requests.append(rng)
        start = int(rng[len("bytes="):-1]) if rng and honour_range else 0
        body = payload[start:]
        headers = {"Content-Length": str(len(body))}
        if cut is not None:
            body = body[:cut]  # the connection drops early
        return FakeResponse(body, 206 if start else 200, headers)

    opener.requests = requests
    return opener


def test_download_from_file_url(tmp_path):
    src = tmp_path / "remote.bin"
    src.write_bytes(PAYLOAD)
    dest = tmp_path / "dl" / "archive.tar.gz"
    assert imdb_source.fetch(dest, url=src.as_uri(), sha256=PAYLOAD_SHA, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "dl" / "archive.tar.gz.part").exists()


def test_download_resumes_from_part_file(tmp_path):
    dest = tmp_path / "archive.tar.gz"
    part = tmp_path / "archive.tar.gz.part"
    part.write_bytes(PAYLOAD[:10000])
    server = fake_server(PAYLOAD)
    imdb_source.fetch(dest, url="https://example.invalid/a.tar.gz", sha256=PAYLOAD_SHA, opener=server, progress=False)
    assert server.requests == ["bytes=10000-"]
    assert dest.read_bytes() == PAYLOAD and not part.exists()


def test_download_restarts_when_range_ignored(tmp_path):
    dest = tmp_path / "archive.tar.gz"
    (tmp_path / "archive.tar.gz.part").write_bytes(b"stale bytes")
    server = fake_server(PAYLOAD, honour_range=False)
    imdb_source.fetch(dest, url="https://example.invalid/a", sha256=PAYLOAD_SHA, opener=server, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_download_interrupted_keeps_part_then_resumes(tmp_path):
    dest = tmp_path / "archive.tar.gz"
    with pytest.raises(UserError, match="resume"):
        imdb_source.fetch(dest, url="https://example.invalid/a", sha256=PAYLOAD_SHA, opener=fake_server(PAYLOAD, cut=5000),
                   progress=False)
    part = tmp_path / "archive.tar.gz.part"
    assert part.stat().st_size == 5000 and not dest.exists()
    server = fake_server(PAYLOAD)
    imdb_source.fetch(dest, url="https://example.invalid/a", sha256=PAYLOAD_SHA, opener=server, progress=False)
    assert server.requests == ["bytes=5000-"] and dest.read_bytes() == PAYLOAD


def test_download_hash_mismatch_refused(tmp_path):
    src = tmp_path / "remote.bin"
    src.write_bytes(PAYLOAD[:-1] + b"X")
    dest = tmp_path / "dl" / "archive.tar.gz"
    with pytest.raises(UserError, match="SHA-256") as err:
        imdb_source.fetch(dest, url=src.as_uri(), sha256=PAYLOAD_SHA, progress=False)
    assert "\n" not in str(err.value)
    assert list((tmp_path / "dl").iterdir()) == []  # neither the file nor a .part is left


def test_download_network_error_is_one_line(tmp_path):
    def opener(request, timeout=None):
        raise imdb_source.urllib.error.URLError("no route to host")

    with pytest.raises(UserError, match="no route to host"):
        imdb_source.fetch(tmp_path / "a.tar.gz", url="https://example.invalid/a", opener=opener, progress=False)


# --- the real archive (opt-in) ------------------------------------------------------------------

@pytest.mark.realdata
@pytest.mark.skipif(not (REAL_DATA and Path(REAL_DATA).is_file()),
                    reason="set LSTM_ADV_DATA to the aclImdb tarball (e.g. ../shared/data/aclImdb.tar.gz) to run")
def test_real_archive(monkeypatch):
    # The user's cache, not the test's: a first build takes about a minute, later runs seconds.
    if REAL_CACHE:
        monkeypatch.setenv("LSTM_ADV_CACHE", REAL_CACHE)
    else:
        monkeypatch.delenv("LSTM_ADV_CACHE")
    corpus = imdb.load_corpus(imdb_source.find_source(REAL_DATA), progress=False)
    assert len(corpus.train) == 25000 and len(corpus.test) == 25000
    for split in (corpus.train, corpus.test):
        assert int(split.labels.sum()) == 12500
    from sacremoses import MosesTokenizer

    texts = [t for _, t in imdb_source.read_reviews(REAL_DATA, parts=(("test", "neg", 0),))[("test", "neg")][:300]]
    stock, fast = MosesTokenizer(lang="en"), imdb_source.moses_tokenizer()
    assert [fast.tokenize(t, escape=False) for t in texts] == [stock.tokenize(t, escape=False) for t in texts]

    ds = imdb.load_imdb(parse_args([f"data_path={REAL_DATA}", "maxlen=100", "progress=0"]))
    kept = len(ds.train) + len(ds.valid)
    assert 0.05 * 25000 <= kept <= 0.15 * 25000
    assert len(ds.test) == 25000 and ds.words[2] in ("the", ".", ",")


def test_unlabelled_reviews_are_tokenised_with_the_train_dictionary_and_cached(tarball, monkeypatch):
    # unlabelled=N (vat=1): train/unsup, same tokeniser and dictionary, maxlen rule, first N.
    ds = imdb.load_imdb(cfg_for(tarball, "vat=1", "eps=1", "unlabelled=5"))
    assert [decode(ds, s) for s in ds.unlabelled] == [["a", "movie", "<unk>", "a", "film"],
                                                      ["the", "good", "the", "bad"]]
    assert ds.info["n_unlabelled"] == 2
    assert len(imdb.load_imdb(cfg_for(tarball, "vat=1", "eps=1", "unlabelled=1")).unlabelled) == 1
    # The second load reads the cache: no review is read again.
    monkeypatch.setattr(imdb, "read_reviews", lambda *a, **k: pytest.fail("unsup cache not used"))
    again = imdb.load_imdb(cfg_for(tarball, "vat=1", "eps=1", "unlabelled=5"))
    assert again.unlabelled == ds.unlabelled
    filtered = imdb.load_imdb(cfg_for(tarball, "vat=1", "eps=1", "unlabelled=5", "maxlen=5"))
    assert [len(s) for s in filtered.unlabelled] == [4]

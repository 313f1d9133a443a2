"""word2vec loading and alignment (lstm_adv.data.embeddings) on tiny files written with gensim."""

import gzip
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors

from lstm_adv.data import embeddings
from lstm_adv.data.embeddings import load_word2vec
from lstm_adv.common.errors import UserError
from conftest import HANG_GUARD

REPO = Path(__file__).resolve().parents[1]
DIM = 4
KEYS = ["movie", "Good", "BAD", "the", "film", "Paris"]
WORDS = ["<pad>", "<unk>", "the", "movie", "good", "bad", "paris", "zebra"]


def vectors():
    return np.arange(len(KEYS) * DIM, dtype=np.float32).reshape(len(KEYS), DIM) + 1.0


def write_vectors(path, binary, keys=KEYS, vecs=None):
    kv = KeyedVectors(vector_size=DIM)
    kv.add_vectors(keys, vectors() if vecs is None else vecs)
    kv.save_word2vec_format(str(path), binary=binary)
    return Path(path)


def w_init(n=len(WORDS), dim=DIM):
    return np.full((n, dim), -7.0, dtype=np.float32)


@pytest.mark.parametrize("name,binary", [("v.bin", True), ("v.txt", False), ("v.bin.gz", True)])
def test_alignment_exact_and_case(tmp_path, name, binary):
    path = write_vectors(tmp_path / name, binary)
    W, info = load_word2vec(path, WORDS, w_init())
    vec = dict(zip(KEYS, vectors()))
    assert W.dtype == np.float32 and W.shape == (len(WORDS), DIM)
    np.testing.assert_allclose(W[2], vec["the"])  # exact
    np.testing.assert_allclose(W[3], vec["movie"])
    np.testing.assert_allclose(W[4], vec["Good"])  # capitalised
    np.testing.assert_allclose(W[5], vec["BAD"])  # upper case
    np.testing.assert_allclose(W[6], vec["Paris"])
    for i in (0, 1, 7):  # padding, UNK and the miss keep the initialisation
        np.testing.assert_array_equal(W[i], -7.0)
    assert info["w2v_binary"] == binary and info["w2v_dim"] == DIM and info["w2v_vectors"] == len(KEYS)
    assert (info["found_exact"], info["found_case"], info["missing"]) == (2, 3, 1)
    assert info["coverage"] == pytest.approx(5 / 6) and info["missing_examples"] == ["zebra"]


def test_exact_match_wins_over_case_variant(tmp_path):
    vecs = np.stack([np.full(DIM, 1.0), np.full(DIM, 2.0)]).astype(np.float32)
    path = write_vectors(tmp_path / "v.txt", False, keys=["Good", "good"], vecs=vecs)
    W, info = load_word2vec(path, ["<pad>", "<unk>", "good"], w_init(3))
    np.testing.assert_array_equal(W[2], 2.0)
    assert info["found_exact"] == 1 and info["found_case"] == 0


def test_format_sniffed_without_telling_extension(tmp_path):
    for binary in (True, False):
        path = write_vectors(tmp_path / f"vectors{int(binary)}", binary)
        assert embeddings.sniff_word2vec(path) == (binary, len(KEYS), DIM)
        W, info = load_word2vec(path, WORDS, w_init())
        assert info["w2v_binary"] == binary and info["found_exact"] == 2


def test_limit_reads_only_the_first_vectors(tmp_path):
    path = write_vectors(tmp_path / "v.bin", True)
    W, info = load_word2vec(path, WORDS, w_init(), limit=2)  # "movie" and "Good" only
    assert info["w2v_vectors"] == 2 and (info["found_exact"], info["found_case"]) == (1, 1)
    np.testing.assert_array_equal(W[2], -7.0)


def test_dimension_mismatch(tmp_path):
    path = write_vectors(tmp_path / "v.bin", True)
    with pytest.raises(UserError) as err:
        load_word2vec(path, WORDS, w_init(dim=300))
    msg = str(err.value)
    assert "wdim=300" in msg and "use wdim=4" in msg and "4-dimensional" in msg


def test_not_word2vec(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("this is not\na word2vec file\n")
    with pytest.raises(UserError, match="not a word2vec file"):
        load_word2vec(junk, WORDS, w_init())
    noise = tmp_path / "noise.bin"
    noise.write_bytes(np.random.default_rng(0).bytes(500))   # fixed noise, not os.urandom: the same every run
    with pytest.raises(UserError, match="not a word2vec file"):
        load_word2vec(noise, WORDS, w_init())
    # Noise after gzip's magic and header (deflate, no flags): the decompressor's own error.
    noise.write_bytes(b"\x1f\x8b\x08\x00" + bytes(6) + b"\xff" * 100)
    with pytest.raises(UserError, match="not a word2vec file"):
        load_word2vec(noise, WORDS, w_init())
    # A right header with a body that is not vectors.
    bad = tmp_path / "bad.txt"
    bad.write_text(f"2 {DIM}\nmovie 1 2 3 4\nfilm one two\n")
    with pytest.raises(UserError, match="could not be read"):
        load_word2vec(bad, WORDS, w_init())
    # A binary file cut short.
    full = write_vectors(tmp_path / "full.bin", True).read_bytes()
    cut = tmp_path / "cut.bin"
    cut.write_bytes(full[: len(full) // 2])
    with pytest.raises(UserError, match="could not be read"):
        load_word2vec(cut, WORDS, w_init())


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_word2vec(tmp_path / "GoogleNews.bin.gz", WORDS, w_init())


def test_missing_rows_uniform_and_rescaling_to_a_std(tmp_path):
    # preset=authors: words the vectors lack (and UNK) drawn from U(-0.25, 0.25), padding 0;
    # the vectors read rescaled to a per-coordinate std, the drawn rows left as drawn.
    path = write_vectors(tmp_path / "v.txt", False)
    found = [2, 3, 4, 5, 6]                                   # the, movie, good, bad, paris
    draw = np.random.default_rng(5).uniform(-0.25, 0.25, size=(len(WORDS), DIM)).astype(np.float32)
    W, info = load_word2vec(path, WORDS, w_init(), missing="uniform", rng=np.random.default_rng(5))
    np.testing.assert_array_equal(W[0], 0.0)
    np.testing.assert_array_equal(W[[1, 7]], draw[[1, 7]])   # UNK and "zebra": the draw, not W_init's -7
    vec = dict(zip(KEYS, vectors()))
    file_rows = np.stack([vec[k] for k in ("the", "movie", "Good", "BAD", "Paris")])
    np.testing.assert_array_equal(W[found], file_rows)      # std=0: as in the file
    assert info["missing_init"] == "uniform" and "scaled_coord_std" not in info

    W2, info2 = load_word2vec(path, WORDS, w_init(), missing="uniform", std=0.144, rng=np.random.default_rng(5))
    assert W2.dtype == np.float32
    assert float(W2[found].std()) == pytest.approx(0.144, rel=1e-5)
    np.testing.assert_allclose(W2[found], file_rows * (0.144 / file_rows.std()), rtol=1e-6)
    np.testing.assert_array_equal(W2[[0, 1, 7]], W[[0, 1, 7]])   # only the rows read are rescaled
    assert info2["file_coord_std"] == pytest.approx(file_rows.std(), abs=1e-5)
    assert info2["scaled_coord_std"] == pytest.approx(0.144) and info2["w2v_std_target"] == 0.144
    with pytest.raises(ValueError, match="needs rng"):
        load_word2vec(path, WORDS, w_init(), missing="uniform")


def test_preset_authors_starts_from_rescaled_vectors_and_uniform_missing_rows(tmp_path):
    # The training command's initialisation (train.initial_params) under preset=authors, on the
    # toy corpus with a tiny word2vec file for some of its words: the preset's w2v_missing and
    # w2v_std reach load_word2vec, with the run's seeded generator for the drawn rows.
    from lstm_adv import train
    from lstm_adv.common.utils import make_rng
    from lstm_adv.config import parse_args
    from lstm_adv.data import load_dataset

    cfg = parse_args(["data=toy", "preset=authors", "wdim=4", f"w2v_path={tmp_path / 'v.txt'}", "seed=3"])
    assert (cfg.wemb_init, cfg.w2v_missing, cfg.w2v_std) == ("word2vec", "uniform", 0.144)
    data = load_dataset(cfg)
    n_words = min(cfg.n_words, len(data.words))
    keys = list(data.words[2:12])                         # ten toy words; the others are missing
    vecs = np.random.default_rng(0).normal(3.0, 2.0, size=(len(keys), DIM)).astype(np.float32)
    write_vectors(tmp_path / "v.txt", False, keys=keys, vecs=vecs)
    params, info = train.initial_params(cfg, n_words, data)
    W = params["Wemb"]
    assert W.shape == (n_words, 4) and W.dtype == np.dtype(cfg.floatX)
    assert float(W[2:12].std()) == pytest.approx(0.144, rel=1e-5)
    np.testing.assert_allclose(W[2:12], vecs * (0.144 / vecs.std()), rtol=1e-5)
    draw = make_rng(3, "w2v_missing").uniform(-0.25, 0.25, size=(n_words, 4)).astype(W.dtype)
    np.testing.assert_array_equal(W[12:], draw[12:])
    np.testing.assert_array_equal(W[0], 0.0)
    assert (info["found_exact"], info["missing"]) == (10, n_words - 12)


def test_gzipped_text_by_magic(tmp_path):
    plain = write_vectors(tmp_path / "v.txt", False)
    packed = tmp_path / "vectors.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    W, info = load_word2vec(packed, WORDS, w_init())
    assert not info["w2v_binary"] and info["found_exact"] == 2


# --- python -m lstm_adv.embeddings train ----------------------------------------------------

def tiny_tarball(path):
    texts = {
        "train/pos": ["the movie was good", "a good film , really good", "good acting and a good plot"],
        "train/neg": ["the movie was bad", "a bad film , really bad", "bad acting and a bad plot"],
        "test/pos": ["good movie"],
        "test/neg": ["bad movie"],
        "train/unsup": ["the film was fine", "the movie and the film", "a plot , a movie"],
    }
    with tarfile.open(path, "w:gz") as tar:
        for folder, reviews in texts.items():
            for i, text in enumerate(reviews):
                data = text.encode()
                info = tarfile.TarInfo(f"aclImdb/{folder}/{i}_{0 if 'unsup' in folder else 7}.txt")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def test_train_cli_writes_loadable_vectors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LSTM_ADV_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LSTM_ADV_OFFLINE", "1")
    src = tiny_tarball(tmp_path / "tiny.tar.gz")
    out = tmp_path / "w2v" / "imdb.bin"
    args = ["train", f"data_path={src}", f"out={out}", "dim=8", "epochs=1", "min_count=1", "workers=1", "progress=0"]
    assert embeddings.main(args) == 0
    assert str(out) in capsys.readouterr().out
    kv = KeyedVectors.load_word2vec_format(str(out), binary=True)
    assert kv.vector_size == 8 and "fine" in kv.key_to_index  # "fine" occurs only in train/unsup
    assert "," in kv.key_to_index  # tokenised as the classifier's corpus
    assert [p.name for p in out.parent.iterdir()] == ["imdb.bin"]  # no temp file left behind
    W, info = load_word2vec(out, ["<pad>", "<unk>", "good", "movie"], np.zeros((4, 8), np.float32))
    assert info["found_exact"] == 2

    assert embeddings.main([a for a in args if not a.startswith("out=")] + ["unsup=0", f"out={tmp_path / 'b.txt'}"]) == 0
    kv = KeyedVectors.load_word2vec_format(str(tmp_path / "b.txt"), binary=False)
    assert "fine" not in kv.key_to_index


def test_train_cli_errors_are_one_line(tmp_path):
    env = dict(os.environ, LSTM_ADV_CACHE=str(tmp_path / "cache"), LSTM_ADV_OFFLINE="1")
    env.pop("LSTM_ADV_DATA", None)
    for args in (["train", f"data_path={tmp_path / 'missing.tar.gz'}"], ["train", "dim=zero"], ["fit"]):
        proc = subprocess.run([sys.executable, "-m", "lstm_adv.embeddings", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=HANG_GUARD)
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr

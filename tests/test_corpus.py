"""A user's corpus (``data=PATH``, lstm_adv.data.corpus): CSV, TSV, JSONL and class folders, K classes.

Every corpus is made here: a small 3-class one whose label is which group of words a text holds.
"""

import csv
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY, assert_one_line_error, load_npz, merge, read_json, run_cli
from lstm_adv.config import parse_args
from lstm_adv.common.errors import UserError
from lstm_adv.data import corpus, load_dataset

REPO = Path(__file__).resolve().parents[1]

CLASS_WORDS = {"happy": ["good", "great", "fun"], "sad": ["bad", "awful", "dull"], "meh": ["okay", "average", "fine"]}
FILLER = "the a movie film plot it was is this and".split()


def make_rows(n=90, n_test=30, seed=0):
    """``[(text, label, split)]``: ``n`` train and ``n_test`` test texts of 3 classes, sorted by split
    and class, so a class-folder tree (read in that order) holds the same texts in the same order."""
    rng = random.Random(seed)
    rows = []
    for split, count in (("train", n), ("test", n_test)):
        for i in range(count):
            label = sorted(CLASS_WORDS)[i % 3]
            toks = [rng.choice(FILLER) for _ in range(rng.randint(3, 9))]
            for _ in range(2):
                toks.insert(rng.randint(0, len(toks)), rng.choice(CLASS_WORDS[label]))
            rows.append((" ".join(toks).capitalize() + ".", label, split))
    order = {"train": 0, "test": 1}
    return sorted(rows, key=lambda r: (order[r[2]], r[1]))


def write_csv(path, rows, delimiter=",", split=True, header=("text", "label")):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(list(header) + (["split"] if split else []))
        for text, label, sp in rows:
            w.writerow([text, label] + ([sp] if split else []))
    return Path(path)


def write_jsonl(path, rows, split=True):
    with open(path, "w", encoding="utf-8") as fh:
        for text, label, sp in rows:
            fh.write(json.dumps({"text": text, "label": label, **({"split": sp} if split else {})}) + "\n")
    return Path(path)


def write_folder(root, rows):
    """``root/SPLIT/CLASS/N.txt``, N counting within the class folder in row order."""
    root = Path(root)
    seen = {}
    for text, label, sp in rows:
        n = seen.get((sp, label), 0)
        seen[(sp, label)] = n + 1
        (root / sp / label).mkdir(parents=True, exist_ok=True)
        (root / sp / label / f"{n}.txt").write_text(text, encoding="utf-8")
    return root


WRITERS = {"csv": lambda d, rows: write_csv(d / "c.csv", rows),
           "tsv": lambda d, rows: write_csv(d / "c.tsv", rows, delimiter="\t"),
           "jsonl": lambda d, rows: write_jsonl(d / "c.jsonl", rows),
           "folder": lambda d, rows: write_folder(d / "corpus", rows)}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private cache; no real data; downloads forbidden."""
    monkeypatch.setenv("LSTM_ADV_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LSTM_ADV_DATA", raising=False)
    monkeypatch.setenv("LSTM_ADV_OFFLINE", "1")


def load(path, *extra):
    return load_dataset(parse_args(merge([f"data={path}", "progress=0", "maxlen=0"], list(extra))))


def test_an_unwritable_cache_is_refused_before_reading_the_corpus(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "c.csv", make_rows())
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("LSTM_ADV_CACHE", str(tmp_path / "afile" / "cache"))
    monkeypatch.setattr(corpus, "build_cache", lambda *a, **k: pytest.fail("read before checking the cache folder"))
    with pytest.raises(UserError, match=r"^LSTM_ADV_CACHE=.*afile/cache: .*afile is a file"):
        load(path)


def as_tuple(ds):
    return (ds.words, [(s.seqs, s.labels.tolist()) for s in (ds.train, ds.valid, ds.test)])


# --- reading the formats ---------------------------------------------------------------------

def test_the_four_formats_give_one_dataset(tmp_path):
    rows = make_rows()
    sets = {fmt: load(write(tmp_path, rows)) for fmt, write in WRITERS.items()}
    first = as_tuple(sets["csv"])
    for fmt, ds in sets.items():
        assert as_tuple(ds) == first, fmt
        assert ds.info["n_classes"] == 3 and ds.info["label_names"] == ["happy", "meh", "sad"]
        assert ds.info["test_split"] == "given" and ds.info["n_test"] == 30
    ds = sets["csv"]
    # The ids follow the sorted names; the dictionary comes from the train split, Moses-lowercased.
    happy = [i for i, y in enumerate(ds.train.labels) if y == 0]
    assert all({"good", "great", "fun"} & {ds.words[w] for w in ds.train.seqs[i]} for i in happy)
    assert "The" not in ds.words and "the" in ds.words and "." in ds.words
    assert ds.info["train_class_fractions"] == pytest.approx([1 / 3] * 3, abs=0.1)


def test_integer_labels_sort_numerically(tmp_path):
    rows = [(t, {"happy": "10", "meh": "2", "sad": "-1"}[y], s) for t, y, s in make_rows()]
    ds = load(write_csv(tmp_path / "c.csv", rows))
    assert ds.info["label_names"] == ["-1", "2", "10"] and ds.info["label_kind"] == "int"
    texts = {tuple(s) for s, y in zip(ds.test.seqs, ds.test.labels) if y == 2}
    assert texts and all(any(ds.words[w] in CLASS_WORDS["happy"] for w in s) for s in texts)


def test_held_out_test_split_is_the_same_for_every_seed(tmp_path):
    path = write_csv(tmp_path / "c.csv", make_rows(), split=False)
    a, b = load(path, "seed=1"), load(path, "seed=2")
    assert a.test.seqs == b.test.seqs and a.info["n_test"] == 24   # 0.2 of 120
    assert a.valid.seqs != b.valid.seqs                             # the validation draw follows the seed
    assert load(path, "test_portion=0.5").info["n_test"] == 60
    assert a.info["test_split"].startswith("test_portion=0.2")


def test_a_valid_split_replaces_the_draw(tmp_path):
    rows = [(t, y, "valid" if s == "train" and i % 10 == 0 else s) for i, (t, y, s) in enumerate(make_rows())]
    ds = load(write_csv(tmp_path / "c.csv", rows))
    assert ds.info["n_valid"] == 9 and ds.info["n_train"] == 81


def test_empty_texts_are_skipped_and_counted(tmp_path):
    rows = make_rows()
    rows[3] = ("   ", rows[3][1], "train")
    ds = load(write_csv(tmp_path / "c.csv", rows))
    assert ds.info["n_empty_skipped"] == 1 and ds.info["n_train_all"] == 89


def test_multi_line_quoted_texts_and_a_bom(tmp_path):
    rows = [(t.replace(" the ", ' "the"\n'), y, s) for t, y, s in make_rows()]
    path = write_csv(tmp_path / "c.csv", rows)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert sum(t.count("\n") for t, _, _ in rows) > 10
    assert as_tuple(load(path)) == as_tuple(load(write_jsonl(tmp_path / "d.jsonl", rows)))


def test_cache_is_read_back_and_rebuilt_when_the_content_changes(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "c.csv", make_rows())
    first = load(path)
    assert first.info["built"]
    monkeypatch.setattr(corpus, "tokenize_texts", lambda *a, **k: pytest.fail("tokenised again"))
    again = load(path)
    assert not again.info["built"] and as_tuple(again) == as_tuple(first)
    write_csv(path, make_rows(seed=1))
    with pytest.raises(pytest.fail.Exception):
        load(path)   # another content: another cache, tokenised


def test_a_stream_of_small_chunks_gives_the_same_corpus(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "c.csv", make_rows())
    whole = load(path, "text_col=text")
    monkeypatch.setattr(corpus, "CHUNK_ROWS", 7)
    monkeypatch.setenv("LSTM_ADV_CACHE", str(tmp_path / "cache2"))
    assert as_tuple(load(path)) == as_tuple(whole)


def test_other_column_names(tmp_path):
    rows = make_rows()
    path = write_csv(tmp_path / "c.csv", rows, header=("review", "stars"))
    assert as_tuple(load(path, "text_col=review", "label_col=stars")) == as_tuple(load(write_csv(tmp_path / "d.csv", rows)))


def test_aclimdb_folder_is_data_imdb(tmp_path):
    from test_imdb import write_tree

    tree = write_tree(tmp_path / "src")
    a = load(tree, "n_words=20")
    b = load_dataset(parse_args(["data=imdb", f"data_path={tree}", "progress=0", "maxlen=0", "n_words=20"]))
    assert as_tuple(a) == as_tuple(b) and a.info["label_names"] == ["negative", "positive"]


# --- the model: K outputs, two classes as before ---------------------------------------------------

def test_model_has_k_outputs():
    from lstm_adv.core.model import expected_shapes, init_params

    cfg = parse_args(["data=toy", "wdim=4", "hdim=5"])
    p3 = init_params(cfg, 10, n_classes=3)
    assert p3["U"].shape == (5, 3) and p3["b"].shape == (3,)
    assert expected_shapes(cfg, 10, 14)["U"] == (5, 14)
    # U is drawn last: every other parameter is the two-class model's, bit for bit.
    p2 = init_params(cfg, 10)
    assert all(np.array_equal(p2[k], p3[k]) for k in p2 if k not in ("U", "b"))


def _params_digest(path):
    h = hashlib.sha256()
    params = load_npz(path)
    for k in sorted(params):
        h.update(k.encode())
        h.update(np.ascontiguousarray(params[k]).tobytes())
    return h.hexdigest()


#: params.npz of `test_binary_runs_are_unchanged`'s toy run (x86-64 Linux, mode C, float32): the binary
#: model bit for bit. First recorded before the classifier took K classes (commit b270db5);
#: re-recorded when mode C's LSTM became the whole-sequence Ops (their products round differently
#: from OpenBLAS's; `tests/test_kernels.py` holds them to the scan path to float rounding). OpenBLAS
#: picks its kernel by CPU (SkylakeX with AVX-512, Haswell or Zen without) unless OPENBLAS_CORETYPE
#: pins one, and the kernels round the same products differently: the same code gives da756fad... with
#: SkylakeX's. So the run pins Haswell's (`PIN_BLAS`), which every CPU with AVX2 and FMA runs: the pin
#: below came out the same on an AVX-512 machine and with the C code compiled for Haswell (-march=haswell).
PIN_BLAS = {"OPENBLAS_CORETYPE": "Haswell"}
BINARY_PIN = "8400ff29fbe5c3aa8576147b7f0515960f85f52010cfd7855106d1534756ff0b"


def _skip_unless_the_pinned_blas_runs():
    """Skip where `PIN_BLAS` cannot be had: not x86-64 Linux, no AVX2 or FMA, or a BLAS that is not an
    OpenBLAS taking OPENBLAS_CORETYPE (each library the training loads is asked, in a process as it starts)."""
    if not sys.platform.startswith("linux") or platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the pin was recorded on x86-64 Linux; float rounding elsewhere may differ")
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    if not {"avx2", "fma"} <= flags:
        pytest.skip("the pin needs OpenBLAS's Haswell kernel, and this CPU lacks AVX2 or FMA")
    code = "import json\nfrom lstm_adv.core.backend import blas_info\nprint(json.dumps(blas_info()))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **PIN_BLAS})
    assert r.returncode == 0, r.stderr[-2000:]
    libs = json.loads(r.stdout)
    if not libs or any(not lib["library"].startswith("openblas") or lib["architecture"] != "Haswell" for lib in libs):
        pytest.skip(f"the pin needs OpenBLAS's Haswell kernel; with {PIN_BLAS} the BLAS here is {libs}")


@pytest.mark.slow
def test_binary_runs_are_unchanged(tmp_path, monkeypatch):
    _skip_unless_the_pinned_blas_runs()
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)   # the cache size OpenBLAS assumes: its default
    proc = run_cli("lstm_adv.train", merge(TINY, ["max_epochs=1", "eps=0.5", f"saveto={tmp_path / 'run'}"]), REPO,
                   env=PIN_BLAS)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _params_digest(tmp_path / "run" / "params.npz") == BINARY_PIN


@pytest.mark.slow
def test_three_classes_train_end_to_end_in_every_format(tmp_path):
    """One run per format on the same 3-class corpus: the same parameters, K = 3 outputs, the names stored."""
    rows = make_rows()
    digests = {}
    for fmt, write in WRITERS.items():
        if fmt == "tsv":
            continue   # read by the CSV reader with another delimiter (test_the_four_formats_give_one_dataset)
        path = write(tmp_path, rows)
        run = tmp_path / f"run-{fmt}"
        proc = run_cli("lstm_adv.train", merge(TINY, [f"data={path}", "wemb_init=random", "eps=0.5", "attack_eps=0.1",
                                                      "attack_k=2", f"saveto={run}"]), REPO,
                       env={"LSTM_ADV_CACHE": str(tmp_path / "cache"), "LSTM_ADV_OFFLINE": "1"})
        assert proc.returncode == 0, proc.stderr[-2000:]
        params = load_npz(run / "params.npz")
        assert params["U"].shape == (8, 3) and params["b"].shape == (3,)
        record = read_json(run / "config.json")
        assert record["n_classes"] == 3 and record["data"]["label_names"] == ["happy", "meh", "sad"]
        metrics = read_json(run / "metrics.json")
        assert metrics["status"] == "ok" and 0 <= metrics["test_err"] <= 1 and "iter_sign_pred" in metrics["attacks"]
        digests[fmt] = _params_digest(run / "params.npz")
    assert len(set(digests.values())) == 1, digests


# --- bad corpora: one error line, exit 2, nothing written ---------------------------------------

GOOD = "text,label\nA good film.,pos\nA bad film.,neg\n"

#: (case, files to write {relative path: bytes}, data=, more keys, fragment of the error line)
BAD_CORPORA = [
    ("no label column, near name", {"c.csv": b"text,labels\nA good film.,pos\nbad,neg\n"}, "c.csv", "",
     "has no label column 'label'"),
    ("did you mean", {"c.csv": b"text,labels\nA good film.,pos\nbad,neg\n"}, "c.csv", "", "did you mean label_col=labels?"),
    ("no label column, no near name", {"c.csv": b"text,stars\nA good film.,1\nbad,2\n"}, "c.csv", "",
     "name the label column with label_col="),
    ("no text column", {"c.csv": b"review,label\nA good film.,pos\nbad,neg\n"}, "c.csv", "", "text_col="),
    ("label_col= names no column", {"c.csv": GOOD.encode()}, "c.csv", "label_col=stars", "no label column 'stars'"),
    ("no label field (JSONL)", {"c.jsonl": b'{"text": "good", "lable": "pos"}\n'}, "c.jsonl", "",
     "did you mean label_col=lable?"),
    ("one class only", {"c.csv": b"text,label\nA good film.,pos\nAnother.,pos\n"}, "c.csv", "", "one class only ('pos')"),
    ("all texts empty", {"c.csv": b"text,label\n,pos\n  ,neg\n"}, "c.csv", "", "all 2 texts are empty"),
    ("undecodable bytes", {"c.csv": b"text,label\nA good film.,pos\nA b\xffd film.,neg\n"}, "c.csv", "",
     "line 3 is not valid UTF-8"),
    ("undecodable bytes (folder)", {"d/train/pos/1.txt": b"good", "d/train/neg/1.txt": b"ok\nb\xe9d"}, "d", "",
     "1.txt line 2 is not valid UTF-8"),
    ("ragged row", {"c.csv": b"text,label\nA good film.,pos\nA bad, bad film.,neg\n"}, "c.csv", "",
     "line 3 has 3 fields but the header has 2"),
    ("ragged row (TSV)", {"c.tsv": b"text\tlabel\nA good film.\tpos\nbad\n"}, "c.tsv", "",
     "line 3 has 1 fields but the header has 2"),
    ("numbers and names", {"c.csv": b"text,label\nA good film.,1\nA bad film.,neg\nMeh.,0\n"}, "c.csv", "",
     "mixes numbers and names ('1' at"),
    ("folder without class folders", {"d/train/1.txt": b"good", "d/test/2.txt": b"bad"}, "d", "",
     "train/ holds no class folders"),
    ("folder without train/", {"d/other/pos/1.txt": b"good"}, "d", "", "has no train/ folder"),
    ("empty file", {"c.csv": b""}, "c.csv", "", "is empty; a CSV corpus needs a header row"),
    ("bad JSON line", {"c.jsonl": b'{"text": "good", "label": "pos"}\n{"text": "bad", \n'}, "c.jsonl", "",
     "line 2 is not valid JSON"),
    ("JSON label neither string nor integer", {"c.jsonl": b'{"text": "good", "label": 0.5}\n'}, "c.jsonl", "",
     "neither a string nor an integer"),
    ("bad split value", {"c.csv": b"text,label,split\nA good film.,pos,train\nA bad film.,neg,dev\n"}, "c.csv", "",
     "split 'dev' is not one of train, test, valid, unlabelled"),
    ("empty label", {"c.csv": b"text,label\nA good film.,pos\nA bad film.,\n"}, "c.csv", "", "line 3: the label"),
    ("no training texts", {"c.csv": b"text,label,split\nA good film.,pos,test\nbad,neg,test\n"}, "c.csv", "",
     "has no training texts"),
    ("unknown extension", {"c.xlsx": b"PK"}, "c.xlsx", "", "not a CSV (.csv), TSV (.tsv), JSONL (.jsonl) file"),
    ("a typo of imdb", {}, "imbd", "", "did you mean data=imdb?"),
    ("unlabelled=N without unlabelled texts", {"c.csv": GOOD.encode()}, "c.csv", "vat=1 eps=1 unlabelled=5",
     "has no unlabelled texts"),
]


@pytest.mark.parametrize("case, files, data, extra, fragment", BAD_CORPORA, ids=[c[0] for c in BAD_CORPORA])
def test_bad_corpus_is_one_line_exit_2_and_writes_nothing(case, files, data, extra, fragment, tmp_path, monkeypatch,
                                                           capsys):
    from lstm_adv import train
    from lstm_adv.common.lifecycle import cli_entry

    for rel, content in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(content)
    monkeypatch.chdir(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    status = cli_entry(train.main)([f"data={data}", "saveto=run", "progress=0", *extra.split()])
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert status == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert fragment in errors[0], errors[0]
    assert sorted(p for p in tmp_path.rglob("*")) == before   # no run directory, no cache


def test_bad_corpus_through_python_m(tmp_path):
    (tmp_path / "c.csv").write_bytes(b"text,label\nA good film.,1\nA bad film.,neg\n")
    proc = run_cli("lstm_adv.train", ["data=c.csv", "saveto=run"], tmp_path,
                   env={"LSTM_ADV_CACHE": str(tmp_path / "cache")})
    assert_one_line_error(proc, "mixes numbers and names")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv"]


# --- IMDB exported to CSV / JSONL is IMDB ---------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_imdb_exported_is_read_as_imdb(fmt, tmp_path):
    from lstm_adv.data.imdb import data_main
    from test_imdb import write_tree

    tree = write_tree(tmp_path / "src")
    out = tmp_path / f"imdb.{fmt}"
    assert data_main(["export", f"format={fmt}", f"data_path={tree}", f"out={out}", "progress=0"]) == 0
    keys = ["progress=0", "maxlen=8", "n_words=20", "valid_portion=0.3"]
    exported = load(out, *keys)
    imdb = load_dataset(parse_args(["data=imdb", f"data_path={tree}", *keys]))
    assert as_tuple(exported) == as_tuple(imdb)
    assert exported.info["label_names"] == imdb.info["label_names"] == ["negative", "positive"]


@pytest.mark.slow
def test_a_run_on_exported_imdb_is_the_imdb_run(tmp_path):
    """The same parameters, bit for bit, from data=imdb and from its CSV export (tiny aclImdb fixture)."""
    from test_imdb import write_tree

    tree = write_tree(tmp_path / "src")
    env = {"LSTM_ADV_CACHE": str(tmp_path / "cache"), "LSTM_ADV_OFFLINE": "1"}
    proc = run_cli("lstm_adv.data", ["export", "format=csv", f"data_path={tree}", f"out={tmp_path / 'imdb.csv'}",
                                     "progress=0"], REPO, env=env)
    assert proc.returncode == 0, proc.stderr
    keys = merge(TINY, ["wemb_init=random", "maxlen=0", "valid_portion=0.2", "validFreq=2", "max_epochs=3", "eps=0.5"])
    digests = []
    for data in ([f"data_path={tree}", "data=imdb"], [f"data={tmp_path / 'imdb.csv'}"]):
        run = tmp_path / f"run{len(digests)}"
        proc = run_cli("lstm_adv.train", merge(keys, data, [f"saveto={run}"]), REPO, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        digests.append(_params_digest(run / "params.npz"))
    assert digests[0] == digests[1]


def test_vocab_order_random_keeps_a_seeded_random_choice_of_words():
    """vocab_order=random (the authors' dict-order vocabulary): the same texts, the words renumbered
    before the n_words cut, so the model keeps arbitrary word types; ids, words and counts agree."""
    from lstm_adv.config import parse_args
    from lstm_adv.data.base import Split, build_dictionary, encode, finalize, finalize_unlabelled

    texts = [f"w{i % 37} w{(i * 7) % 53} w{(i * 3) % 11} x{i % 5}".split() for i in range(120)]
    words, counts = build_dictionary(texts)
    word_to_id = {w: i for i, w in enumerate(words)}
    seqs = encode(texts, word_to_id)
    labels = np.array([i % 2 for i in range(120)])
    base = ["n_words=12", "maxlen=0", "valid_portion=0.1"]

    def data(*extra):
        cfg = parse_args(base + list(extra))
        d = finalize(Split(seqs[:100], labels[:100]), Split(seqs[100:], labels[100:]), words, cfg,
                     {"word_counts": counts})
        return d, finalize_unlabelled(seqs[:5], parse_args(base + list(extra) + ["vat=1", "unlabelled=5"]), len(words))

    freq, _ = data()
    rnd, unl = data("vocab_order=random", "seed=1")
    other, _ = data("vocab_order=random", "seed=2")
    assert freq.words == words and rnd.words[:2] == words[:2] and sorted(rnd.words) == sorted(words)
    assert rnd.words[2:12] != words[2:12] and rnd.words[2:12] != other.words[2:12]   # seeded, not frequency
    assert rnd.info["word_counts"] == [counts[word_to_id[w]] for w in rnd.words]
    # Each kept id still names its text's word; every other word sits on UNK.
    texts_by_tokens = {tuple(sorted(t)) for t in texts}
    for s in rnd.train.seqs + rnd.test.seqs:
        decoded = [rnd.words[i] for i in s]
        assert all(i < 12 for i in s)
        assert any(set(w for w in decoded if w != "<unk>") <= set(t) for t in texts_by_tokens)
    kept = set(rnd.words[2:12])
    assert [[rnd.words[i] if i != 1 else None for i in s] for s in unl] == \
        [[t if t in kept else None for t in text] for text in texts[:5]]


def test_imdb_and_a_corpus_rank_their_dictionary_by_one_rule():
    # Ties everywhere (counts 1-3 over 200 words): build_dictionary (IMDB, toy) and the corpus
    # cache's ranking give the same order, both from `dictionary_order`.
    from lstm_adv.data.base import build_dictionary, dictionary_order

    rng = random.Random(4)
    vocab = [f"w{i}" for i in range(200)]
    texts = [[rng.choice(vocab) for _ in range(rng.randint(1, 4))] for _ in range(150)]
    words, counts = build_dictionary(texts)
    ids = {w: i for i, w in enumerate(vocab)}
    tokens = np.array([ids[t] for text in texts for t in text], dtype=np.int32)
    offsets = np.cumsum([0] + [len(t) for t in texts])
    ranked, ranked_counts, remap = corpus._rank_dictionary(vocab, tokens, range(len(texts)), offsets)
    assert (ranked, ranked_counts) == (words, counts)
    assert dictionary_order(["b", "a", "c"], [1, 1, 2]) == [2, 1, 0]   # frequency first, then the word
    assert remap[ids[words[2]]] == 2

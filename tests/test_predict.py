"""Issue 44: a user's corpus learns with one word, a run says when it never left the plateau, and
a trained run classifies raw texts (``python -m lstm_adv.predict``, ``lstm_adv.load_run``)."""

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, merge, read_json, run_cli

from lstm_adv.common.plateau import PLATEAU_MARGIN, plateau_report
from lstm_adv.config import defaults_for, parse_args, valid_every

REPO = Path(__file__).resolve().parents[1]

#: three classes told apart by one word each among shared filler words
CLASSES = {"alpha": "sunny", "beta": "rainy", "gamma": "snowy"}
FILLER = ["the", "a", "day", "was", "very", "and", "it", "felt", "quite", "so"]
SMALL = ["wdim=8", "hdim=8", "max_epochs=3", "attack_eps=", "progress=0", "mode=C"]


def write_corpus(path, n=150, seed=0):
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for _ in range(n):
            label = list(CLASSES)[rng.integers(3)]
            words = list(rng.choice(FILLER, size=int(rng.integers(3, 9)))) + [CLASSES[label].capitalize() + "!"]
            rng.shuffle(words)
            w.writerow([" ".join(words), label])
    return path


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    """A finished run on a 3-class CSV with the defaults of data=PATH (validFreq=0: once per epoch)."""
    root = tmp_path_factory.mktemp("corpus")
    data = write_corpus(root / "weather.csv")
    run = root / "run"
    proc = run_cli("lstm_adv.train", merge(SMALL, [f"data={data}", f"saveto={run}"]), REPO,
                   env={"LSTM_ADV_CACHE": str(root / "cache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, data, run, proc


# ---- preset=miyato and validFreq for data=PATH ---------------------------------------------------
def test_preset_miyato_is_the_l2_recipe_and_keys_after_it_win():
    cfg = parse_args(["data=my.csv", "preset=miyato"])
    assert (cfg.adv_norm, cfg.emb_norm, cfg.adv_emb_grad, cfg.eps, cfg.max_epochs) == ("l2", 1, 1, 3.0, 30)
    assert cfg.adversarial and cfg.validFreq == 0
    assert parse_args(["preset=miyato", "eps=1"]).eps == 1.0
    assert "preset" in cfg.overrides() and "eps" not in cfg.overrides()   # the run's name: preset=miyato


def test_a_corpus_validates_once_per_epoch_unless_told_and_imdb_keeps_370():
    assert defaults_for("my.csv").validFreq == 0 and defaults_for("imdb").validFreq == 370
    assert parse_args(["data=my.csv", "validFreq=15"]).validFreq == 15
    cfg = parse_args(["data=my.csv"])
    assert valid_every(cfg, 228) == 15 and valid_every(cfg, 1200) == 75 and valid_every(cfg, 5) == 1
    assert valid_every(parse_args(["data=imdb"]), 1200) == 370


@pytest.mark.slow
def test_a_corpus_run_records_the_resolved_validFreq_and_validates_every_epoch(corpus_run):
    root, data, run, proc = corpus_run
    saved = read_json(run / "config.json")
    n_train = saved["data"]["n_train"]
    assert saved["config"]["validFreq"] == 0
    assert saved["resolved"]["validFreq"] == math.ceil(n_train / 16)
    epochs = [int(r["epoch"]) for r in csv.DictReader(open(run / "history.csv"))]
    assert epochs == [0, 1, 2]
    assert f"one validation per epoch ({math.ceil(n_train / 16)} updates)" in (run / "train.log").read_text()


# ---- the plateau, said by the run -----------------------------------------------------------------
def test_plateau_report_says_when_a_run_left_and_what_to_try_when_it_never_did():
    info = {"train_class_fractions": [0.5, 0.3, 0.2]}   # plateau error 0.5
    stuck = [{"epoch": e, "train_err": 0.5 - PLATEAU_MARGIN} for e in range(4)]
    fields, note = plateau_report(stuck, info)
    assert fields == {"left_plateau": False, "left_plateau_epoch": None, "plateau_err": 0.5}
    assert "never left the one-class plateau" in note and "preset=miyato" in note
    fields, note = plateau_report(stuck + [{"epoch": 4, "train_err": 0.3}], info)
    assert fields["left_plateau"] and fields["left_plateau_epoch"] == 4 and note == ""


@pytest.mark.slow
def test_a_finished_run_reports_its_plateau_in_metrics_and_its_last_line(corpus_run):
    root, data, run, proc = corpus_run
    metrics = read_json(run / "metrics.json")
    history = [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(open(run / "history.csv"))]
    fields, note = plateau_report(history, read_json(run / "config.json")["data"])
    assert {k: metrics[k] for k in fields} == fields
    last = (run / "train.log").read_text().strip().splitlines()[-1]
    assert last.startswith("done:") and (("never left the one-class plateau" in last) == (not fields["left_plateau"]))


# ---- text in, prediction out ----------------------------------------------------------------------
@pytest.mark.slow
def test_load_run_tokenises_as_training_did_and_reproduces_the_test_error(corpus_run, monkeypatch):
    import lstm_adv
    from lstm_adv.data import load_dataset

    root, data, run, proc = corpus_run
    clf = lstm_adv.load_run(run)
    assert clf.labels == ["alpha", "beta", "gamma"]
    rows = list(csv.DictReader(open(data, encoding="utf-8")))
    monkeypatch.setenv("LSTM_ADV_CACHE", str(root / "cache"))
    ds = load_dataset(parse_args([f"data={data}"] + SMALL))
    # The raw texts give the ids the training split holds (Moses, lowercase: "Sunny!" -> sunny !).
    assert {tuple(s) for s in ds.test.seqs} <= {tuple(clf.ids(r["text"])) for r in rows}
    assert clf.ids("zzz unseen sunny") == [1, 1, clf.ids("sunny")[0]]
    test_texts = {tuple(clf.ids(r["text"])): r for r in rows}
    texts = [test_texts[tuple(s)]["text"] for s in ds.test.seqs]
    proba = clf.predict_proba(texts)
    assert proba.shape == (len(texts), 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    wrong = np.mean([p != test_texts[tuple(s)]["label"] for p, s in zip(clf.predict(texts), ds.test.seqs)])
    assert wrong == pytest.approx(read_json(run / "metrics.json")["test_err"])


@pytest.mark.slow
def test_predict_command_writes_label_and_probabilities_per_text(corpus_run, tmp_path):
    root, data, run, _ = corpus_run
    texts = tmp_path / "texts.txt"
    texts.write_text("a sunny day\n\nSNOWY, it was!\n", encoding="utf-8")
    out = tmp_path / "pred.csv"
    proc = run_cli("lstm_adv.predict", [f"model={run}", f"input={texts}", f"out={out}"], REPO)
    assert proc.returncode == 0, proc.stderr
    assert "1 empty line(s) or row(s) skipped" in proc.stderr
    got = list(csv.DictReader(open(out, encoding="utf-8")))
    assert [r["text"] for r in got] == ["a sunny day", "SNOWY, it was!"]
    assert list(got[0]) == ["text", "label", "p_alpha", "p_beta", "p_gamma"]
    for r in got:
        probs = [float(r[f"p_{c}"]) for c in CLASSES]
        assert r["label"] == list(CLASSES)[int(np.argmax(probs))] and abs(sum(probs) - 1) < 1e-3
    # A CSV's text column, read from standard input as plain lines it would not be: the file is named.
    proc = run_cli("lstm_adv.predict", [f"model={run}", f"input={data}"], REPO)
    assert proc.returncode == 0 and proc.stdout.splitlines()[0] == "text,label,p_alpha,p_beta,p_gamma"
    assert len(proc.stdout.splitlines()) == 151
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"body": "rainy and so", "id": 1}\n\n{"body": "a sunny day", "id": 2}\n', encoding="utf-8")
    proc = run_cli("lstm_adv.predict", [f"model={run}", f"input={jsonl}", "text_col=body"], REPO)
    assert proc.returncode == 0 and [ln.split(",")[0] for ln in proc.stdout.splitlines()[1:]] == ["rainy and so",
                                                                                                  "a sunny day"]


@pytest.mark.slow
@pytest.mark.parametrize("case, fragment", [
    ("no_run", "no such model"),
    ("empty", "holds no text"),
    ("no_column", "has no column 'body'"),
    ("no_input", "no such input file"),
    ("bad_jsonl", "line 2 is not a JSON object"),
])
def test_predict_refuses_bad_input_with_one_line(corpus_run, tmp_path, case, fragment):
    root, data, run, _ = corpus_run
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"text": "a sunny day"}\n{"text": oops}\n', encoding="utf-8")
    args = {"no_run": [f"model={tmp_path / 'nope'}", f"input={empty}"],
            "empty": [f"model={run}", f"input={empty}"],
            "no_column": [f"model={run}", f"input={data}", "text_col=body"],
            "no_input": [f"model={run}", f"input={tmp_path / 'missing.txt'}"],
            "bad_jsonl": [f"model={run}", f"input={jsonl}"]}[case]
    out = tmp_path / "pred.csv"
    proc = run_cli("lstm_adv.predict", args + [f"out={out}"], REPO)
    assert_one_line_error(proc, fragment)
    assert not out.exists()


# ---- the visualiser on a one-class model ----------------------------------------------------------
def test_the_visualiser_names_a_model_that_predicts_one_class():
    from types import SimpleNamespace

    from lstm_adv.analysis.visualize.analyse import one_class
    from lstm_adv.analysis.visualize.render import one_class_warning

    assert one_class([2, 2, 2], [0, 1, 2]) == 2
    assert one_class([0, 1, 1], [0, 1, 2]) is None    # it tells classes apart
    assert one_class([1, 1], [1, 1]) is None           # reviews of one class: nothing to tell
    run = SimpleNamespace(label_names=["alpha", "beta", "gamma"])
    line = one_class_warning({"one_class": 2, "n_reviews": 3}, run)
    assert "predicts one class (gamma) for all 3 reviews" in line and "left_plateau" in line


def test_predict_prints_one_aligned_line_per_text_on_a_terminal():
    from lstm_adv.predict import format_rows

    text = format_rows(["a very long text " * 10, "short,\nsplit"], ["pos", "neg"], np.array([[0.1, 0.9], [0.8, 0.2]]),
                       ["neg", "pos"], table=True).splitlines()
    assert len(text) == 3 and text[0].split() == ["text", "label", "p_neg", "p_pos"]
    assert text[2].startswith("short, split ") and text[1].split()[-3:] == ["pos", "0.1000", "0.9000"]
    col = text[0].index("label")   # aligned: each label under the header's
    assert text[1][col:col + 3] == "pos" and text[2][col:col + 3] == "neg"


def test_the_newcomer_corpora_are_the_ones_the_readme_describes(tmp_path):
    """experiments/newcomer_corpora.py: the README's own-data figures come from these two files."""
    script = REPO / "experiments" / "newcomer_corpora.py"
    for out in (tmp_path / "a", tmp_path / "b"):
        subprocess.run([sys.executable, str(script), str(out)], check=True, capture_output=True)
    assert (tmp_path / "a" / "small3.csv").read_bytes() == (tmp_path / "b" / "small3.csv").read_bytes()
    small = list(csv.DictReader(open(tmp_path / "a" / "small3.csv")))
    assert [sum(r["split"] == s for r in small) for s in ("train", "test")] == [300, 60]
    assert {r["label"] for r in small} == {"alpha", "beta", "gamma"}
    assert all(10 <= len(r["text"].split()) <= 32 for r in small)
    mixed = list(csv.DictReader(open(tmp_path / "a" / "mixed3.csv")))
    assert len(mixed) == 1500 and all(len(r["text"].split()) == 20 for r in mixed)
    assert all(sum(w.startswith(r["label"]) for w in r["text"].split()) == 2 for r in mixed)

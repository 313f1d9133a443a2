"""A resumed run is the run it began as: the same data (`RunDir.check_same_data`), and checkpoints
that never change what it computes (the lazy optimizer state saved as it is).

The corpora are made here: CSV files of synthetic reviews whose label is which group of words a
text holds.
"""

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY, load_npz, merge, read_json
from lstm_adv import train

GROUPS = {"pos": ["good", "great", "fun"], "neg": ["bad", "awful", "dull"]}
FILLER = "the a movie film plot it was is this and".split()


def _write_csv(path, rows):
    """``rows``: ``(text, label, split)`` tuples, written as a CSV corpus with a split column."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label", "split"])
        w.writerows(rows)
    return Path(path)


def write_corpus(path, n=200, n_test=40, seed=0, rename=None, swap=False, filler=FILLER):
    """A 2-class CSV corpus; ``rename``: label names replaced ({old: new}); ``swap``: every label
    given to the other class's texts; ``filler``: the words between the class words."""
    rng = random.Random(seed)
    names = sorted(GROUPS)
    rows = []
    for split, count in (("train", n), ("test", n_test)):
        for i in range(count):
            toks = [rng.choice(filler) for _ in range(rng.randint(3, 9))]
            toks.insert(rng.randint(0, len(toks)), rng.choice(GROUPS[names[i % 2]]))
            label = names[(i + swap) % 2]
            rows.append((" ".join(toks), (rename or {}).get(label, label), split))
    return _write_csv(path, rows)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A private cache, no download, the working directory the test's folder."""
    monkeypatch.setenv("LSTM_ADV_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LSTM_ADV_OFFLINE", "1")
    monkeypatch.delenv("LSTM_ADV_FAULT", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _snapshot(run):
    return {p.name: p.read_bytes() for p in sorted(Path(run).iterdir()) if p.is_file()}


@pytest.mark.parametrize("change, says", [
    (dict(swap=True), "its content (SHA-256"),
    (dict(filler=FILLER[:-1] + ["movies"]), "its vocabulary (other words"),
    (dict(rename={"pos": "positive"}), "its label names (['neg', 'pos'], now ['neg', 'positive'])"),
])
def test_a_resumed_run_refuses_changed_data_before_writing(isolated, monkeypatch, capsys, change, says):
    data = write_corpus(isolated / "c.csv")
    args = merge(TINY, [f"data={data}", "wemb_init=random", "eps=0.5", "saveFreq=5", "saveto=run"])
    main = train.cli_entry(train.main)
    monkeypatch.setenv("LSTM_ADV_FAULT", "int@update=7")
    assert main(args) == 130
    monkeypatch.delenv("LSTM_ADV_FAULT")
    assert "data_identity" in read_json(isolated / "run" / "config.json")
    before = _snapshot(isolated / "run")
    capsys.readouterr()

    write_corpus(data, **change)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "was trained on other data" in err[0], err
    assert says in err[0] and "resume=0" in err[0] and "saveto=" in err[0], err[0]
    assert _snapshot(isolated / "run") == before   # config.json, vocab.json, the checkpoint: as they were


def test_the_same_data_resumes_and_an_older_record_is_said(isolated, monkeypatch, capsys):
    data = write_corpus(isolated / "c.csv")
    args = merge(TINY, [f"data={data}", "wemb_init=random", "max_epochs=1", "saveto=run"])
    main = train.cli_entry(train.main)
    monkeypatch.setenv("LSTM_ADV_FAULT", "int@update=7")
    assert main(args) == 130
    monkeypatch.delenv("LSTM_ADV_FAULT")
    config = isolated / "run" / "config.json"
    record = read_json(config)
    del record["data_identity"]   # a run of a version before the record
    config.write_text(json.dumps(record))
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "resumed from the checkpoint at update 7" in out and "predates the data check" in out
    assert "data_identity" in read_json(config)


def write_zipf_corpus(path, n_train=3200, n_test=100, n_vocab=3000, seed=0):
    """A 2-class CSV corpus over a Zipf-like vocabulary of ``n_vocab`` words, as IMDB's: frequent
    words in every batch, rare ones hundreds of updates apart (a word of rank r in about 10/r of
    the texts)."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_vocab + 1)
    p /= p.sum()
    names = sorted(GROUPS)
    rows = []
    for split, count in (("train", n_train), ("test", n_test)):
        for i in range(count):
            toks = [f"w{r}" for r in rng.choice(n_vocab, size=rng.integers(6, 14), p=p)]
            toks.insert(int(rng.integers(0, len(toks))), GROUPS[names[i % 2]][int(rng.integers(0, 3))])
            rows.append((" ".join(toks), names[i % 2], split))
    return _write_csv(path, rows)


def _checkpoint(run):
    """``checkpoint.npz``'s arrays and its state, less the times (which no two runs share)."""
    arrays = load_npz(Path(run) / "checkpoint.npz")
    state = json.loads(str(arrays.pop("state_json")))
    for k in ("elapsed", "cpu_elapsed"):
        state.pop(k, None)
    return arrays, state


@pytest.mark.slow
def test_checkpoints_never_change_a_run_whose_rows_wait(isolated, monkeypatch):
    """saveFreq=1, no checkpoint until the end, and a run interrupted and resumed end with the same
    params.npz and checkpoint.npz bit for bit: the lazy Wemb rows' optimizer state is saved as it
    is (accumulators and counters), never brought up to date by a save (which would round
    rho**a * rho**b instead of rho**(a+b) for every row that waits across it)."""
    data = write_zipf_corpus(isolated / "z.csv")
    base = merge(TINY, [f"data={data}", "wemb_init=random", "eps=0.5", "max_epochs=3", "validFreq=50",
                        "n_words=10000"])   # 190 updates an epoch; the whole dictionary in the model
    main = train.cli_entry(train.main)
    assert main(merge(base, ["saveFreq=100000", "saveto=none"])) == 0
    assert main(merge(base, ["saveFreq=1", "saveto=every"])) == 0
    monkeypatch.setenv("LSTM_ADV_FAULT", "int@update=277")
    assert main(merge(base, ["saveFreq=100000", "saveto=resumed"])) == 130
    monkeypatch.delenv("LSTM_ADV_FAULT")
    assert main(merge(base, ["saveFreq=100000", "saveto=resumed"])) == 0

    ref_arrays, ref_state = _checkpoint(isolated / "none")
    assert ref_state["uidx"] == 570
    ref_params = load_npz(isolated / "none" / "params.npz")
    for run in ("every", "resumed"):
        arrays, state = _checkpoint(isolated / run)
        assert state == ref_state, run
        assert list(arrays) == list(ref_arrays), run
        for k in ref_arrays:
            assert np.array_equal(arrays[k], ref_arrays[k]), (run, k)
        params = load_npz(isolated / run / "params.npz")
        assert list(params) == list(ref_params)
        for k in ref_params:
            assert np.array_equal(params[k], ref_params[k]), (run, k)
    waited = ref_arrays["opt/Wemb_lazy_count"] - ref_arrays["opt/Wemb_lazy_last"]
    assert waited.max() >= 300   # rows that the last update found waiting hundreds of updates

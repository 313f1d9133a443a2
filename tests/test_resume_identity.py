"""A resumed run is the run it began as: the same data (`RunDir.check_same_data`), and checkpoints
that never change what it computes (the lazy optimizer state saved as it is).

The corpora are made here: CSV files of synthetic reviews whose label is which group of words a
text holds.
"""

import csv
import random
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY, load_npz, merge, read_json
from lstm_adv import train

GROUPS = {"pos": ["good", "great", "fun"], "neg": ["bad", "awful", "dull"]}
FILLER = "the a movie film plot it was is this and".split()


def write_corpus(path, n=200, n_test=40, seed=0, rename=None, swap=False, filler=FILLER):
    """A 2-class CSV corpus; ``rename``: label names replaced ({old: new}); ``swap``: every label
    given to the other class's texts; ``filler``: the words between the class words."""
    rng = random.Random(seed)
    names = sorted(GROUPS)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label", "split"])
        for split, count in (("train", n), ("test", n_test)):
            for i in range(count):
                label = names[i % 2]
                toks = [rng.choice(filler) for _ in range(rng.randint(3, 9))]
                toks.insert(rng.randint(0, len(toks)), rng.choice(GROUPS[label]))
                if swap:
                    label = names[1 - i % 2]
                w.writerow([" ".join(toks), (rename or {}).get(label, label), split])
    return Path(path)


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
    config.write_text(__import__("json").dumps(record))
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "resumed from the checkpoint at update 7" in out and "predates the data check" in out
    assert "data_identity" in read_json(config)

"""A user's corpus read as they meant it (issue 43): nothing dropped, merged or guessed in silence.

Table-driven: corpora that must now be refused with one line (exit 2, nothing written), and
corpora that must be read with their columns, splits and skipped files as the user laid them out.
"""

import builtins
import csv
import io
import json
import os
from pathlib import Path

import pytest

from lstm_adv.common.errors import UserError
from lstm_adv.config import parse_args
from lstm_adv.data import load_dataset
from conftest import merge
from test_corpus import isolated, make_rows, write_csv, write_folder, write_jsonl  # noqa: F401 (isolated: autouse)

WORDS = {"pos": "good great fun", "neg": "bad awful dull"}


def csv_text(n=60, label=lambda i: "pos" if i % 2 else "neg", text=None, header="text,label", extra=lambda i: ""):
    def default(i):
        return "the film was " + WORDS.get(label(i).lower(), "okay fine so").split()[i % 3]

    lines = [header] + [f"{(text or default)(i)},{label(i)}{extra(i)}" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def folder(root, splits=(("train", 30), ("test", 6)), classes=("good", "bad")):
    rows = [(f"the film was {c} {i}", c, sp) for sp, n in splits for c in classes for i in range(n)]
    return write_folder(root, rows)


def load(path, *extra):
    return load_dataset(parse_args(merge([f"data={path}", "progress=0", "maxlen=0"], list(extra))))


# --- refused: one line, exit 2, nothing written -------------------------------------------------

def _write(files):
    def make(d):
        for rel, content in files.items():
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            (d / rel).write_bytes(content)
    return make


def _in_folder(action):
    def make(d):
        folder(d / "f")
        action(d / "f")
    return make


def _unreadable(monkeypatch, target):
    """Reading (open, list) the path ending in ``target`` fails with EACCES, as a file of another
    user's with mode 600 would (the tests may run as root, whom chmod does not stop)."""
    def deny(fn):
        def wrapped(path, *a, **k):
            if str(path).endswith(target):
                raise PermissionError(13, "Permission denied", str(path))
            return fn(path, *a, **k)
        return wrapped
    for mod, name in ((builtins, "open"), (io, "open"), (os, "listdir")):
        monkeypatch.setattr(mod, name, deny(getattr(mod, name)))


#: (case, corpus maker (gets the test's folder), data=, more keys, fragment of the error line)
REFUSED = [
    ("two columns fit label_col", _write({"c.csv": csv_text(header="text,label,Label", extra=lambda i: ",x")}),
     "c.csv", "", "'label' and 'Label' both fit label_col=label"),
    ("two columns fit split", _write({"c.csv": csv_text(header="text,label,split,Split ",
                                                        extra=lambda i: ",train,train")}),
     "c.csv", "", "'split' and 'Split ' both fit the split column"),
    ("a split-like column not named split", _write({"c.csv": csv_text(header="text,label,Fold",
                                                                      extra=lambda i: ",test")}),
     "c.csv", "", "the column 'Fold' looks like a split"),
    ("one class in train", _write({"c.csv": csv_text(header="text,label,split", extra=lambda i: ",train" if i % 2
                                                     else ",test")}),
     "c.csv", "", "the training split holds one class only ('pos'"),
    ("ten training texts leave valid empty", _write({"c.csv": csv_text(n=14, header="text,label,split",
                                                                       extra=lambda i: ",train" if i < 10
                                                                       else ",test")}),
     "c.csv", "", "leaves the validation split empty (it needs at least 11 training texts)"),
    ("a class only in test", _write({"c.csv": csv_text(header="text,label,split",
                                                       extra=lambda i: ",test" if i == 7 else ",train",
                                                       label=lambda i: "ugly" if i == 7 else "pos" if i % 2
                                                       else "neg")}),
     "c.csv", "", "the class 'ugly' has 1 text in test (first: c.csv line 9) but none in train"),
    ("labels differing in case", _write({"c.csv": csv_text(label=lambda i: ["pos", "neg", "POS"][i % 3])}),
     "c.csv", "", "the labels 'POS' (at"),
    ("test/Good beside train/good", _in_folder(lambda f: (f / "test" / "good").rename(f / "test" / "Good")),
     "f", "", "'Good' (at"),
    ("half the texts control characters", _write({"c.csv": csv_text(n=120, text=lambda i: "\x01\x02" if i < 60
                                                                    else f"a good film {i}")}),
     "c.csv", "", "60 of 120 texts would be skipped (60 empty texts)"),
    ("a class whose every text is empty", _write({"c.csv": csv_text(n=120, label=lambda i: "meh" if i < 3
                                                                    else "pos" if i % 2 else "neg",
                                                                    text=lambda i: " " if i < 3 else f"film {i}")}),
     "c.csv", "", "every text of class 'meh' in train (3) is empty"),
    ("files nested in subfolders", _in_folder(lambda f: [_write({f"train/good/more/{i}.txt": b"good"})(f)
                                                         for i in range(20)]),
     "f", "", "20 of 92 texts would be skipped (20 files nested deeper"),
    ("a class folder without .txt texts", _in_folder(lambda f: _write({"train/meh/a.md": b"okay",
                                                                       "train/meh/b.TXT.bak": b"ok"})(f)),
     "f", "", "train/meh holds no text"),
    ("a split value near one", _write({"c.csv": csv_text(header="text,label,split", extra=lambda i: ",Validation"
                                                         if i == 4 else ",train")}),
     "c.csv", "", "c.csv line 6: split 'validation' is not one of train, test, valid, unlabelled; did you mean valid?"),
    ("a folder beside the splits", _in_folder(lambda f: _write({"dev/good/1.txt": b"good"})(f)),
     "f", "", "the folder dev/ is none of train/, test/, valid/"),
    ("a broken symbolic link", _in_folder(lambda f: os.symlink("nowhere.txt", f / "train/good/x.txt")),
     "f", "", "train/good/x.txt is a broken symbolic link"),
    ("a symbolic link loop", _in_folder(lambda f: (os.symlink("b.txt", f / "train/good/a.txt"),
                                                   os.symlink("a.txt", f / "train/good/b.txt"))),
     "f", "", "train/good/a.txt is a symbolic link loop"),
    ("a pipe among the texts", _in_folder(lambda f: os.mkfifo(f / "train/good/p.txt")),
     "f", "", "train/good/p.txt is not a regular file"),
    ("data= a pipe", lambda d: os.mkfifo(d / "c.csv"), "c.csv", "", "data=c.csv is not a regular file"),
    ("data= a broken link", lambda d: os.symlink("gone.csv", d / "c.csv"), "c.csv", "",
     "data=c.csv is a broken symbolic link"),
    ("data=x.csv a folder", lambda d: (d / "x.csv").mkdir(), "x.csv", "", "data=x.csv is a folder, not a file"),
    ("semicolon-separated", _write({"c.csv": csv_text().replace(b",", b";")}), "c.csv", "",
     "seems separated by semicolons, not commas; save it comma-separated"),
    ("tab-separated .csv", _write({"c.csv": csv_text().replace(b",", b"\t")}), "c.csv", "",
     "seems separated by tabs, not commas; rename it to .tsv"),
    ("an empty split cell", _write({"c.csv": csv_text(header="text,label,split", extra=lambda i: "," if i == 5
                                                      else ",train")}),
     "c.csv", "", "c.csv line 7: the split is empty"),
    ("an empty valid/ folder", _in_folder(lambda f: (f / "valid").mkdir()), "f", "", "valid/ holds no class folders"),
    ("a UTF-16 file", _write({"c.csv": csv_text().decode().encode("utf-16")}), "c.csv", "",
     "c.csv is UTF-16 (Excel's \"Unicode text\"), not UTF-8"),
    ("a lone surrogate in a JSONL label", _write({"c.jsonl": b'{"text": "good", "label": "\\ud800"}\n'
                                                  b'{"text": "bad", "label": "neg"}\n'}),
     "c.jsonl", "", "line 1: the label holds a lone surrogate"),
    ("a lone surrogate in a JSONL text", _write({"c.jsonl": b'{"text": "a \\udc80 film", "label": "pos"}\n'}),
     "c.jsonl", "", "line 1: the text holds a lone surrogate"),
]


def _run_refused(make, data, extra, tmp_path, monkeypatch, capsys):
    from lstm_adv import train
    from lstm_adv.common.lifecycle import cli_entry

    make(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = sorted(os.walk(tmp_path))
    status = cli_entry(train.main)([f"data={data}", "saveto=run", "progress=0", "maxlen=0", *extra.split()])
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert status == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert sorted(os.walk(tmp_path)) == before   # no run directory, no cache
    return errors[0]


@pytest.mark.parametrize("case, make, data, extra, fragment", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_with_one_line_and_nothing_written(case, make, data, extra, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LSTM_ADV_CACHE", str(tmp_path / "cache"))
    error = _run_refused(make, data, extra, tmp_path, monkeypatch, capsys)
    assert fragment in error, error


UNREADABLE = [("train/good/3.txt", "cannot read f/train/good/3.txt (Permission denied)"),
              ("train/bad", "cannot list the folder f/train/bad (Permission denied)"),
              ("c.csv", "cannot read c.csv (Permission denied)")]


@pytest.mark.parametrize("target, fragment", UNREADABLE)
def test_an_unreadable_file_or_folder_is_one_line(target, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LSTM_ADV_CACHE", str(tmp_path / "cache"))

    def make(d):
        folder(d / "f")
        (d / "c.csv").write_bytes(csv_text())
        _unreadable(monkeypatch, target)

    error = _run_refused(make, "c.csv" if target == "c.csv" else "f", "", tmp_path, monkeypatch, capsys)
    assert fragment in error, error


# --- read as the user meant ---------------------------------------------------------------------

def test_column_names_match_without_case_or_spaces(tmp_path):
    rows = make_rows()
    with open(tmp_path / "c.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([(" Text", "LABEL ", "Split")] + rows)
    ds = load(tmp_path / "c.csv")
    assert ds.info["test_split"] == "given" and ds.info["n_test"] == 30   # the Split column read, not drawn
    same = load(write_csv(tmp_path / "d.csv", rows))
    assert (ds.words, ds.test.seqs) == (same.words, same.test.seqs)
    obj = [json.dumps({"Text": t, "Label": y, "SPLIT": s}) for t, y, s in rows]
    (tmp_path / "e.jsonl").write_text("\n".join(obj) + "\n")
    assert load(tmp_path / "e.jsonl").test.seqs == same.test.seqs


def test_other_columns_are_said_not_read(tmp_path):
    (tmp_path / "c.csv").write_bytes(csv_text(header="id,text,label,notes", text=lambda i: f"{i},a good film {i}",
                                              extra=lambda i: ",n"))
    ds = load(tmp_path / "c.csv")
    assert ds.info["columns_ignored"] == ["id", "notes"] and "columns not read: 'id', 'notes'" in ds.info["read_note"]


def test_a_pos_neg_folder_with_valid_is_a_class_folder_not_imdb(tmp_path):
    root = folder(tmp_path / "f", splits=(("train", 30), ("valid", 10), ("test", 6)), classes=("pos", "neg"))
    ds = load(root)
    assert ds.info["source_format"] == "folder" and ds.info["label_names"] == ["neg", "pos"]
    assert ds.info["n_valid"] == 20 and ds.info["n_train"] == 60


def test_skipped_files_are_counted_by_reason_and_said(tmp_path):
    root = folder(tmp_path / "f")
    for rel in (".ipynb_checkpoints/a.txt", "train/.ipynb_checkpoints/b.txt", "train/good/.DS_Store",
                "train/good/notes.md", "README.md", "train/urls.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("the film was good")
    (root / "train/good/UPPER.TXT").write_text("the film was great")   # .txt in any case is a text
    ds = load(root)
    assert ds.info["label_names"] == ["bad", "good"] and ds.info["n_train_all"] == 61
    assert ds.info["n_skipped"] == {"hidden": 3, "not_txt": 1, "outside": 2}
    assert ds.info["read_note"] == ("skipped: 3 hidden files or folders, 1 files not .txt, "
                                    "2 files outside the class folders")
    # The log's data line says it (lstm_adv.train.load_data).
    from lstm_adv import train

    class Run:
        lines = []

        def log(self, line):
            self.lines.append(line)

    run = Run()
    train.load_data(parse_args([f"data={root}", "progress=0", "maxlen=0"]), run)
    assert run.lines[0].endswith("; " + ds.info["read_note"])


def test_a_few_empty_texts_are_skipped_and_said(tmp_path):
    (tmp_path / "c.csv").write_bytes(csv_text(n=120, text=lambda i: "\x00\u200b " if i in (3, 4) else f"good {i}"))
    ds = load(tmp_path / "c.csv")
    assert ds.info["n_skipped"] == {"empty": 2}
    assert ds.info["read_note"] == "skipped: 2 empty texts; test: test_portion=0.2 of the texts held out (fixed seed)"


def test_a_text_over_csv_s_field_limit_reads_as_from_jsonl(tmp_path):
    rows = make_rows()
    rows[0] = (" ".join(["good"] * 40_000) + " film", rows[0][1], rows[0][2])   # 200,005 characters
    a, b = load(write_csv(tmp_path / "c.csv", rows)), load(write_jsonl(tmp_path / "d.jsonl", rows))
    assert (a.words, a.train.seqs) == (b.words, b.train.seqs) and max(len(s) for s in a.train.seqs) >= 40_000


def test_a_maxlen_that_leaves_one_class_in_train_is_refused(tmp_path):
    (tmp_path / "c.csv").write_bytes(csv_text(text=lambda i: "good film" if i % 2 else "a long and dull bad film"))
    assert load(tmp_path / "c.csv", "maxlen=0").info["n_classes"] == 2
    cached = sorted((tmp_path / "cache").iterdir())
    (tmp_path / "c.csv").write_bytes(csv_text(n=62, text=lambda i: "good film" if i % 2 else "a long and dull bad film"))
    with pytest.raises(UserError, match="the training split holds one class only after the maxlen=4 rule"):
        load(tmp_path / "c.csv", "maxlen=4")
    assert sorted((tmp_path / "cache").iterdir()) == cached   # the new content's cache is not left behind


def test_a_test_portion_draw_that_takes_a_whole_class_is_refused(tmp_path):
    from lstm_adv.common.utils import make_rng
    from lstm_adv.data.corpus import TEST_SPLIT_SEED

    first_held_out = int(make_rng(TEST_SPLIT_SEED, "test_portion").permutation(60)[0])
    label = lambda i: "rare" if i == first_held_out else "pos" if i % 2 else "neg"   # noqa: E731
    (tmp_path / "c.csv").write_bytes(csv_text(label=label))
    with pytest.raises(UserError, match=r"the class 'rare' has 1 text in test \(drawn by test_portion=0.2\)"):
        load(tmp_path / "c.csv")

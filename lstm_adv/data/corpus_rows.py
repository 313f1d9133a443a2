"""Reading a user's corpus (``data=PATH``): which format PATH is, its rows, and the checks on them.

Formats, told apart by the path:

- ``.csv`` / ``.tsv`` (or ``.tab``): a header row, then one text per row; the columns
  ``text_col`` (default ``text``) and ``label_col`` (default ``label``), and optionally ``split``;
- ``.jsonl`` (or ``.ndjson``): one JSON object per line with the same fields;
- a folder: ``train/CLASS/*.txt`` (and ``test/CLASS/*.txt``, ``valid/CLASS/*.txt``), one text per
  file, the aclImdb layout with any class names; ``train/unsup/`` holds unlabelled texts. A
  folder (or tarball) with exactly the classes ``neg`` and ``pos`` is aclImdb itself
  (`corpus_format` says ``"imdb"``).

`iter_rows` yields the rows as a stream (one line or file at a time); `RowTally` counts them and
checks labels and splits. Building the dataset from them, and its cache: `lstm_adv.data.corpus`.
"""

import csv
import difflib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..common.errors import UserError

FILE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
#: The values of the ``split`` column, and their codes in the cache.
SPLITS = {"train": 0, "test": 1, "valid": 2, "unlabelled": 3}
#: Class folder names that are not classes (aclImdb's unlabelled reviews).
UNLABELLED_FOLDERS = ("unsup",)

_INT_RE = re.compile(r"^[+-]?\d+$")


# ---------------------------------------------------------------------------------------------
# what PATH is

def corpus_format(path):
    """``"csv"``, ``"tsv"``, ``"jsonl"``, ``"folder"`` or ``"imdb"`` (aclImdb folder or tarball) for ``data=PATH``.

    Raises
    ------
    UserError
        The path does not exist, or is a file of another kind.
    """
    path = Path(path).expanduser()
    shown = f"data={path}"
    if not path.exists():
        match = difflib.get_close_matches(str(path), ["imdb", "toy"], n=1, cutoff=0.6)
        hint = f" (did you mean data={match[0]}?)" if match else ""
        raise UserError(f"{shown} is neither imdb, toy nor an existing file or folder{hint}; give the path of a CSV, "
                        "TSV or JSONL file, or of a folder with train/CLASS/*.txt")
    if path.is_dir():
        classes = {c for split in ("train", "test") for c in _class_folders(path / split)}
        if classes == {"neg", "pos"} and (path / "test").is_dir():
            return "imdb"
        return "folder"
    suffix = path.suffix.lower()
    if suffix in FILE_FORMATS:
        return FILE_FORMATS[suffix]
    if path.name.endswith((".tar.gz", ".tgz", ".tar")):
        return "imdb"   # an aclImdb tarball (lstm_adv.data.imdb_source checks it)
    raise UserError(f"{shown}: not a CSV (.csv), TSV (.tsv), JSONL (.jsonl) file, an aclImdb tarball or a folder; "
                    "save the corpus as one of these")


def _class_folders(split_dir):
    """The class folder names under ``split_dir`` (sorted; not `UNLABELLED_FOLDERS`), [] if it is no folder."""
    if not split_dir.is_dir():
        return []
    return sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and e.name not in UNLABELLED_FOLDERS)


# ---------------------------------------------------------------------------------------------
# reading rows

def _decoded_lines(fh, path):
    """The lines of a binary file as text, each checked as UTF-8 (a leading BOM dropped).

    Yields ``(line number, text)``; one line at a time, so the file is never in memory whole.
    """
    for lineno, raw in enumerate(fh, 1):
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield lineno, raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise UserError(f"{path} line {lineno} is not valid UTF-8 (byte 0x{raw[err.start]:02x} at column "
                            f"{err.start + 1}); save the file as UTF-8") from None


def _column_error(path, what, key, name, available):
    """The `UserError` for a missing column or field, with a "did you mean" among ``available``."""
    match = difflib.get_close_matches(name, list(available), n=1, cutoff=0.5)
    listed = ", ".join(repr(a) for a in available) or "none"
    hint = f"did you mean {key}={match[0]}?" if match else f"name the {what} with {key}="
    return UserError(f"{path} has no {what} {name!r} (it has {listed}); {hint}")


def _csv_rows(path, delimiter, text_col, label_col):
    """``(line, text, label, split)`` of each data row of a CSV or TSV file with a header row."""
    kind = "TSV" if delimiter == "\t" else "CSV"
    with open(path, "rb") as fh:
        lines = _decoded_lines(fh, path)
        current = [0]

        def numbered():
            for lineno, text in lines:
                current[0] = lineno
                yield text

        reader = csv.reader(numbered(), delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
            if header is None or not any(h.strip() for h in header):
                raise UserError(f"{path} is empty; a {kind} corpus needs a header row naming its columns "
                                f"({text_col}{delimiter}{label_col}) and one text per row")
            header = [h.strip() for h in header]
            for key, name, what in (("label_col", label_col, "label column"), ("text_col", text_col, "text column")):
                if name not in header:
                    raise _column_error(path, what, key, name, header)
            i_text, i_label = header.index(text_col), header.index(label_col)
            i_split = header.index("split") if "split" in header else None
            while True:
                start = current[0] + 1   # a quoted text may span lines: the row's first line
                row = next(reader, None)
                if row is None:
                    break
                if not row or (len(row) == 1 and not row[0].strip() and len(header) > 1):
                    continue   # a blank line
                if len(row) != len(header):
                    sep = "tab" if delimiter == "\t" else f"{delimiter!r}"
                    raise UserError(f"{path} line {start} has {len(row)} fields but the header has {len(header)}; "
                                    f"quote texts that hold the delimiter ({sep}) or a line break")
                yield start, row[i_text], row[i_label].strip(), row[i_split].strip() if i_split is not None else ""
        except csv.Error as err:
            raise UserError(f"{path} line {current[0]}: not a valid {kind} row ({err}); quote texts that hold "
                            "quotes, the delimiter or line breaks") from None


def _jsonl_rows(path, text_col, label_col):
    """``(line, text, label, split)`` of each object of a JSONL file (blank lines skipped)."""
    with open(path, "rb") as fh:
        for lineno, line in _decoded_lines(fh, path):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path} line {lineno} is not valid JSON ({err.msg}); write one JSON object "
                                "per line") from None
            if not isinstance(obj, dict):
                raise UserError(f"{path} line {lineno} is not a JSON object; write one object per line, "
                                f'e.g. {{"{text_col}": "...", "{label_col}": "..."}}')
            for key, name, what in (("label_col", label_col, "label field"), ("text_col", text_col, "text field")):
                if name not in obj:
                    raise _column_error(f"{path} line {lineno}", what, key, name, list(obj))
            text, label, split = obj[text_col], obj[label_col], obj.get("split", "")
            if not isinstance(text, str):
                raise UserError(f"{path} line {lineno}: the text field {text_col!r} is not a string")
            if isinstance(label, bool) or not isinstance(label, (str, int)):
                raise UserError(f"{path} line {lineno}: the label {label!r} is neither a string nor an integer")
            yield lineno, text, str(label).strip(), str(split).strip() if split is not None else ""


def _folder_rows(path):
    """``(where, text, label, split)`` of each ``.txt`` file under ``SPLIT/CLASS/`` of a folder."""
    train = path / "train"
    if not train.is_dir():
        raise UserError(f"data={path} has no train/ folder; put each class's .txt files in train/CLASS/ "
                        "(e.g. train/pos/1.txt), and test texts in test/CLASS/")
    if not _class_folders(train):
        raise UserError(f"data={path}: train/ holds no class folders; put each class's .txt files in "
                        "train/CLASS/ (e.g. train/pos/1.txt, train/neg/2.txt)")
    for split in ("train", "test", "valid"):
        folders = [(c, c) for c in _class_folders(path / split)]
        if split == "train":
            folders += [(name, None) for name in UNLABELLED_FOLDERS if (train / name).is_dir()]
        for folder, label in folders:
            entries = sorted((e.name for e in os.scandir(path / split / folder) if e.name.endswith(".txt")),
                             key=_file_order)
            for name in entries:
                where = path / split / folder / name
                with open(where, "rb") as fh:
                    data = fh.read()
                try:
                    text = data.decode("utf-8-sig")
                except UnicodeDecodeError as err:
                    line = data.count(b"\n", 0, err.start) + 1
                    raise UserError(f"{where} line {line} is not valid UTF-8 (byte 0x{data[err.start]:02x}); save the "
                                    "file as UTF-8") from None
                yield where, text, label if label is not None else "", "unlabelled" if label is None else split


def _file_order(name):
    # Numeric ids first in numeric order (aclImdb's ID_RATING.txt), then the other names.
    head = re.split(r"[_.]", name, maxsplit=1)[0]
    return (0, int(head), name) if head.isdigit() else (1, 0, name)


def iter_rows(path, fmt, text_col="text", label_col="label"):
    """Every text of a corpus, in file order: ``(where, text, label, split)``.

    ``where`` is a line number (files) or the file's path (folders); ``label`` the raw label as
    a string ("" for unlabelled texts), ``split`` the raw split name ("" where none is given).
    """
    path = Path(path)
    if fmt in ("csv", "tsv"):
        return _csv_rows(path, "\t" if fmt == "tsv" else ",", text_col, label_col)
    if fmt == "jsonl":
        return _jsonl_rows(path, text_col, label_col)
    return _folder_rows(path)


# ---------------------------------------------------------------------------------------------
# checking the rows (no tokenising)

@dataclass
class RowTally:
    """What one pass over the rows learns besides the tokens: labels, splits, skipped texts."""

    path: Path
    label_col: str
    labels: dict = field(default_factory=dict)      # raw label -> first place seen
    n_rows: int = 0
    n_empty: int = 0
    splits: dict = field(default_factory=dict)      # split name -> count

    def add(self, where, text, label, split):
        """Count one row; returns its split code, or None for a row to skip (empty text)."""
        split = split.lower() if split else "train"
        if split not in SPLITS:
            raise UserError(f"{self._at(where)}: split {split!r} is not one of {', '.join(SPLITS)}; fix the split "
                            "column (or leave it out: test_portion= then holds texts out)")
        self.n_rows += 1
        if not text.strip():
            self.n_empty += 1
            return None
        if split != "unlabelled":
            if not label:
                raise UserError(f"{self._at(where)}: the label ({self.label_col!r}) is empty; give every text a label, "
                                "or mark unlabelled texts split=unlabelled")
            self.labels.setdefault(label, where)
        self.splits[split] = self.splits.get(split, 0) + 1
        return SPLITS[split]

    def _at(self, where):
        return str(where) if isinstance(where, Path) else f"{self.path} line {where}"

    def finish(self, n_kept=None):
        """The sorted label names and their kind (``"int"`` or ``"str"``), after every check on the whole corpus."""
        n_kept = sum(self.splits.values()) if n_kept is None else n_kept
        if self.n_rows == 0:
            raise UserError(f"{self.path} holds no texts; add rows (a header row, then one text per row)")
        if n_kept == 0:
            raise UserError(f"{self.path}: all {self.n_rows} texts are empty; check text_col= (the column holding the "
                            "texts)")
        if not self.splits.get("train"):
            raise UserError(f"{self.path} has no training texts (all are split=test, valid or unlabelled); mark some "
                            "split=train")
        numeric = [lb for lb in self.labels if _INT_RE.match(lb)]
        if numeric and len(numeric) < len(self.labels):
            name = next(lb for lb in self.labels if not _INT_RE.match(lb))
            raise UserError(f"{self.path}: the label column {self.label_col!r} mixes numbers and names ({numeric[0]!r} "
                            f"at {self._at(self.labels[numeric[0]])}, {name!r} at {self._at(self.labels[name])}); "
                            "use one kind for every label")
        if len(self.labels) < 2:
            only = ", ".join(repr(lb) for lb in self.labels)
            raise UserError(f"{self.path} has one class only ({only}); a classifier needs at least two: check "
                            f"label_col={self.label_col}")
        if numeric:
            ints = sorted(self.labels, key=int)
            if len({int(lb) for lb in ints}) < len(ints):
                raise UserError(f"{self.path}: the labels {ints} name one number twice (e.g. 1 and 01); write each "
                                "class one way")
            return [str(int(lb)) for lb in ints], "int", {lb: i for i, lb in enumerate(ints)}
        names = sorted(self.labels)
        return names, "str", {lb: i for i, lb in enumerate(names)}


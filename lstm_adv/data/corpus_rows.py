"""Reading a user's corpus (``data=PATH``): which format PATH is, and its rows as a stream.

Formats, told apart by the path:

- ``.csv`` / ``.tsv`` (or ``.tab``): a header row, then one text per row; the columns
  ``text_col`` (default ``text``) and ``label_col`` (default ``label``), and optionally ``split``;
  column names are matched with case and surrounding spaces ignored, and two columns that both
  fit one name are refused; the other columns are not read (`Columns` names them);
- ``.jsonl`` (or ``.ndjson``): one JSON object per line with the same fields;
- a folder: ``train/CLASS/*.txt`` (and ``test/CLASS/*.txt``, ``valid/CLASS/*.txt``), one text per
  file, the aclImdb layout with any class names (`lstm_adv.data.corpus_folder`). A folder with
  aclImdb's own layout and file names, or an aclImdb tarball, is aclImdb itself
  (`corpus_format` says ``"imdb"``).

`iter_rows` yields the rows as a stream (one line or file at a time); every file it cannot
read, and every text, label or split that is not valid Unicode, is one `UserError`. Counting and
checking them: `lstm_adv.data.corpus_checks`; the dataset and its cache: `lstm_adv.data.corpus`.
"""

import csv
import difflib
import json
import os
import re
import stat
from pathlib import Path

from ..common.errors import UserError
from .corpus_folder import is_aclimdb, list_folder

FILE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
#: The values of the ``split`` column, and their codes in the cache.
SPLITS = {"train": 0, "test": 1, "valid": 2, "unlabelled": 3}
#: Column names that hold a split under another name: refused rather than ignored (see `Columns`).
SPLIT_LIKE = ("set", "subset", "fold", "partition", "dataset", "splits", "split_name", "data_split")

# No limit on a field's length (Python's csv refuses fields over 131,072 characters): a long
# review reads from CSV as it does from JSONL. 2**31 - 1, not sys.maxsize, which C long may not hold.
csv.field_size_limit(2**31 - 1)
_SURROGATE = re.compile("[\ud800-\udfff]")


# ---------------------------------------------------------------------------------------------
# what PATH is

def corpus_format(path):
    """``"csv"``, ``"tsv"``, ``"jsonl"``, ``"folder"`` or ``"imdb"`` (aclImdb folder or tarball) for ``data=PATH``.

    Raises
    ------
    UserError
        The path does not exist, cannot be read, is no regular file or folder, or a file of another kind.
    """
    path = Path(path).expanduser()
    shown = f"data={path}"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            raise UserError(f"{shown} is a broken symbolic link; point it at the corpus file or folder") from None
        match = difflib.get_close_matches(str(path), ["imdb", "toy"], n=1, cutoff=0.6)
        hint = f" (did you mean data={match[0]}?)" if match else ""
        raise UserError(f"{shown} is neither imdb, toy nor an existing file or folder{hint}; give the path of a CSV, "
                        "TSV or JSONL file, or of a folder with train/CLASS/*.txt") from None
    except OSError as err:
        raise UserError(f"{shown}: cannot read it ({err.strerror}); fix the path or its permissions") from None
    if stat.S_ISDIR(mode):
        if path.suffix.lower() in FILE_FORMATS:
            raise UserError(f"{shown} is a folder, not a file; give the {path.suffix} file itself, or a folder "
                            "with train/CLASS/*.txt")
        if not os.access(path, os.R_OK | os.X_OK):
            raise UserError(f"{shown}: cannot list the folder (permission denied); fix its permissions")
        return "imdb" if is_aclimdb(path) else "folder"
    if not stat.S_ISREG(mode):
        raise UserError(f"{shown} is not a regular file (a pipe, socket or device); save the corpus to a file")
    if not os.access(path, os.R_OK):
        raise UserError(f"{shown}: cannot read the file (permission denied); fix its permissions")
    suffix = path.suffix.lower()
    if suffix in FILE_FORMATS:
        return FILE_FORMATS[suffix]
    if path.name.lower().endswith((".tar.gz", ".tgz", ".tar")):
        return "imdb"   # an aclImdb tarball (lstm_adv.data.imdb_source checks it)
    raise UserError(f"{shown}: not a CSV (.csv), TSV (.tsv), JSONL (.jsonl) file, an aclImdb tarball or a folder; "
                    "save the corpus as one of these")


# ---------------------------------------------------------------------------------------------
# columns

def _norm(name):
    return name.strip().casefold()


class Columns:
    """Which column (CSV header) or field (JSONL keys) holds the text, the label and the split.

    Names match with case and surrounding spaces ignored (``Label`` is ``label``); two columns
    that both fit one name are refused, as is a split-like column (`SPLIT_LIKE`) beside no
    ``split`` column (its rows would be read as training texts). ``ignored`` lists the others.
    """

    def __init__(self, where, names, text_col, label_col, what="column"):
        self.where, self.names = where, list(names)
        self.text = self._find(text_col, "text_col", f"text {what}", required=True)
        self.label = self._find(label_col, "label_col", f"label {what}", required=True)
        if self.text == self.label:
            raise UserError(f"{where}: text_col={text_col} and label_col={label_col} name the same {what} "
                            f"{self.names[self.text]!r}; name two different ones")
        self.split = self._find("split", None, f"split {what}", required=False)
        used = {self.text, self.label, self.split}
        self.ignored = [n for i, n in enumerate(self.names) if i not in used]
        if self.split is None:
            for n in self.ignored:
                if _norm(n) in SPLIT_LIKE:
                    raise UserError(f"{where}: the {what} {n!r} looks like a split, but only a {what} named 'split' "
                                    f"is read as one (its rows would all be training texts); rename it split, "
                                    "or drop it")

    def _find(self, name, key, what, required):
        hits = [i for i, n in enumerate(self.names) if _norm(n) == _norm(name)]
        if len(hits) > 1:
            both = " and ".join(repr(self.names[i]) for i in hits)
            which = f"{key}={name}" if key else f"the {what}"
            raise UserError(f"{self.where}: {both} both fit {which} (case and spaces are ignored); rename or drop one")
        if hits:
            return hits[0]
        if required:
            match = difflib.get_close_matches(name, self.names, n=1, cutoff=0.5)
            listed = ", ".join(repr(a) for a in self.names) or "none"
            hint = f"did you mean {key}={match[0].strip()}?" if match else f"name the {what} with {key}="
            raise UserError(f"{self.where} has no {what} {name!r} (it has {listed}); {hint}")
        return None


def _delimiter_hint(path, header, delimiter):
    """A `UserError` when a one-column header is split by another delimiter; None otherwise."""
    if len(header) != 1:
        return None
    found = [d for d in (";", "\t", "|", ",") if d != delimiter and d in header[0]]
    if not found:
        return None
    d = found[0]
    name = {"\t": "tabs", ";": "semicolons", "|": "'|'", ",": "commas"}[d]
    if d == "\t":
        fix = "rename it to .tsv"
    elif d == ",":
        fix = "rename it to .csv"
    else:
        fix = "save it comma-separated (.csv) or tab-separated (.tsv), the two delimiters read"
    return UserError(f"{path}: the header {header[0]!r} is one column: the file seems separated by {name}, not "
                     f"{'tabs' if delimiter == chr(9) else 'commas'}; {fix}")


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
            if lineno == 1 and raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
                raise UserError(f"{path} is UTF-16 (Excel's \"Unicode text\"), not UTF-8; save it as UTF-8 "
                                "(e.g. \"CSV UTF-8\")") from None
            raise UserError(f"{path} line {lineno} is not valid UTF-8 (byte 0x{raw[err.start]:02x} at column "
                            f"{err.start + 1}); save the file as UTF-8") from None


def _csv_rows(path, delimiter, text_col, label_col, columns_seen):
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
            hint = _delimiter_hint(path, header, delimiter)
            if hint is not None and not any(_norm(h) in (_norm(text_col), _norm(label_col)) for h in header):
                raise hint
            cols = Columns(path, header, text_col, label_col)
            columns_seen.update(cols.ignored)
            i_text, i_label, i_split = cols.text, cols.label, cols.split
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
                yield start, row[i_text], row[i_label].strip(), row[i_split].strip() if i_split is not None else None
        except csv.Error as err:
            raise UserError(f"{path} line {current[0]}: not a valid {kind} row ({err}); quote texts that hold "
                            "quotes, the delimiter or line breaks") from None


def _jsonl_rows(path, text_col, label_col, columns_seen):
    """``(line, text, label, split)`` of each object of a JSONL file (blank lines skipped)."""
    matched = {}   # the objects' keys -> their Columns (one per distinct key list)
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
            keys = tuple(obj)
            if keys not in matched:
                matched[keys] = Columns(f"{path} line {lineno}", keys, text_col, label_col, what="field")
                columns_seen.update(matched[keys].ignored)
            cols = matched[keys]
            text, label = obj[keys[cols.text]], obj[keys[cols.label]]
            split = obj[keys[cols.split]] if cols.split is not None else None
            if not isinstance(text, str):
                raise UserError(f"{path} line {lineno}: the text field {keys[cols.text]!r} is not a string")
            if isinstance(label, bool) or not isinstance(label, (str, int)):
                raise UserError(f"{path} line {lineno}: the label {label!r} is neither a string nor an integer")
            if split is not None and not isinstance(split, str):
                raise UserError(f"{path} line {lineno}: the split {split!r} is not a string; write train, test, valid "
                                "or unlabelled")
            # JSON's \ud800 escapes decode to lone surrogates, which no file can hold (UTF-8 text cannot).
            for what, value in (("text", text), ("label", label), ("split", split)):
                bad = _SURROGATE.search(value) if isinstance(value, str) else None
                if bad:
                    raise UserError(f"{path} line {lineno}: the {what} holds a lone surrogate ({bad.group()!r}, not a "
                                    "character); fix the escape in the file")
            yield lineno, text, str(label).strip(), split.strip() if split is not None else None


def _folder_rows(path, listing):
    """``(where, text, label, split)`` of each text file `list_folder` lists."""
    for split, label, where in listing.files:
        with open(where, "rb") as fh:
            data = fh.read()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            line = data.count(b"\n", 0, err.start) + 1
            raise UserError(f"{where} line {line} is not valid UTF-8 (byte 0x{data[err.start]:02x}); save the "
                            "file as UTF-8") from None
        yield where, text, label if label is not None else "", "unlabelled" if label is None else split


def _checked(rows, path):
    """The rows, with every OS error reading them turned into one `UserError`."""
    try:
        yield from rows
    except OSError as err:
        raise UserError(f"cannot read {err.filename or path} ({err.strerror}); fix its permissions or remove "
                        "it") from None


def iter_rows(path, fmt, text_col="text", label_col="label", listing=None, columns_seen=None):
    """Every text of a corpus, in file order: ``(where, text, label, split)``.

    ``where`` is a line number (files) or the file's path (folders); ``label`` the raw label as
    a string ("" for unlabelled texts), ``split`` the raw split name (None without a split column).
    ``listing`` is a folder's `list_folder` (made here if not given); ``columns_seen`` a set
    that gains the columns or fields not read.
    """
    path = Path(path)
    columns_seen = set() if columns_seen is None else columns_seen
    if fmt in ("csv", "tsv"):
        rows = _csv_rows(path, "\t" if fmt == "tsv" else ",", text_col, label_col, columns_seen)
    elif fmt == "jsonl":
        rows = _jsonl_rows(path, text_col, label_col, columns_seen)
    else:
        rows = _folder_rows(path, listing if listing is not None else list_folder(path))
    return _checked(rows, path)

"""Text in, prediction out: ``python -m lstm_adv.predict model=RUN [input=FILE|-] [text_col=] [out=FILE]``.

Reads one text per line (or a CSV, TSV or JSONL file's text column), tokenises each exactly as
training did (`lstm_adv.data.imdb_source.tokenize`: Moses, lowercase, whitespace; the tokeniser
of IMDB and of every ``data=PATH`` corpus), maps the words to the run's ids (``vocab.json``;
a word outside it is UNK, id 1, as `lstm_adv.data.base.finalize` maps ids >= n_words) and writes
each text's label and each class's probability: CSV to ``out=`` or a pipe, a table on a terminal.

In Python, `load_run` returns a `Predictor`::

    clf = lstm_adv.load_run("runs/my")
    clf.predict(["a good film"])          # ['positive']: one label name per text
    clf.predict_proba(["a good film"])    # (N, K) array, rows sum to 1, columns clf.labels
"""

import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common.errors import UserError
from .common.lifecycle import cli_entry
from .common.options import help_text, option, parse, wants_help
from .common.utils import atomic_write_text

#: the class names of a two-class run that recorded none (runs made before K classes): IMDB's 0 and 1
BINARY_NAMES = ("negative", "positive")
#: the file endings read as tables (a column of texts); any other file is one text per line
TABLE_FORMATS = {".csv": ",", ".tsv": "\t", ".jsonl": None}


class Predictor:
    """A trained run that classifies raw texts (`load_run`).

    Attributes
    ----------
    path : pathlib.Path
        The run directory.
    cfg : lstm_adv.config.Config
        The run's configuration (``config.json``).
    labels : list of str
        The class names, in the order of the model's outputs (K of them).
    """

    def __init__(self, run, mode=""):
        from .analysis.visualize.inputs import load_run as read_files   # the run's checked files

        self._run = read_files(run, mode=mode)
        self.path, self.cfg = self._run.path, self._run.cfg
        n_classes = int(self._run.params["U"].shape[1])
        names = self._run.label_names or (BINARY_NAMES if n_classes == 2 else [str(k) for k in range(n_classes)])
        self.labels = [str(n) for n in names]
        self._ids = {w: i for i, w in enumerate(self._run.words)}
        self._model = None

    def ids(self, text):
        """The word ids of one text, as training made them (an unknown word is UNK, 1).

        Raises
        ------
        UserError
            If the text holds no token.
        """
        from .data.base import UNK
        from .data.imdb_source import tokenize   # the tokeniser of IMDB and of data=PATH (lstm_adv.data.corpus)

        ids = [self._ids.get(t, UNK) for t in tokenize(str(text))]
        if not ids:
            raise UserError(f"text {str(text)[:40]!r} is empty after tokenisation: the model needs at least one word")
        return ids

    def predict_proba(self, texts):
        """Each class's probability for each text (clean input, dropout off).

        Parameters
        ----------
        texts : sequence of str
            N raw texts.

        Returns
        -------
        numpy.ndarray
            (N, K) float64, rows summing to 1, columns in the order of `labels`.
        """
        if isinstance(texts, str):
            raise TypeError("predict_proba takes a list of texts; wrap one text in a list")
        seqs = [self.ids(t) for t in texts]
        out = np.zeros((len(seqs), len(self.labels)))
        model = self.model()
        order = np.argsort([len(s) for s in seqs], kind="stable")   # similar lengths batch with little padding
        from .data import prepare_data

        for start in range(0, len(order), self.cfg.valid_batch_size):
            idx = order[start:start + self.cfg.valid_batch_size]
            x, mask, _ = prepare_data([seqs[i] for i in idx], np.zeros(len(idx), dtype=np.int64), self.cfg.floatX)
            out[idx] = model.f_pred_prob(x, mask)
        return out

    def predict(self, texts):
        """The most probable class's name for each text (a list of N strings, `labels`' names)."""
        return [self.labels[k] for k in self.predict_proba(texts).argmax(axis=1)]

    def model(self):
        """The compiled `lstm_adv.core.compiled.Model` (its prediction compiled on first use)."""
        if self._model is None:
            from .core.backend import limit_blas_threads
            from .core.compiled import Model   # imports PyTensor: only when a text is classified

            limit_blas_threads(1)
            self._model = Model(self.cfg, self._run.n_words, self._run.params, word_counts=self._run.word_counts)
        return self._model


def load_run(run, mode=""):
    """A trained run as a `Predictor`: ``load_run("runs/my").predict(["a good film"])``.

    Parameters
    ----------
    run : str or Path
        A run directory of ``lstm_adv.train`` (after its first validation) or its ``params.npz``.
    mode : str, optional
        The PyTensor backend (default: the run's).

    Raises
    ------
    lstm_adv.common.errors.UserError
        No such run, or its files are not a trained model's.
    """
    return Predictor(run, mode)


# ---- the command ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PredictOptions:
    """The keys of ``python -m lstm_adv.predict``."""

    model: str = option("", "the run directory of lstm_adv.train (or its params.npz)")
    input: str = option("-", "the texts: - (standard input) or a file: one text per line, or a .csv/.tsv/.jsonl "
                        "file's text_col column")
    text_col: str = option("text", "the column (CSV, TSV) or field (JSONL) holding the texts")
    out: str = option("", "write CSV here (default: standard output; a table on a terminal)")


def read_texts(path, text_col, stdin=None):
    """The texts of ``input=``: ``(where, text)`` pairs, ``where`` naming the line or row.

    One text per line for ``-`` and plain files (blank lines skipped, their count returned); the
    ``text_col`` column of a CSV/TSV file with a header row, or the field of a JSONL file.

    Returns
    -------
    (list of (str, str), int)
        The texts, and how many blank lines or empty texts were skipped.

    Raises
    ------
    UserError
        No such file, no text in it, or no ``text_col`` column.
    """
    if path == "-":
        name, raw = "standard input", (stdin or sys.stdin).read()
    else:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"no such input file: {path} (give a file of texts, one per line, or input=- to read "
                            "standard input)")
        try:
            name, raw = str(p), p.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"cannot read input {path}: {err}; give a UTF-8 text file") from None
    suffix = Path(path).suffix.lower() if path != "-" else ""
    if suffix not in TABLE_FORMATS:
        rows = [(f"line {i}", ln) for i, ln in enumerate(raw.splitlines(), 1)]
    else:
        if suffix == ".jsonl":
            records = _json_records(name, raw)
            columns = set().union(*(rec for _, rec in records)) if records else set()
        else:
            reader = csv.DictReader(io.StringIO(raw, newline=""), delimiter=TABLE_FORMATS[suffix])
            records, columns = [(f"row {i}", r) for i, r in enumerate(reader, 1)], set(reader.fieldnames or ())
        if text_col not in columns:
            listed = ", ".join(sorted(map(str, columns))) or "none"
            raise UserError(f"{name} has no column {text_col!r} (it has {listed}); give text_col= the column of the texts")
        rows = [(where, "" if rec.get(text_col) is None else str(rec[text_col])) for where, rec in records]
    texts = [(where, t) for where, t in rows if t.strip()]
    if not texts:
        raise UserError(f"{name} holds no text (every line or row is empty); give a file with one text per line")
    return texts, len(rows) - len(texts)


def _json_records(name, raw):
    """``(where, object)`` for each non-blank line of a JSONL text; a line that is not an object is refused."""
    out = []
    for i, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            raise UserError(f"{name} line {i} is not a JSON object; a .jsonl file holds one object a line")
        out.append((f"line {i}", obj))
    return out


def format_rows(texts, labels, proba, names, table):
    """The output: CSV (``text,label,p_<class>...``), or with ``table`` an aligned text table."""
    header = ["text", "label"] + [f"p_{n}" for n in names]
    rows = [[t, lab] + [f"{p:.4f}" for p in ps] for t, lab, ps in zip(texts, labels, proba)]
    if not table:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buf.getvalue()
    rows = [[" ".join(r[0].split())[:48]] + r[1:] for r in rows]   # one line per text on a terminal
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    return "".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in [header, *rows])


def help_text_predict():
    return help_text(PredictOptions, "python -m lstm_adv.predict model=RUN [input=FILE|-] [text_col=] [out=FILE]",
                     "Classify raw texts with a trained run: each text's label and each class's probability.\n"
                     "Texts are tokenised as training did; words the run's vocab.json lacks count as UNK.")


@cli_entry
def main(argv):
    if wants_help(argv):
        print(help_text_predict())
        return 0
    opts = parse(PredictOptions, argv)
    if not opts.model:
        raise UserError("model= is missing: give the run directory of a trained model, e.g. model=runs/my")
    if opts.out and not Path(opts.out).resolve().parent.is_dir():
        raise UserError(f"out={opts.out}: no such directory {Path(opts.out).parent}")
    clf = load_run(opts.model)   # its files checked before the input is read
    texts, skipped = read_texts(opts.input, opts.text_col)
    if skipped:
        print(f"note: {skipped} empty line(s) or row(s) skipped", file=sys.stderr)
    for where, text in texts:
        try:
            clf.ids(text)
        except UserError:
            raise UserError(f"input {opts.input}, {where}: no word after tokenisation; remove it or give "
                            "a text") from None
    proba = clf.predict_proba([t for _, t in texts])
    labels = [clf.labels[k] for k in proba.argmax(axis=1)]
    if opts.out:
        try:
            atomic_write_text(opts.out, format_rows([t for _, t in texts], labels, proba, clf.labels, table=False))
        except OSError as err:
            raise UserError(f"cannot write out={opts.out}: {err.strerror}") from None
        print(f"wrote {opts.out}: {len(texts)} texts", file=sys.stderr)
    else:
        sys.stdout.write(format_rows([t for _, t in texts], labels, proba, clf.labels, table=sys.stdout.isatty()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

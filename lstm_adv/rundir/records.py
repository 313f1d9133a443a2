"""Reading whole runs: the one reader of a run's files for every command (`read_run`, `find_runs`).

A corrupt file is one `UserError` naming it; `find_runs` skips (and lists) the runs it cannot read.
"""

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..common.errors import UserError
from .files import RunDir, _load_json, _why, read_json


@dataclass(frozen=True)
class RunRecord:
    """A run directory's files as `read_run` found them.

    ``saved``: the whole ``config.json`` (``config``, ``n_words``, ``data`` ...); ``metrics``:
    ``metrics.json``, None before the run writes one; ``history``: ``history.csv``'s rows, as the
    file's strings; ``problem``: why ``metrics.json`` is unusable (``strict=False`` only).
    """

    path: Path
    saved: dict
    metrics: Optional[dict] = None
    history: tuple = ()
    problem: Optional[str] = None

    @property
    def config(self):
        """The saved configuration's keys (``config.json``'s ``config`` entry)."""
        return self.saved["config"]

    @property
    def status(self):
        """``metrics.json``'s status (running, ok, nan, interrupted), else ``no metrics`` or ``corrupt``."""
        if self.problem is not None:
            return "corrupt"
        return "no metrics" if self.metrics is None else self.metrics["status"]


def read_run(run_dir, strict=True):
    """Read a run directory's ``config.json``, ``metrics.json`` and ``history.csv`` (if there).

    With ``strict=False`` an unusable ``metrics.json`` is no error but the record's ``problem``
    (status ``corrupt``), and an unreadable ``history.csv`` reads as empty.

    Raises
    ------
    UserError
        One line naming the file: ``config.json`` is missing, unreadable or not a run's
        configuration; with ``strict``, ``metrics.json`` is unreadable or has no status, or
        ``history.csv`` is unreadable.
    """
    rd = RunDir(run_dir)
    saved = read_json(rd.config)
    if saved is None:
        raise UserError(f"{rd.path} has no config.json: not a run directory of lstm_adv.train")
    if not (isinstance(saved, dict) and isinstance(saved.get("config"), dict)):
        raise UserError(f"{rd.config} is not an lstm_adv run configuration (no config entry)")
    metrics, problem = _read_metrics(rd.metrics)
    if problem and strict:
        raise UserError(f"{rd.metrics} is unusable ({problem})")
    history = ()
    try:
        with open(rd.history, encoding="utf-8", newline="") as fh:
            history = tuple(csv.DictReader(fh))
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        if strict:
            raise UserError(f"{rd.history} is unreadable ({_why(err)})") from None
    return RunRecord(rd.path, saved, metrics, history, problem)


def _read_metrics(path):
    """`_load_json` of a ``metrics.json``, which must be an object with a ``status``."""
    metrics, problem = _load_json(path)
    if metrics is not None and not (isinstance(metrics, dict) and isinstance(metrics.get("status"), str)):
        return None, "no status entry"
    return metrics, problem


def run_status(run_dir):
    """The status in a run directory's ``metrics.json``, or None (none yet, or unusable)."""
    metrics, _ = _read_metrics(RunDir(run_dir).metrics)
    return metrics and metrics["status"]


def find_runs(paths):
    """Every run directory under ``paths`` (folders searched for ``config.json``), each once.

    Returns
    -------
    records : list of RunRecord
        ``read_run(strict=False)`` of each, in each folder's sorted order, paths as found (not resolved).
    skipped : list of UserError
        One per directory whose ``config.json`` could not be read.

    Raises
    ------
    UserError
        If a path is not an existing folder, or no ``config.json`` is found.
    """
    dirs = {}
    for p in map(Path, paths):
        if not p.is_dir():
            raise UserError(f"{p} is not a folder of run directories ({'a file' if p.exists() else 'not found'})")
        for c in sorted(p.rglob("config.json")):
            dirs.setdefault(c.parent.resolve(), c.parent)
    if not dirs:
        raise UserError(f"no runs (no config.json) under {', '.join(map(str, paths))}")
    records, skipped = [], []
    for d in dirs.values():
        try:
            records.append(read_run(d, strict=False))
        except UserError as err:
            skipped.append(err)
    return records, skipped


def read_vocab(run_dir):
    """``vocab.json``, the id -> word list of the model's Wemb rows, or None when there is none."""
    words = read_json(RunDir(run_dir).vocab)
    if words is not None and not (isinstance(words, list) and all(isinstance(w, str) for w in words)):
        raise UserError(f"{RunDir(run_dir).vocab} is not a list of words")
    return words


def missing_word_attacks(run_dir, cfg):
    """The word attacks ``cfg`` asks (``word_attack=``) that a finished run's metrics.json lacks
    with these settings (method, sample size, sample seed, max_change); a list of method names.

    An attack of N reviews on a test split of fewer is recorded with the split's size.
    """
    files = RunDir(run_dir)
    done = (read_json(files.metrics) or {}).get("word_attack", {})
    n_test = int(((read_json(files.config) or {}).get("data") or {}).get("n_test") or 10 ** 12)
    return [m for m in cfg.word_attacks
            if not isinstance(done.get(m), dict)
            or (done[m].get("n"), done[m].get("seed"), done[m].get("max_change"))
            != (min(cfg.word_attack_n(m), n_test), cfg.word_attack_seed, cfg.word_attack_max_change)]

"""A run's directory: its lock, saved configuration, history, metrics and checkpoints.

Layout of ``runs/<name>/``::

    config.json      resolved configuration, library versions, PyTensor mode and floatX
    history.csv      one row per validation
    metrics.json     final errors, best update, wall time, status (running/ok/nan/interrupted)
    params.npz       best-on-validation parameters, tutorial names (allow_pickle=False)
    vocab.json       the id -> word list of the model's Wemb rows
    checkpoint.npz   everything needed to resume exactly (parameters, optimizer, RNG states ...)
    train.log        the log lines of every attempt
    .lock            held while a process trains in this directory

Every file is written atomically (temporary file, then rename): a kill or a full disk leaves
the previous version in place, never a half-written one.

``config.json`` keeps the local paths a run needs (data, compile cache). Files copied into
``experiments/results`` go through `publishable_config` / `publishable_text` first, which make
every absolute path relative to the repository root, or drop it to its file name (the data is
named by its SHA-256 in ``config.json`` anyway)::

    python -m lstm_adv.rundir publish runs/x/config.json experiments/results/x/config.json
"""

import csv
import errno
import fcntl
import io
import json
import os
import re
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .common.errors import UserError
from .common.utils import PACKAGE_ROOT, atomic_savez, atomic_write_json, atomic_write_text
from .config import FIELDS, RUN_IDENTITY_EXCLUDE

HISTORY_COLUMNS = ("update", "epoch", "train_cost", "train_err", "valid_err", "test_err")


class RunDir:
    """Paths and atomic writers for one run directory."""

    def __init__(self, path):
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.history = self.path / "history.csv"
        self.metrics = self.path / "metrics.json"
        self.params = self.path / "params.npz"
        self.checkpoint = self.path / "checkpoint.npz"
        self.checkpoint_prev = self.path / "checkpoint.prev.npz"
        self.log_path = self.path / "train.log"
        self.vocab = self.path / "vocab.json"
        self._lock_fh = None

    # -- concurrency ---------------------------------------------------------------------------
    def lock(self):
        """Take the directory's lock, or refuse: two processes never write one run."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fh = open(self.path / ".lock", "a+")
        except OSError as err:
            raise UserError(f"cannot create run directory {self.path}: {err.strerror}; choose another saveto=") from None
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise UserError(f"run directory {self.path} is in use by pid {holder}; wait for it to finish "
                            "or choose another saveto=") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_fh = fh

    def unlock(self):
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    # -- metadata ------------------------------------------------------------------------------
    def read_json(self, path):
        try:
            return json.loads(Path(path).read_text())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UserError(f"{path} is corrupt; delete it or rerun with resume=0") from None

    def check_same_run(self, cfg):
        """Refuse to resume a directory that holds a run of another configuration."""
        saved = self.read_json(self.config)
        if saved is None:
            return
        old = saved.get("config", {})
        for key in FIELDS:
            if key in RUN_IDENTITY_EXCLUDE or key not in old:
                continue
            if old[key] != getattr(cfg, key):
                raise UserError(f"{self.path} holds a run with {key}={old[key]!r}, not {getattr(cfg, key)!r}; "
                                "use another saveto= or resume=0 to start over")

    def write_config(self, record):
        atomic_write_json(self.config, record)

    def write_vocab(self, words):
        """The id -> word list the model was trained with (for decoding and the visualiser)."""
        atomic_write_json(self.vocab, list(words))

    def write_metrics(self, metrics):
        atomic_write_json(self.metrics, metrics)

    def write_history(self, rows):
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(HISTORY_COLUMNS)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else _fmt(row[c]) for c in HISTORY_COLUMNS])
        atomic_write_text(self.history, buf.getvalue())

    def log(self, line):
        print(line, flush=True)
        with open(self.log_path, "a") as fh:
            fh.write(line + "\n")

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, arrays, state):
        """Write a checkpoint atomically; the one before it is kept as ``checkpoint.prev.npz``."""
        payload = dict(arrays)
        payload["state_json"] = np.array(json.dumps(state))
        tmp = self.path / ".checkpoint.next.npz"
        atomic_savez(tmp, payload)
        if self.checkpoint.exists():
            os.replace(self.checkpoint, self.checkpoint_prev)
        os.replace(tmp, self.checkpoint)

    def load_checkpoint(self, warn):
        """The newest readable checkpoint as ``(arrays, state)``, or None when there is none.

        A truncated or corrupt ``checkpoint.npz`` is refused; the previous good one is used
        instead (with a warning), and neither file is deleted.
        """
        for path in (self.checkpoint, self.checkpoint_prev):
            if not path.exists():
                continue
            try:
                with np.load(path, allow_pickle=False) as f:
                    arrays = OrderedDict((k, f[k]) for k in f.files)
                state = json.loads(str(arrays.pop("state_json")))
                return arrays, state
            except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, json.JSONDecodeError) as err:
                warn(f"warning: {path} is unreadable ({type(err).__name__}: {err}); not using it")
        if self.checkpoint.exists() or self.checkpoint_prev.exists():
            raise UserError(f"every checkpoint in {self.path} is unreadable; rerun with resume=0 to start over")
        return None


def lock_holder(path):
    """The pid (as text) of the live process holding ``path``'s run lock, or None. Creates nothing."""
    try:
        fh = open(Path(path) / ".lock", "r")
    except OSError:
        return None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return fh.read().strip() or "another process"
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None


def is_disk_full(err):
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


def _fmt(v):
    return repr(float(v)) if isinstance(v, (float, np.floating)) else str(v)


# -- publishing: no local absolute paths in files committed to the repository ----------------------
def publishable_path(path, root=None):
    """An absolute path as it may appear in a published file.

    Inside the repository root: relative to it (``runs/x``). Beside it (under the root's parent
    folder, e.g. ``../shared/data/aclImdb.tar.gz``): relative too, so committed commands still
    run from the root. Anywhere else: ``.../`` and the file name only.
    """
    root = Path(root or PACKAGE_ROOT).resolve()
    p = Path(os.path.normpath(path))
    if not p.is_absolute():
        return str(path)
    for base in (root, root.parent):
        if base != Path(base.anchor):
            try:
                p.relative_to(base)
            except ValueError:
                continue
            return os.path.relpath(p, root)
    return f".../{p.name}"


_ABS_PATH = re.compile(r"(?<![^\s=(\"'\[])(/[^\s'\",;:=)(<>]+)")


def publishable_text(text, root=None):
    """``text`` (a commands file, a log, an HTML header) with every absolute path made publishable."""
    return _ABS_PATH.sub(lambda m: publishable_path(m.group(1), root), text)


def publishable_config(record, root=None):
    """A copy of a ``config.json`` record with no local absolute paths (see `publishable_path`).

    Every string is rewritten: a path, a ``key=/path`` argument, a path inside a longer string.
    The PyTensor compile directory is dropped (it names the local cache and nothing about the run).
    """
    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if k != "compiledir"}
        if isinstance(v, list):
            return [clean(x) for x in v]
        if isinstance(v, str):
            return publishable_text(v, root)
        return v
    return clean(record)


def publish(src, dest, root=None):
    """Copy a run file (``config.json``, a commands file, a log ...) to ``dest`` without local paths."""
    src, dest = Path(src), Path(dest)
    if src.suffix == ".json":
        atomic_write_json(dest, publishable_config(json.loads(src.read_text(encoding="utf-8")), root))
    else:
        atomic_write_text(dest, publishable_text(src.read_text(encoding="utf-8"), root))
    return dest


def main(argv=None):
    """``python -m lstm_adv.rundir publish SRC DEST [root=DIR]``."""
    argv = sys.argv[1:] if argv is None else argv
    root = next((a.split("=", 1)[1] for a in argv if a.startswith("root=")), None)
    args = [a for a in argv if not a.startswith("root=")]
    usage = ("usage: python -m lstm_adv.rundir publish SRC DEST [root=DIR]\n\n"
             "Copy a run's config.json (or a text file) to DEST with every local absolute path made "
             "relative to the repository (or root=DIR).")
    if any(a in ("-h", "--help", "help") for a in args):
        print(usage)
        return 0
    if len(args) != 3 or args[0] != "publish":
        print("error: " + usage.splitlines()[0], file=sys.stderr)
        return 2
    print(publish(args[1], args[2], root))
    return 0


if __name__ == "__main__":
    sys.exit(main())

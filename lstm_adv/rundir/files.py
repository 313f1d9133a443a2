"""A run directory's paths and writers: `RunDir` (its lock, config, history, metrics, checkpoints).

The layout is in `lstm_adv.rundir`. Every file is written atomically (temporary file, then
rename): a kill or a full disk leaves the previous version in place, never a half-written one.
"""

import csv
import io
import json
import os
import zipfile
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..common import faults
from ..common.errors import UserError
from ..common.lifecycle import RunLock
from ..common.utils import atomic_savez, atomic_write_json, atomic_write_text
from ..config import IDENTITY_KEYS

#: `RunDir.check_same_data`: each part of `lstm_adv.data.base.data_identity`, and how its change is said.
_DATA_CHANGES = (
    ("source_sha256", lambda a, b: f"its content (SHA-256 {str(a)[:12]}... now {str(b)[:12]}...)"),
    ("n_words", lambda a, b: f"its vocabulary size ({a} words, now {b})"),
    ("vocab_sha256", lambda a, b: "its vocabulary (other words, or other ids for them)"),
    ("label_names", lambda a, b: f"its label names ({a}, now {b})"),
)
HISTORY_COLUMNS = ("update", "epoch", "train_cost", "train_err", "valid_err", "test_err")
_START_OVER = "delete it, or rerun with resume=0 to start over"


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
        self.stdout_log = self.path / "stdout.log"   # the sweep launcher's: train's output, every attempt
        self.stderr_log = self.path / "stderr.log"
        self.vocab = self.path / "vocab.json"
        self._lock = RunLock(self.path)
        self._held_log = None   # a provisional start-up's log lines (`lock` to `keep`), not yet in train.log

    # -- concurrency: the run lock (`lstm_adv.common.lifecycle.RunLock`) -----------------------------
    def lock(self):
        """Take the directory's lock, or refuse: two processes never write one run.

        The start-up that follows is provisional until `keep`: log lines wait in memory, and
        `discard` (a refused start-up) removes the ``.lock`` and the folders this call made, so that
        a refused run leaves no new run directory, ``.lock`` or ``train.log``.
        """
        self._lock.acquire()
        self._held_log = []

    def keep(self):
        """End the provisional start-up (`lock`): the held log lines go to ``train.log``, and from
        now on the run directory stays whatever happens."""
        held, self._held_log = self._held_log or [], None
        self._lock.keep()
        if held:
            with open(self.log_path, "a") as fh:
                fh.write("".join(line + "\n" for line in held))

    def discard(self):
        """Undo a start-up refused before `keep`: drop the held log lines, remove the ``.lock`` and
        the folders `lock` made (a folder that existed before keeps everything it held), unlock."""
        self._held_log = None
        self._lock.discard()

    @property
    def provisional(self):
        """Whether a start-up holds the lock but has not called `keep` yet."""
        return self._lock.provisional

    def unlock(self):
        self._lock.release()

    @contextmanager
    def locked(self):
        """`lock` for the block, then `unlock`; a start-up refused or stopped before `keep` is discarded."""
        self.lock()
        try:
            yield self
        except BaseException:
            if self.provisional:
                self.discard()
            raise
        finally:
            self.unlock()

    def remove_temporary_files(self):
        """Remove the temporary files of a save that a kill interrupted (call it holding the lock)."""
        for tmp in list(self.path.glob(".*.tmp")) + [self.path / ".checkpoint.next.npz"]:
            tmp.unlink(missing_ok=True)

    def files(self):
        """Every file ``lstm_adv.train`` writes in the run directory (for the checks before it starts)."""
        return (self.config, self.history, self.metrics, self.params, self.checkpoint, self.checkpoint_prev,
                self.log_path, self.vocab, self.path / ".lock", self.path / ".checkpoint.next.npz")

    # -- metadata ------------------------------------------------------------------------------
    def check_same_run(self, cfg):
        """Refuse to resume a directory that holds a run of another configuration.

        Only the `lstm_adv.config.IDENTITY_KEYS` count; a key the saved configuration lacks (a
        run of an older version) is taken to match.

        Raises
        ------
        UserError
            If an identity key differs, or ``config.json`` is unreadable (`read_json`).
        """
        saved = read_json(self.config, _START_OVER)
        old = saved.get("config", {}) if isinstance(saved, dict) else {}
        for key in IDENTITY_KEYS:
            if key in old and old[key] != getattr(cfg, key):
                raise UserError(f"{self.path} holds a run with {key}={old[key]!r}, not {getattr(cfg, key)!r}; "
                                "use another saveto= or resume=0 to start over")

    def check_same_data(self, identity):
        """Refuse to resume a run whose data changed since it began (`lstm_adv.data.base.data_identity`).

        ``identity`` is what the data holds now; ``config.json``'s ``data_identity`` what the run
        was trained on. Called before anything is written, so the evidence stays.

        Returns
        -------
        bool
            False when ``config.json`` predates the record (nothing to compare: the caller says so).

        Raises
        ------
        UserError
            One line naming what changed (content, vocabulary, label names) and the way out.
        """
        saved = read_json(self.config, _START_OVER)
        old = saved.get("data_identity") if isinstance(saved, dict) else None
        if not isinstance(old, dict):
            return False
        changed = [what(old.get(key), identity.get(key)) for key, what in _DATA_CHANGES
                   if old.get(key) != identity.get(key)]
        if changed:
            raise UserError(f"{self.path} was trained on other data: " + ", ".join(changed)
                            + " changed since its checkpoint; rerun with resume=0 to start over, "
                            "or with another saveto= to keep this run")
        return True

    def finished(self):
        """Whether ``metrics.json`` says the run is done (status ok); an unreadable one is refused."""
        metrics = read_json(self.metrics, _START_OVER)
        return isinstance(metrics, dict) and metrics.get("status") == "ok"

    def write_config(self, record):
        atomic_write_json(self.config, record)

    def write_vocab(self, words):
        """The id -> word list the model was trained with (for decoding and the visualiser)."""
        atomic_write_json(self.vocab, list(words))

    def write_metrics(self, metrics):
        atomic_write_json(self.metrics, metrics)

    def write_params(self, params):
        """``params.npz``: the best parameters so far, the tutorial's names (loadable with allow_pickle=False)."""
        atomic_savez(self.params, params)

    def write_history(self, rows):
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(HISTORY_COLUMNS)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else _fmt(row[c]) for c in HISTORY_COLUMNS])
        atomic_write_text(self.history, buf.getvalue())

    def log(self, line):
        print(line, flush=True)
        if self._held_log is not None:   # a provisional start-up (`lock`): written by `keep`
            self._held_log.append(line)
            return
        with open(self.log_path, "a") as fh:
            fh.write(line + "\n")

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, arrays, state):
        """Write a checkpoint atomically; the one before it is kept as ``checkpoint.prev.npz``."""
        payload = dict(arrays)
        payload["state_json"] = np.array(json.dumps(state))
        tmp = self.path / ".checkpoint.next.npz"
        atomic_savez(tmp, payload)
        faults.reached("checkpoint")   # tests only: LSTM_ADV_FAULT (a kill between the write and the rename)
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


# -- reading a run's JSON files (`lstm_adv.rundir.records` reads whole runs) ---------------------
def read_json(path, fix=""):
    """A run's JSON file, or None when it does not exist; unreadable or not JSON: a `UserError`
    naming it (and ``fix``, what to do about it)."""
    value, problem = _load_json(path)
    if problem:
        raise UserError(f"{path} is unreadable ({problem})" + (f"; {fix}" if fix else ""))
    return value


def _load_json(path):
    """``(value, None)``; ``(None, None)`` when missing; ``(None, why)`` when unreadable or not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return None, _why(err)


def _why(err):
    return f"{type(err).__name__}: {err}".splitlines()[0]


def _fmt(v):
    return repr(float(v)) if isinstance(v, (float, np.floating)) else str(v)

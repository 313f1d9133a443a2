"""A run's directory: its lock, saved configuration, history, metrics and checkpoints.

Layout of ``runs/<name>/``::

    config.json      resolved configuration, library versions, PyTensor mode and floatX
    history.csv      one row per validation
    metrics.json     final errors, best update, wall time, status (running/ok/nan/interrupted)
    params.npz       best-on-validation parameters, tutorial names (allow_pickle=False)
    vocab.json       the id -> word list of the model's Wemb rows
    checkpoint.npz   everything needed to resume exactly (parameters, optimizer, RNG states ...: `save_loop_state`)
    train.log        the log lines of every attempt
    stdout.log       (sweep launcher) the process's output of every attempt, and stderr.log
    .lock            held while a process trains in this directory

Every file is written atomically (temporary file, then rename): a kill or a full disk leaves
the previous version in place, never a half-written one. Every command reads run directories
through `read_run` / `find_runs` (a `RunRecord` per run); a corrupt file is one `UserError`
naming it.

``config.json`` keeps the local paths a run needs (data, compile cache). Files copied into
``experiments/results`` go through `lstm_adv.common.publish` first, which makes
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
import sys
import time
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .common import faults
from .common.errors import UserError, cli_entry
from .common.options import help_text, option, parse_with_rest, positional_arg, wants_help
from .common.publish import publish
from .common.utils import atomic_savez, atomic_write_json, atomic_write_text
from .config import IDENTITY_KEYS

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
        self._lock_fh = None
        self._made = None       # provisional start-up (`lock` to `keep`): what it made (`discard`)
        self._held_log = None   # ... and its log lines, not yet in train.log

    # -- concurrency ---------------------------------------------------------------------------
    def lock(self):
        """Take the directory's lock, or refuse: two processes never write one run.

        The start-up that follows is provisional until `keep`: log lines wait in memory, and
        `discard` (a refused start-up) removes the ``.lock`` and the folders this call made, so that
        a refused run leaves no new run directory, ``.lock`` or ``train.log``.
        """
        for _ in range(10):
            made = _missing_folders(self.path)
            new_lock = not os.path.lexists(self.path / ".lock")
            anchor = made[-1].parent if made else self.path   # the folder whose entries we change
            times = _times(anchor)
            try:
                self.path.mkdir(parents=True, exist_ok=True)
                fh = open(self.path / ".lock", "a+")
            except OSError as err:
                _remove_folders(made)
                raise UserError(f"cannot create run directory {self.path}: {err.strerror}; "
                                "choose another saveto=") from None
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                fh.close()
                raise UserError(f"run directory {self.path} is in use by pid {holder}; wait for it to finish "
                                "or choose another saveto=") from None
            if _same_file(fh, self.path / ".lock"):
                break
            # A refused start-up removed the file we opened before we locked it: lock the new one.
            fh.close()
        else:
            raise UserError(f"cannot lock {self.path / '.lock'}: it keeps being replaced; choose another saveto=")
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_fh = fh
        self._made = (made, new_lock, anchor, times)
        self._held_log = []

    def keep(self):
        """End the provisional start-up (`lock`): the held log lines go to ``train.log``, and from
        now on the run directory stays whatever happens."""
        held, self._held_log, self._made = self._held_log or [], None, None
        if held:
            with open(self.log_path, "a") as fh:
                fh.write("".join(line + "\n" for line in held))

    def discard(self):
        """Undo a start-up refused before `keep`: drop the held log lines, remove the ``.lock`` and
        the folders `lock` made (a folder that existed before keeps everything it held), unlock."""
        made, self._made, self._held_log = self._made, None, None
        folders, new_lock, anchor, times = made or ((), False, None, None)
        if new_lock and self._lock_fh is not None:
            # Removed while we hold it: a process that opened it meanwhile sees that it is gone (`lock`).
            (self.path / ".lock").unlink(missing_ok=True)
        self.unlock()
        if _remove_folders(folders) and (new_lock or folders) and times is not None:
            try:   # the folder that was there: its times too, as they were
                os.utime(anchor, ns=times)
            except OSError:
                pass

    @property
    def provisional(self):
        """Whether a start-up holds the lock but has not called `keep` yet."""
        return self._made is not None

    def unlock(self):
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

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


# -- reading a run: the one reader of config.json, metrics.json, history.csv and vocab.json -------
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


# -- the training loop's state, as checkpoints hold it ---------------------------------------------
@dataclass
class LoopState:
    """Where the training loop stands: what a checkpoint saves and a resumed run continues from.

    The fields from ``uidx`` to ``estop`` (the tutorial's names) are the checkpoint's ``state_json``
    (`STATE_KEYS`); ``cpu_elapsed``, ``epoch_perm``, ``best_p`` and ``shuffle_rng`` are saved beside
    them (`save_loop_state`); the last four fields belong to one attempt and are never saved.
    """

    uidx: int = 0                      # updates done
    eidx: int = 0                      # epochs done
    batch_pos: int = 0                 # the next minibatch of the epoch's permutation
    history: list = field(default_factory=list)   # one row per validation (history.csv)
    bad_counter: int = 0               # the patience rule's count (lstm_adv.train.patience_rule)
    best_update: Optional[int] = None  # the update at which best_p was taken
    cost_sum: float = 0.0              # training cost summed since the last validation ...
    cost_n: int = 0                    # ... over this many updates
    elapsed: float = 0.0               # wall seconds of the earlier attempts
    estop: bool = False                # the patience rule stopped the run
    # CPU seconds of the earlier attempts (all threads of the training process); None when a resumed
    # checkpoint predates it. Unlike wall time it excludes waiting for a shared core or a SIGSTOP pause.
    cpu_elapsed: Optional[float] = 0.0
    epoch_perm: Optional[np.ndarray] = None   # this epoch's order of the training reviews
    best_p: Optional[dict] = None             # the best-on-valid parameters so far
    shuffle_rng: Optional[np.random.Generator] = None
    t_start: float = 0.0                      # time.time() when this attempt's loop began
    c_start: float = 0.0                      # time.process_time() then
    step_time: list = field(default_factory=lambda: [0.0, 0])  # seconds in updates (no compiling), updates
    disp_mark: list = field(default_factory=lambda: [0.0, 0])  # step_time at the last dispFreq line

    def wall_time(self):
        """Seconds of training over all attempts, up to now."""
        return self.elapsed + time.time() - self.t_start

    def cpu_time(self):
        """CPU seconds of the training process over all attempts, up to now; None if unknown."""
        return None if self.cpu_elapsed is None else self.cpu_elapsed + time.process_time() - self.c_start

    def ms_per_update(self):
        """Milliseconds per update in this attempt."""
        return 1000 * self.step_time[0] / max(self.step_time[1], 1)

    def metrics(self, status, **extra):
        """The ``metrics.json`` record: ``status`` (running, nan, interrupted, ok), the counts and
        times, and ``extra`` (the final errors, the attacks ...); the errors are None until then."""
        out = {"status": status, "train_err": None, "valid_err": None, "test_err": None,
               "best_update": self.best_update, "n_updates": self.uidx, "n_epochs": self.eidx,
               "wall_time_s": round(self.wall_time(), 2), "ms_per_update": round(self.ms_per_update(), 2)}
        cpu = self.cpu_time()
        out["cpu_time_s"] = None if cpu is None else round(cpu, 2)
        out.update(extra)
        return out


STATE_KEYS = ("uidx", "eidx", "batch_pos", "history", "bad_counter", "best_update", "cost_sum", "cost_n",
              "elapsed", "estop")


def save_loop_state(run, model, state, unlab=None):
    """Write ``checkpoint.npz`` (`RunDir.save_checkpoint`), then the best parameters so far to ``params.npz``.

    The checkpoint holds the arrays ``param/<name>``, ``opt/<name>``, ``best/<name>`` (once there
    are best parameters), ``epoch_perm`` (inside an epoch) and ``unlab/perm`` (``unlabelled=N``),
    and ``state_json``: the `STATE_KEYS` of ``state`` (``elapsed`` up to now), ``cpu_elapsed`` (CPU
    seconds up to now; left out when unknown, after resuming a checkpoint without it), ``unlab`` (the
    unlabelled stream's position and RNG, ``unlabelled=N`` only), ``rng_shuffle`` and one
    ``rng_<name>`` per random stream of the model (NumPy bit-generator states), in this order.

    Parameters
    ----------
    run : RunDir
    model : lstm_adv.graph.Model
        Its ``get_params``, ``get_opt_state`` and ``rngs`` (shared NumPy generators) are saved.
    state : LoopState
    unlab : lstm_adv.data.BatchStream, optional
        The unlabelled reviews' stream (``unlabelled=N``).
    """
    arrays = OrderedDict(("param/" + k, v) for k, v in model.get_params().items())
    arrays.update(("opt/" + k, v) for k, v in model.get_opt_state().items())
    if state.best_p is not None:
        arrays.update(("best/" + k, v) for k, v in state.best_p.items())
    if state.epoch_perm is not None:
        arrays["epoch_perm"] = state.epoch_perm
    saved = {k: getattr(state, k) for k in STATE_KEYS}
    saved["elapsed"] = state.wall_time()
    cpu = state.cpu_time()
    if cpu is not None:
        saved["cpu_elapsed"] = cpu
    if unlab is not None:
        unlab_arrays, saved["unlab"] = unlab.state()
        arrays.update(("unlab/" + k, v) for k, v in unlab_arrays.items())
    saved["rng_shuffle"] = state.shuffle_rng.bit_generator.state
    saved.update(("rng_" + k, v.get_value(borrow=True).bit_generator.state) for k, v in model.rngs.items())
    run.save_checkpoint(arrays, saved)
    if state.best_p is not None:
        atomic_savez(run.params, state.best_p)


def restore_loop_state(run, model, unlab=None):
    """The `LoopState` of the newest readable checkpoint (format: `save_loop_state`), or None.

    Parameters
    ----------
    run : RunDir
    model : lstm_adv.graph.Model
        Its parameters, optimizer state and random streams are set from the checkpoint.
    unlab : lstm_adv.data.BatchStream, optional
        Its position and RNG are set from the checkpoint.

    Returns
    -------
    LoopState or None
        None when the run directory holds no checkpoint (an unreadable one: see `RunDir.load_checkpoint`).
    """
    resumed = run.load_checkpoint(run.log)
    if resumed is None:
        return None
    arrays, saved = resumed
    model.set_params(_prefixed(arrays, "param/"))
    model.set_opt_state(_prefixed(arrays, "opt/"))
    for name, var in model.rngs.items():
        var.set_value(_generator(saved["rng_" + name]))
    if unlab is not None:
        unlab.restore(_prefixed(arrays, "unlab/"), saved["unlab"])
    return LoopState(**{k: saved[k] for k in STATE_KEYS}, cpu_elapsed=saved.get("cpu_elapsed"),
                     epoch_perm=arrays.get("epoch_perm"),
                     best_p=_prefixed(arrays, "best/") or None, shuffle_rng=_generator(saved["rng_shuffle"]))


def _prefixed(arrays, prefix):
    return OrderedDict((k[len(prefix):], v) for k, v in arrays.items() if k.startswith(prefix))


def _generator(state):
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return rng


def _missing_folders(path):
    """The folders on the way to ``path`` (itself included) that do not exist yet, the deepest first."""
    missing = []
    p = Path(os.path.abspath(path))
    while not os.path.lexists(p) and p.parent != p:
        missing.append(p)
        p = p.parent
    return missing


def _remove_folders(folders):
    """Remove ``folders`` (the deepest first) while they are empty: what another process put there
    stays. Returns whether all of them are gone."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            return False
    return True


def _times(path):
    """``(atime_ns, mtime_ns)`` of ``path``, or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_atime_ns, st.st_mtime_ns


def _same_file(fh, path):
    """Whether the open file ``fh`` is still the file at ``path``."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    here = os.fstat(fh.fileno())
    return (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino)


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


@dataclass(frozen=True)
class PublishOptions:
    """The keys of ``python -m lstm_adv.rundir publish``."""

    root: str = option("", "the folder local paths are made relative to (default: the repository)")


@cli_entry
def main(argv):
    """``python -m lstm_adv.rundir publish SRC DEST [root=DIR]``; returns the exit status."""
    usage = "python -m lstm_adv.rundir publish SRC DEST [root=DIR]"
    if wants_help(argv):
        print(help_text(PublishOptions, usage, "Copy a run's config.json (or a text file) to DEST with every local "
                        "absolute path made\nrelative to the repository (or root=DIR)."))
        return 0
    opts, args = parse_with_rest(PublishOptions, argv, positional=positional_arg)
    if len(args) != 3 or args[0] != "publish":
        raise UserError("usage: " + usage)
    print(publish(args[1], args[2], opts.root or None))
    return 0


if __name__ == "__main__":
    sys.exit(main())

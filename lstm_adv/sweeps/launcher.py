"""Sweeps as a file of commands: plan them, run them here N at a time, or render a Slurm job array.

Usage::

    python -m lstm_adv.sweep plan table1 [seeds=5] [eps_grid=0,0.1,...] [sweep_dir=DIR] [out=FILE] [key=value ...]
    python -m lstm_adv.sweep plan random [draws=20] [search_seed=0] [sweep_dir=DIR] [out=FILE] [key=value ...]
    python -m lstm_adv.sweep run COMMANDS_FILE [jobs=2] [retries=2] [compiledir=ROOT]
    python -m lstm_adv.sweep slurm COMMANDS_FILE [max_parallel=4] [time=24:00:00] [cpus=1] [mem=]
                                   [partition=] [job_name=] [compiledir=ROOT] [out=FILE]
    python -m lstm_adv.sweep summary SWEEP_DIR      # the random search: best adversarial vs best plain
                                                    # (summary.md, runs.csv, random_search.png)

A *commands file* holds one ``python -m lstm_adv.train key=value ...`` (or ``lstm-adv-train
key=value ...``) command per line, each with
its own run directory (``saveto=``). Blank lines and ``#`` comments are ignored everywhere (the
launcher, the Slurm script). Whatever runs the lines -- this launcher, GNU parallel over ssh, a
Slurm array -- the run directories make the sweep resumable: ``lstm_adv.train`` exits at once for
a finished run (status ok) and continues an interrupted one from its checkpoint.

``plan`` writes the commands file (default ``<sweep_dir>/commands.txt``) and prints its path.
Every extra ``key=value`` is a training key and passes through to every run; keys the grid itself
sets (table1: eps, seed, saveto) are refused. The default sweep directory is ``runs/<NAME>``, with
the pass-through keys appended (``runs/table1-max_epochs=5``) so that a quick look never mixes
with the full sweep.

Before anything starts, ``plan``, ``run`` and ``slurm`` check every command with
`lstm_adv.config.parse_args`: one typo refuses the whole sweep with one line and exit status 2.

``run`` starts up to ``jobs`` training processes at once. Each gets its own PyTensor compile
directory, ``base_compiledir=ROOT/<host>/slot-K`` (and ``NUMBA_CACHE_DIR`` under it), where
slot K is held with a file lock for the whole sweep, so concurrent processes never share one
and later runs in the same slot reuse its compiled code (ROOT: ``compiledir=``, else
``$LSTM_ADV_COMPILEDIR``, else ``~/.cache/lstm_adv/pytensor``). Per run it appends the process's
output to ``stdout.log`` and ``stderr.log`` in the run directory (a new slot's cache starts as
a copy of a used one). Runs already finished are skipped; runs that ended in NaN earlier
(status nan) are reported, not rerun (delete the run directory to try again), and so is a run
directory holding a run of another configuration. A run that crashes or is killed is retried up
to ``retries`` times (it resumes from its checkpoint); exit 2 (bad input) and exit 3 (NaN cost) are reported, never
retried. Exit status: 0 all ok, 1 some runs failed (listed at the end), 2 refused,
130/143 interrupted (SIGINT/SIGTERM reach the runs, which checkpoint; run again to resume).
"""

import fcntl
import json
import math
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from . import config as config_mod
from . import checks
from .errors import UserError, cli_entry
from .rundir import RunDir, lock_holder
from .utils import atomic_write_text

EXIT_FAILED = 1
EXIT_NAN = 3

# --------------------------------------------------------------------------- the grids
#: The paper's Table 1 grid (SPEC section 5): alpha = 0.5, these eps (0 = the plain model).
TABLE1_EPS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 15.0)
TABLE1_ALPHA = 0.5
#: Keys every Table 1 run gets unless the command line sets them: the configuration closest to
#: what the authors ran (their word2vec init, README "Training"), with the epoch budget capped at
#: 150 of their 1000: in the ablation (experiments/results/ablation/) the runs with these vectors
#: left the one-class plateau by epoch 32 (provisional: few runs so far). ``preset=`` and
#: ``max_epochs=100`` give the tutorial-init table (experiments/results/table1-tutorial-init/).
TABLE1_DEFAULT_KEYS = ("preset=authors", "max_epochs=150")

#: The random search (paper section 5.2: "random hyperparameter sweeps in parallel between
#: adversarial and non-adversarial models", never run by its authors). Each draw samples every
#: key below; it is then run twice with the same values: adversarial (the drawn alpha, eps) and
#: plain (eps=0). Distributions:
#:   ("choice", values)           uniform over the values
#:   ("uniform", lo, hi)          uniform real
#:   ("log", lo, hi)              log-uniform real
#:   ("zero_or_log", p0, lo, hi)  0 with probability p0, else log-uniform
#:   ("int", lo, hi)              uniform integer in [lo, hi]
#: ``lrate`` is drawn always but written only for optimizer=sgd (the others ignore it, as in the
#: tutorial). A pass-through key=value fixes that key for every draw (the draws stay the same).
RANDOM_SPACE = {
    "hdim": ("choice", (32, 64, 128, 256)),
    "wdim": ("choice", (32, 64, 128, 256)),
    "reg": ("zero_or_log", 0.5, 1e-5, 1e-1),
    "clip": ("choice", (0.0, 1.0, 5.0, 10.0)),
    "optimizer": ("choice", ("adadelta", "rmsprop", "sgd")),
    "lrate": ("log", 1e-2, 1.0),
    "batch_size": ("choice", (16, 32, 64)),
    "use_dropout": ("choice", (0, 1)),
    "alpha": ("uniform", 0.1, 0.9),
    "eps": ("log", 0.01, 2.0),
    "adv_emb_grad": ("choice", (0, 1)),
    "seed": ("int", 1, 999999),
}

# Sweep options: never training keys.
PLAN_OPTIONS = {"seeds", "eps_grid", "draws", "search_seed", "sweep_dir", "out"}
RUN_OPTIONS = {"jobs", "retries", "compiledir"}
SLURM_OPTIONS = {"max_parallel", "time", "cpus", "mem", "partition", "job_name", "compiledir", "out"}
assert not (PLAN_OPTIONS | RUN_OPTIONS | SLURM_OPTIONS) & set(config_mod.FIELDS)

# Pass-through keys that do not change what a run computes: left out of the default sweep dir.
_NOT_IN_DIR_NAME = {"progress", "data_path", "download", "dispFreq", "saveFreq", "valid_test", "device", "mode"}

# --------------------------------------------------------------------------- small helpers
def _options(argv, allowed, what):
    """Split ``key=value`` arguments into sweep options (``allowed``) and training keys."""
    opts, keys = {}, []
    for arg in argv:
        if "=" not in arg:
            raise UserError(f"argument {arg!r} is not key=value ({what})")
        name = arg.split("=", 1)[0]
        if name in allowed:
            if name in opts:
                checks.no_duplicates([(name, opts[name]), (name, arg.split("=", 1)[1])])
            opts[name] = arg.split("=", 1)[1]
        else:
            keys.append(arg)
    return opts, keys


def _int_option(opts, name, default, minimum):
    raw = opts.get(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise UserError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise UserError(f"{name}={value} must be >= {minimum}")
    return value


def _refuse_train_keys(keys, command):
    if keys:
        raise UserError(f"unknown option {keys[0].split('=', 1)[0]!r} for `sweep {command}`; training keys "
                        "belong in the commands file (pass them to `sweep plan`)")


def _num(v):
    """A number as the commands file writes it: 0.5, 15.0, 3, 0.0001."""
    if isinstance(v, float):
        return repr(float(f"{v:.4g}"))
    return str(v)


def _unless_given(defaults, keys):
    """The ``key=value`` defaults whose key the pass-through ``keys`` do not set (a key is given once)."""
    given = {k.split("=", 1)[0] for k in keys}
    return [d for d in defaults if d.split("=", 1)[0] not in given]


def _hms(seconds):
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def command_line(keys):
    """One line of a commands file: ``python -m lstm_adv.train`` and the keys, shell-quoted."""
    return " ".join(["python", "-m", "lstm_adv.train"] + [shlex.quote(k) for k in keys])


def default_compiledir_root():
    return Path(os.environ.get("LSTM_ADV_COMPILEDIR") or Path.home() / ".cache" / "lstm_adv" / "pytensor")


def compile_env(slot_dir, env=None):
    """``env`` (default ``os.environ``) with PyTensor's and Numba's caches in ``slot_dir``."""
    env = dict(os.environ if env is None else env)
    flags = [f for f in env.get("PYTENSOR_FLAGS", "").split(",")
             if f.strip() and f.split("=", 1)[0].strip() not in ("compiledir", "base_compiledir")]
    env["PYTENSOR_FLAGS"] = ",".join(flags + [f"base_compiledir={slot_dir}"])
    env["NUMBA_CACHE_DIR"] = str(Path(slot_dir) / "numba")
    return env


# --------------------------------------------------------------------------- plan
def _sweep_dir(name, opts, keys, extra_name=()):
    if "sweep_dir" in opts:
        return Path(opts["sweep_dir"])
    parts = list(extra_name) + [k for k in keys if k.split("=", 1)[0] not in _NOT_IN_DIR_NAME]
    suffix = ("-" + ",".join(parts).replace(os.sep, "_")) if parts else ""
    return Path("runs") / (name + suffix)


def plan_table1(opts, keys):
    """Table 1: alpha=0.5, every eps of the grid, seeds 1..N. Returns (sweep_dir, commands)."""
    fixed = {"eps", "seed", "saveto", "runs_dir"}
    for k in keys:
        name = k.split("=", 1)[0]
        if name in fixed:
            raise UserError(f"{name} is set by the table1 grid; drop {k!r}"
                            + (" (use eps_grid=0,0.5,... for other eps)" if name == "eps" else "")
                            + (" (use seeds=N: seeds 1..N)" if name == "seed" else ""))
    seeds = _int_option(opts, "seeds", 5, 1)
    grid = TABLE1_EPS
    if "eps_grid" in opts:
        try:
            grid = tuple(float(v) for v in opts["eps_grid"].split(",") if v.strip())
        except ValueError:
            raise UserError(f"eps_grid={opts['eps_grid']!r} must be comma-separated numbers, e.g. eps_grid=0,0.5") from None
        if not grid:
            raise UserError("eps_grid= is empty; e.g. eps_grid=0,0.5")
    root = _sweep_dir("table1", opts, keys)
    commands = []
    # Seed-major: an interrupted sweep leaves whole rows of the table, not a few columns.
    for seed in range(1, seeds + 1):
        for eps in grid:
            run_dir = root / f"eps={_num(float(eps))}" / f"seed={seed}"
            commands.append(_unless_given([*TABLE1_DEFAULT_KEYS, f"alpha={TABLE1_ALPHA}", f"eps={_num(float(eps))}",
                                           f"seed={seed}", "progress=0"], keys) + keys + [f"saveto={run_dir}"])
    return root, commands


def draw_config(search_seed, index):
    """Draw ``index`` of the random search: {key: value} over `RANDOM_SPACE` (same for any number of draws)."""
    rng = np.random.default_rng([int(search_seed), int(index)])
    out = {}
    for key, spec in RANDOM_SPACE.items():
        kind = spec[0]
        if kind == "choice":
            v = spec[1][int(rng.integers(len(spec[1])))]
        elif kind == "uniform":
            v = float(rng.uniform(spec[1], spec[2]))
        elif kind == "log":
            v = float(math.exp(rng.uniform(math.log(spec[1]), math.log(spec[2]))))
        elif kind == "zero_or_log":
            zero = rng.random() < spec[1]
            v = float(math.exp(rng.uniform(math.log(spec[2]), math.log(spec[3]))))
            v = 0.0 if zero else v
        elif kind == "int":
            v = int(rng.integers(spec[1], spec[2] + 1))
        else:  # pragma: no cover - a programming error in RANDOM_SPACE
            raise ValueError(kind)
        out[key] = float(f"{v:.3g}") if isinstance(v, float) else v
    if out["optimizer"] != "sgd":
        del out["lrate"]
    return out


def plan_random(opts, keys):
    """The random search: per draw, one adversarial and one plain (eps=0) run with the same draw."""
    for k in keys:
        if k.split("=", 1)[0] in ("saveto", "runs_dir"):
            raise UserError(f"{k.split('=', 1)[0]} is set by the random search; use sweep_dir=DIR")
    draws = _int_option(opts, "draws", 20, 1)
    search_seed = _int_option(opts, "search_seed", 0, 0)
    root = _sweep_dir("random", opts, keys, [f"search_seed={search_seed}"] if search_seed else [])
    fixed = {k.split("=", 1)[0] for k in keys}
    commands = []
    for i in range(draws):
        drawn = {k: v for k, v in draw_config(search_seed, i).items() if k not in fixed}
        for kind in ("adv", "plain"):
            values = dict(drawn)
            if kind == "plain":
                values["eps"] = 0.0
            run_dir = root / f"draw={i:03d}" / kind
            commands.append(_unless_given([f"{k}={_num(v)}" for k, v in values.items()] + ["progress=0"], keys)
                            + keys + [f"saveto={run_dir}"])
    return root, commands


PLANS = {"table1": plan_table1, "random": plan_random}


def plan(argv):
    """``sweep plan NAME ...``: write the commands file; returns its path."""
    if not argv or argv[0] not in PLANS:
        raise UserError(f"sweep plan needs a grid name: {' or '.join(PLANS)}")
    name, rest = argv[0], argv[1:]
    opts, keys = _options(rest, PLAN_OPTIONS, "sweep plan")
    config_mod.parse_args(keys)  # a typo in a pass-through key: one line, before anything
    root, commands = PLANS[name](opts, keys)
    lines = [command_line(c) for c in commands]
    parse_commands(lines, "the planned sweep")  # a bad pass-through key refuses the plan
    out = Path(opts.get("out") or root / "commands.txt")
    checks.writable_dir("sweep_dir", root)
    checks.writable_file("out", out)
    try:
        atomic_write_text(out, "\n".join(lines) + "\n")
    except OSError as err:
        raise UserError(f"cannot write {out}: {err.strerror}") from None
    print(f"{name}: {len(lines)} runs under {root}; commands in {out}", file=sys.stderr)
    return out


# --------------------------------------------------------------------------- commands files
class Command:
    """One line of a commands file: its text, training keys, configuration and run directory."""

    def __init__(self, lineno, text, keys, cfg):
        self.lineno, self.text, self.keys, self.cfg = lineno, text, keys, cfg
        self.run_dir = cfg.run_dir()
        self.name = str(self.run_dir)


def _is_python(token):
    base = os.path.basename(token)
    return base.startswith("python") and all(c.isdigit() or c == "." for c in base[len("python"):])


def parse_commands(lines, source):
    """Check every line; returns a list of `Command` (blank and ``#`` lines skipped).

    Raises
    ------
    UserError
        On the first line that is not ``python -m lstm_adv.train key=value ...`` (or the console
        script's ``lstm-adv-train key=value ...``), has a bad key
        or value, or shares its run directory with another line.
    """
    commands, seen = [], {}
    for lineno, text in enumerate(lines, 1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{source} line {lineno}"
        try:
            tokens = shlex.split(text)
        except ValueError as err:
            raise UserError(f"{where}: {err}") from None
        if len(tokens) >= 3 and _is_python(tokens[0]) and tokens[1:3] == ["-m", "lstm_adv.train"]:
            keys = tokens[3:]
        elif tokens and os.path.basename(tokens[0]) == "lstm-adv-train":   # the console script
            keys = tokens[1:]
        else:
            raise UserError(f"{where} is not a `python -m lstm_adv.train key=value ...` (or `lstm-adv-train "
                            f"key=value ...`) command: {text[:80]!r}")
        try:
            cfg = config_mod.parse_args(keys)
        except UserError as err:
            raise UserError(f"{where}: {err}") from None
        cmd = Command(lineno, text, keys, cfg)
        key = os.path.abspath(cmd.run_dir)
        if key in seen:
            raise UserError(f"{where} has the run directory {cmd.run_dir} of line {seen[key]}; "
                            "every run needs its own saveto=")
        seen[key] = lineno
        commands.append(cmd)
    if not commands:
        raise UserError(f"{source} holds no commands")
    return commands


def read_commands(path):
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read the commands file {path}: {getattr(err, 'strerror', None) or err}") from None
    return parse_commands(lines, str(path))


def run_status(run_dir):
    """The ``status`` in a run directory's metrics.json, or None (none yet, or unreadable)."""
    try:
        status = json.loads((Path(run_dir) / "metrics.json").read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None
    return status if isinstance(status, str) else None


# --------------------------------------------------------------------------- run (local launcher)
def classify(rc, stopping):
    """What an attempt's exit status means: ``ok``, ``nan``, ``error``, ``interrupted`` or ``retry``."""
    if rc == 0:
        return "ok"
    if rc == EXIT_NAN:
        return "nan"
    if rc == 2:
        return "error"
    if stopping:
        return "interrupted"
    return "retry"   # a crash, a kill (OOM killer, SIGKILL), a signal from elsewhere


def _describe_rc(rc):
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return {2: "exit 2 (bad input)", 3: "exit 3 (NaN cost)"}.get(rc, f"exit {rc}")


def _tail_lines(path, start=0):
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def _why(run_dir, err_at, rc):
    """One line saying why an attempt failed: train's ``error:`` line, its NaN line, else stderr's last."""
    if rc < 0:
        return ""   # killed: its last output says nothing about why
    train_log = {EXIT_NAN: "bad cost", 130: "interrupted by signal", 143: "interrupted by signal"}
    if rc in train_log:
        lines = [ln for ln in _tail_lines(Path(run_dir) / "train.log") if ln.startswith(train_log[rc])]
        if lines:
            return lines[-1][:200]
    err = _tail_lines(Path(run_dir) / "stderr.log", err_at)
    errors = [ln for ln in err if ln.startswith("error:")]
    return (errors or err or [""])[-1][:200]


class SlotPool:
    """``n`` compile-cache slots under ``root/<host>/``, each held with a file lock while we run."""

    def __init__(self, root, n):
        self.dir = Path(root) / socket.gethostname().split(".")[0]
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create the compile cache folder {self.dir}: {err.strerror}; "
                            "set compiledir=DIR") from None
        self.free, self._handles = [], []
        k = 0
        while len(self.free) < n:
            fh = open(self.dir / f"slot-{k}.lock", "a")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
            else:
                self._handles.append(fh)
                self.free.append(self.dir / f"slot-{k}")
            k += 1
        self._seed()

    def _seed(self):
        """Start each of our never-used slots as a copy of one of our used ones (compiled code is
        reusable, and a cold cache costs minutes per slot). Only slots we hold are read or written."""
        warm = next((d for d in self.free if d.is_dir()), None)
        if warm is None:
            return
        for slot in self.free:
            if slot.exists():
                continue
            tmp = slot.with_name(f".{slot.name}.seeding-{os.getpid()}")
            try:
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.copytree(warm, tmp, symlinks=True, ignore=shutil.ignore_patterns("lock_dir", "*.lock"))
                os.replace(tmp, slot)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)  # a cold slot is slower, not wrong

    def release(self):
        for fh in self._handles:
            fh.close()
        self._handles = []


class _Adopted:
    """A run that another process (e.g. a killed launcher's child) is training: we wait for its
    lock to be released and take its final status from metrics.json, like an exit status."""

    def __init__(self, run_dir, pid):
        self.run_dir, self.pid = run_dir, pid

    def poll(self):
        if lock_holder(self.run_dir) is not None:
            return None
        return {"ok": 0, "nan": EXIT_NAN}.get(run_status(self.run_dir), 1)   # else: resume it ourselves

    def send_signal(self, signum):
        pass   # not ours to stop

    kill = send_signal


class Launcher:
    """Runs `Command` s ``jobs`` at a time; see the module docstring for the policy."""

    def __init__(self, commands, jobs=2, retries=2, compiledir=None, out=sys.stdout):
        self.commands, self.jobs, self.retries = commands, jobs, retries
        self.compiledir = Path(compiledir) if compiledir else default_compiledir_root()
        self.out = out
        self.stopping = None
        self.results = {}      # Command -> (outcome, detail)
        self.running = {}      # slot -> (proc, cmd, attempt, started, stderr offset)
        # Progress lines name runs relative to the folder that holds them all.
        dirs = [os.path.abspath(c.run_dir) for c in commands]
        self.root = os.path.commonpath(dirs) if len(dirs) > 1 else os.path.dirname(dirs[0])
        if self.root in dirs:
            self.root = os.path.dirname(self.root)
        for cmd, d in zip(commands, dirs):
            cmd.name = os.path.relpath(d, self.root)

    def say(self, line):
        print(line, file=self.out, flush=True)

    def _on_signal(self, signum, frame):
        if self.stopping is None:
            self.stopping = signum
        else:  # a second signal: stop now
            for proc, *_ in self.running.values():
                if proc.poll() is None:
                    proc.kill()

    def run(self):
        total = len(self.commands)
        todo, failed_before = [], 0
        for cmd in self.commands:
            # As lstm_adv.train decides (resume=1): a folder holding another configuration is bad
            # input; a finished run is skipped; a NaN run is a finished failure.
            status = None
            if cmd.cfg.resume:
                try:
                    RunDir(cmd.run_dir).check_same_run(cmd.cfg)
                except UserError as err:
                    self.results[cmd] = ("error", f"not started: {err}")
                    failed_before += 1
                    continue
                status = run_status(cmd.run_dir)
            if status == "ok":
                self.results[cmd] = ("ok", "finished earlier")
            elif status == "nan":
                self.results[cmd] = ("nan", "ended in NaN earlier (status nan); delete the run directory to retry")
                failed_before += 1
            else:
                todo.append(cmd)
        done = total - len(todo)
        self.say(f"{total} runs under {self.root}: {done - failed_before} already finished, {failed_before} failed "
                 f"(nan earlier, or bad input), {len(todo)} to run, {self.jobs} at a time "
                 f"(compile caches in {self.compiledir})")
        if not todo:
            return self.summary()

        pool = SlotPool(self.compiledir, min(self.jobs, len(todo)))
        attempts = {cmd: 0 for cmd in todo}
        queue = list(todo)
        t0, durations = time.time(), []
        handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        forwarded = False
        try:
            while (queue and not self.stopping) or self.running:
                if self.stopping and not forwarded:
                    forwarded = True
                    self.say(f"stopping (signal {self.stopping}): the running runs checkpoint and exit; "
                             "run the same command again to resume")
                    for proc, *_ in self.running.values():
                        if proc.poll() is None:
                            proc.send_signal(signal.SIGTERM)
                while queue and pool.free and not self.stopping:
                    cmd = queue.pop(0)
                    slot = pool.free.pop(0)
                    holder = lock_holder(cmd.run_dir)
                    if holder is not None:
                        self.running[slot] = self._adopt(cmd, holder)
                        continue
                    attempts[cmd] += 1
                    self.running[slot] = self._start(cmd, slot, attempts[cmd])
                time.sleep(0.1)
                for slot, (proc, cmd, attempt, started, err_at) in list(self.running.items()):
                    if self.stopping and isinstance(proc, _Adopted):
                        del self.running[slot]   # not ours: leave it running
                        pool.free.append(slot)
                        self.results[cmd] = ("interrupted", f"still running in pid {proc.pid}, not waited for")
                        continue
                    rc = proc.poll()
                    if rc is None:
                        continue
                    if rc == 2 and not isinstance(proc, _Adopted):
                        holder = lock_holder(cmd.run_dir)
                        if holder is not None:   # another process took the lock just before ours
                            self.running[slot] = self._adopt(cmd, holder)
                            continue
                    del self.running[slot]
                    pool.free.append(slot)
                    elapsed = time.time() - started
                    outcome = classify(rc, self.stopping)
                    if outcome == "ok" and run_status(cmd.run_dir) != "ok":
                        outcome = "retry"
                    detail = _describe_rc(rc)
                    last = _why(cmd.run_dir, err_at, rc)
                    if outcome == "retry" and attempts[cmd] <= self.retries:
                        self.say(f"       {cmd.name}: {detail} after {_hms(elapsed)}; retrying "
                                 f"(attempt {attempts[cmd] + 1} of {self.retries + 1}, resumes from its checkpoint)")
                        queue.insert(0, cmd)
                        continue
                    if outcome == "retry":
                        outcome = "failed"
                    if outcome != "interrupted":
                        done += 1
                        durations.append(elapsed)
                    self.results[cmd] = (outcome, detail + (f": {last}" if last and outcome != "ok" else ""))
                    eta = self._eta(queue, durations)
                    self.say(f"[{done:>{len(str(total))}}/{total}] {outcome:<6} {cmd.name} ({_hms(elapsed)}); "
                             f"elapsed {_hms(time.time() - t0)}" + (f", {eta}" if eta else ""))
        finally:
            for s, h in handlers.items():
                signal.signal(s, h)
            pool.release()
        rc = self.summary()
        return 128 + self.stopping if self.stopping else rc

    def _eta(self, queue, durations):
        """Time left: the mean run time for each queued run and the rest of each running one, over the slots."""
        if not durations or not (queue or self.running):
            return ""
        mean = float(np.mean(durations))
        now = time.time()
        work = mean * len(queue) + sum(max(mean - (now - r[3]), 0.0) for r in self.running.values())
        return f"ETA {_hms(work / min(self.jobs, len(queue) + len(self.running)))}"

    def _start(self, cmd, slot, attempt):
        cmd.run_dir.mkdir(parents=True, exist_ok=True)
        header = (f"=== attempt {attempt}, {time.strftime('%Y-%m-%d %H:%M:%S')}, slot {slot.name}: "
                  f"{cmd.text}\n")
        with open(cmd.run_dir / "stdout.log", "a") as out, open(cmd.run_dir / "stderr.log", "a") as err:
            out.write(header)
            err.write(header)
            out.flush()
            err.flush()
            err_at = err.tell()
            proc = subprocess.Popen([sys.executable, "-m", "lstm_adv.train", *cmd.keys], stdout=out, stderr=err,
                                    stdin=subprocess.DEVNULL, env=compile_env(slot))
        self.say(f"start  {cmd.name}" + (f" (attempt {attempt})" if attempt > 1 else "") + f" [{slot.name}]")
        return proc, cmd, attempt, time.time(), err_at

    def _adopt(self, cmd, pid):
        self.say(f"wait   {cmd.name}: being trained by pid {pid} (started elsewhere); waiting for it")
        try:
            err_at = (cmd.run_dir / "stderr.log").stat().st_size
        except OSError:
            err_at = 0
        return _Adopted(cmd.run_dir, pid), cmd, 0, time.time(), err_at

    def summary(self):
        """Print the closing summary; returns 0 if every run is ok, else 1."""
        bad = [(c, r) for c, r in self.results.items() if r[0] not in ("ok", "interrupted")]
        n_ok = sum(1 for r in self.results.values() if r[0] == "ok")
        unfinished = len(self.commands) - n_ok - len(bad)
        self.say(f"summary: {n_ok} of {len(self.commands)} runs ok, {len(bad)} failed"
                 + (f", {unfinished} not finished (run the same command again to resume)" if unfinished else ""))
        for cmd, (outcome, detail) in bad:
            self.say(f"  {outcome:<11} {cmd.run_dir}: {detail}  (logs: stderr.log, train.log there)")
        return EXIT_FAILED if bad else 0


def _is_file_arg(arg):
    try:
        return "=" not in arg or Path(arg).exists()
    except OSError:
        return False


def run(argv):
    if not argv or not _is_file_arg(argv[0]):
        raise UserError("sweep run needs a commands file: python -m lstm_adv.sweep run COMMANDS_FILE [jobs=N]")
    opts, keys = _options(argv[1:], RUN_OPTIONS, "sweep run")
    _refuse_train_keys(keys, "run")
    jobs = _int_option(opts, "jobs", 2, 1)
    retries = _int_option(opts, "retries", 2, 0)
    if opts.get("compiledir"):
        checks.writable_dir("compiledir", opts["compiledir"])
    commands = read_commands(argv[0])
    return Launcher(commands, jobs, retries, opts.get("compiledir") or None).run()


# --------------------------------------------------------------------------- slurm
SLURM_TEMPLATE = """#!/bin/bash
# Slurm job array for {commands}: one task per command ({n} commands), at most {k} at a time.
# Rendered by: python -m lstm_adv.sweep slurm {commands_arg}
# Submit: sbatch {script}      Resubmitting after a failure or time-out is safe: finished runs
# exit at once, interrupted ones resume from their checkpoint (Slurm's SIGTERM makes a run checkpoint).
#SBATCH --job-name={job_name}
#SBATCH --array=0-{last}%{k}
#SBATCH --time={time}
#SBATCH --cpus-per-task={cpus}
#SBATCH --output={logs}/%A_%a.out
#SBATCH --error={logs}/%A_%a.out
{extra}set -euo pipefail
cd {workdir}
export PATH={bindir}:"$PATH"
export OMP_NUM_THREADS={cpus}
COMMANDS={commands_abs}
# Task i runs command i+1 (blank and # lines do not count).
LINE=$(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$COMMANDS" | sed -n "$((SLURM_ARRAY_TASK_ID + 1))p")
if [ -z "$LINE" ]; then echo "no command for array task $SLURM_ARRAY_TASK_ID in $COMMANDS" >&2; exit 2; fi
# A compile cache of its own: the first free of {k} slots on this host (held with flock while the
# task runs), so concurrent tasks never share one and later tasks reuse the compiled code.
CACHE={cache_root}/$(hostname -s)
mkdir -p "$CACHE"
SLOT=""
for k in $(seq 0 $(({k} - 1))); do
  exec 9>>"$CACHE/slot-$k.lock"
  if flock -n 9; then SLOT=slot-$k; break; fi
  exec 9>&-
done
[ -n "$SLOT" ] || SLOT=task-$SLURM_ARRAY_TASK_ID
export PYTENSOR_FLAGS="base_compiledir=$CACHE/$SLOT"
export NUMBA_CACHE_DIR="$CACHE/$SLOT/numba"
echo "array task $SLURM_ARRAY_TASK_ID on $(hostname -s), cache $SLOT: $LINE"
eval "exec $LINE"
"""


def render_slurm(commands_path, commands, max_parallel=4, time_limit="24:00:00", cpus=1, mem="", partition="",
                 job_name="", compiledir=None, script_path=None, argv=()):
    """The text of a Slurm batch script running ``commands`` as one array (see `SLURM_TEMPLATE`)."""
    commands_path = Path(commands_path).resolve()
    extra = ""
    if mem:
        extra += f"#SBATCH --mem={mem}\n"
    if partition:
        extra += f"#SBATCH --partition={partition}\n"
    root = Path(compiledir) if compiledir else default_compiledir_root()
    return SLURM_TEMPLATE.format(
        commands=commands_path.name, commands_arg=" ".join(shlex.quote(a) for a in argv) or str(commands_path),
        n=len(commands), k=max_parallel, last=len(commands) - 1, time=time_limit, cpus=cpus,
        job_name=job_name or f"lstm_adv-{commands_path.parent.name}", extra=extra,
        logs=shlex.quote(str(commands_path.parent / "slurm-logs")),
        script=shlex.quote(str(script_path or "SCRIPT")), workdir=shlex.quote(os.getcwd()),
        bindir=shlex.quote(os.path.dirname(sys.executable)), commands_abs=shlex.quote(str(commands_path)),
        cache_root=shlex.quote(str(root.resolve())))


def slurm(argv):
    if not argv or not _is_file_arg(argv[0]):
        raise UserError("sweep slurm needs a commands file: python -m lstm_adv.sweep slurm COMMANDS_FILE "
                        "[max_parallel=K] [time=HH:MM:SS] [out=FILE]")
    opts, keys = _options(argv[1:], SLURM_OPTIONS, "sweep slurm")
    _refuse_train_keys(keys, "slurm")
    commands = read_commands(argv[0])
    k = _int_option(opts, "max_parallel", 4, 1)
    cpus = _int_option(opts, "cpus", 1, 1)
    out = Path(opts.get("out") or Path(argv[0]).parent / "slurm.sh")
    checks.writable_file("out", out)
    checks.writable_dir("COMMANDS_FILE", Path(argv[0]).resolve().parent / "slurm-logs")
    if opts.get("compiledir"):
        checks.writable_dir("compiledir", opts["compiledir"])
    text = render_slurm(argv[0], commands, k, opts.get("time") or "24:00:00", cpus, opts.get("mem", ""),
                        opts.get("partition", ""), opts.get("job_name", ""), opts.get("compiledir") or None,
                        out, list(argv))
    (Path(argv[0]).resolve().parent / "slurm-logs").mkdir(parents=True, exist_ok=True)
    try:
        atomic_write_text(out, text)
        out.chmod(0o755)
    except OSError as err:
        raise UserError(f"cannot write {out}: {err.strerror}") from None
    print(f"wrote {out}: --array=0-{len(commands) - 1}%{k} ({len(commands)} tasks); submit with: sbatch {out}",
          file=sys.stderr)
    print(out)
    return 0


# --------------------------------------------------------------------------- random search summary
_SHOWN = ("hdim", "wdim", "reg", "clip", "optimizer", "lrate", "batch_size", "use_dropout", "alpha", "eps",
          "adv_emb_grad", "seed")


def _read_runs(root):
    runs = []
    for cfg_path in sorted(Path(root).rglob("config.json")):
        d = cfg_path.parent
        try:
            record = json.loads(cfg_path.read_text())
            cfg = record["config"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        try:
            metrics = json.loads((d / "metrics.json").read_text())
        except (OSError, ValueError):
            metrics = {}
        adversarial = record.get("adversarial", cfg.get("eps", 0) > 0)
        runs.append({"dir": d, "config": cfg, "adversarial": bool(adversarial), "metrics": metrics,
                     "status": metrics.get("status", "no metrics"), "valid": metrics.get("valid_err"),
                     "test": metrics.get("test_err"), "draw": d.parent.name if d.name in ("adv", "plain") else d.name})
    return runs


def _ok(r):
    return r["status"] == "ok" and all(isinstance(r[k], (int, float)) and math.isfinite(r[k]) for k in ("valid", "test"))


def random_summary(root):
    """Markdown comparing the best adversarial and the best plain run of a random search (chosen on validation)."""
    from scipy import stats

    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root} is not a sweep folder")
    runs = _read_runs(root)
    if not runs:
        raise UserError(f"no runs (no config.json) under {root}")
    out = [f"# Random search under {root}", "",
           "Best configuration of each kind chosen on validation error (ties: the earlier draw); its "
           "test error is reported once, never used for selection.", ""]
    rows = []
    best = {}
    for kind, adv in (("adversarial", True), ("plain", False)):
        group = [r for r in runs if r["adversarial"] == adv]
        ok = [r for r in group if _ok(r)]
        if ok:
            b = min(ok, key=lambda r: (r["valid"], str(r["dir"])))
            best[kind] = b
            attack = b["metrics"].get("attack") or {}
            rows.append([kind, b["draw"], f"{b['valid']:.4f}", f"{b['test']:.4f}",
                         ", ".join(f"{a}: {v:.3f}" for a, v in attack.items()) or "-",
                         " ".join(f"{k}={_num(b['config'][k])}" for k in _SHOWN if k in b["config"]
                                  and not (k == "lrate" and b["config"].get("optimizer") != "sgd")
                                  and not (not adv and k in ("alpha", "eps", "adv_emb_grad"))),
                         f"{len(ok)} of {len(group)}"])
        else:
            rows.append([kind, "-", "-", "-", "-", "no finished run", f"0 of {len(group)}"])
    out += ["| model | draw | valid err | test err | test err under attack | configuration | runs ok |",
            "|---|---|---|---|---|---|---|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]

    pairs = {}
    for r in runs:
        pairs.setdefault((r["dir"].parent, r["draw"]), {})["adv" if r["adversarial"] else "plain"] = r
    both = [(p["adv"], p["plain"]) for p in pairs.values() if "adv" in p and "plain" in p
            and _ok(p["adv"]) and _ok(p["plain"])]
    out += [""]
    if both:
        diff = np.array([a["test"] - p["test"] for a, p in both])
        line = (f"Paired by draw ({len(both)} draws with both runs ok): the adversarial run has the lower test "
                f"error in {int((diff < 0).sum())}, the higher in {int((diff > 0).sum())}; mean test error "
                f"difference (adversarial - plain) {diff.mean():+.4f}")
        if len(both) >= 2 and np.any(diff != 0):
            line += f", Wilcoxon signed-rank p = {stats.wilcoxon(diff).pvalue:.3g}"
        out.append(line + ".")
    if "adversarial" in best and "plain" in best:
        d = best["adversarial"]["test"] - best["plain"]["test"]
        out.append(f"Best adversarial vs best plain: test error {best['adversarial']['test']:.4f} vs "
                   f"{best['plain']['test']:.4f} ({d:+.4f}).")
    failed = [r for r in runs if not _ok(r)]
    if failed:
        out += ["", f"Not ok: {len(failed)} run(s): "
                + ", ".join(f"{r['dir'].relative_to(root)} ({r['status']})" for r in failed[:20])
                + (" ..." if len(failed) > 20 else "")]
    return "\n".join(out) + "\n"


def summary(argv):
    if len(argv) != 1:
        raise UserError("usage: python -m lstm_adv.sweep summary SWEEP_DIR")
    checks.readable_dir("SWEEP_DIR", argv[0])
    path = Path(argv[0]) / "summary.md"
    checks.writable_file("SWEEP_DIR", path)
    text = random_summary(argv[0])
    atomic_write_text(path, text)
    from .figures import random_search_scatter, write_runs_csv
    written = [path, write_runs_csv([argv[0]], argv[0])]
    scatter = random_search_scatter(argv[0])   # None until a draw has both runs finished
    print(text, end="")
    print("wrote " + ", ".join(map(str, written + ([scatter] if scatter else []))), file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- CLI
@cli_entry
def main(argv):
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "plan":
        print(plan(rest))
        return 0
    if command == "run":
        return run(rest)
    if command == "slurm":
        return slurm(rest)
    if command == "summary":
        return summary(rest)
    raise UserError(f"unknown command {command!r}; use plan, run, slurm or summary (see --help)")


if __name__ == "__main__":
    sys.exit(main())

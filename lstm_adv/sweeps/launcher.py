"""``sweep run``: run a commands file here, N training processes at a time (see `lstm_adv.sweeps`).

Each process gets its own compile-cache slot (a file lock held for the whole sweep); finished
runs are skipped, crashed or killed ones retried from their checkpoint, and SIGINT/SIGTERM
reach the runs, which checkpoint.
"""

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..common import checks, lifecycle
from ..common.errors import UserError
from ..common.lifecycle import EXIT_FAILED, EXIT_NAN, EXIT_OK, EXIT_USER_ERROR, exit_for_signal, lock_holder
from ..common.options import positional_arg
from ..common.publish import publish_run
from ..rundir import RunDir, missing_word_attacks, run_status
from .commands import RunOptions, check_run_dirs, default_compiledir_root, read_commands, sweep_options

def _hms(seconds):
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")



def compile_env(slot_dir, env=None):
    """``env`` (default ``os.environ``) with PyTensor's and Numba's caches in ``slot_dir``."""
    env = dict(os.environ if env is None else env)
    flags = [f for f in env.get("PYTENSOR_FLAGS", "").split(",")
             if f.strip() and f.split("=", 1)[0].strip() not in ("compiledir", "base_compiledir")]
    env["PYTENSOR_FLAGS"] = ",".join(flags + [f"base_compiledir={slot_dir}"])
    env["NUMBA_CACHE_DIR"] = str(Path(slot_dir) / "numba")
    return env


def classify(rc, stopping):
    """What an attempt's exit status means: ``ok``, ``nan``, ``error``, ``interrupted`` or ``retry``."""
    if rc == EXIT_OK:
        return "ok"
    if rc == EXIT_NAN:
        return "nan"
    if rc == EXIT_USER_ERROR:
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
    return {EXIT_USER_ERROR: "exit 2 (bad input)", EXIT_NAN: "exit 3 (NaN cost)"}.get(rc, f"exit {rc}")


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
    train_log = {EXIT_NAN: "bad cost", exit_for_signal(signal.SIGINT): "interrupted by signal",
                 exit_for_signal(signal.SIGTERM): "interrupted by signal"}
    if rc in train_log:
        lines = [ln for ln in _tail_lines(RunDir(run_dir).log_path) if ln.startswith(train_log[rc])]
        if lines:
            return lines[-1][:200]
    err = _tail_lines(RunDir(run_dir).stderr_log, err_at)
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

    def __init__(self, commands, jobs=2, retries=2, compiledir=None, out=sys.stdout, publish=None, base=None):
        self.commands, self.jobs, self.retries = commands, jobs, retries
        # publish: each run that ends ok is copied there at once, at its path below base (the
        # commands file's folder), so a launcher started elsewhere meanwhile sees it as published.
        self.publish, self.base = (Path(publish), Path(os.path.abspath(base or "."))) if publish else (None, None)
        self.compiledir = Path(compiledir) if compiledir else default_compiledir_root()
        self.out = out
        self._stop = None      # the signals taken while the runs go on (`run`)
        self.results = {}      # Command -> (outcome, detail)
        self.running = {}      # slot -> (proc, cmd, attempt, started, stderr offset)
        # Progress lines name runs relative to the folder that holds them all.
        dirs = [os.path.abspath(c.run_dir) for c in commands]
        self.root = os.path.commonpath(dirs) if len(dirs) > 1 else os.path.dirname(dirs[0])
        if self.root in dirs:
            self.root = os.path.dirname(self.root)
        for cmd, d in zip(commands, dirs):
            cmd.name = os.path.relpath(d, self.root)

    def _published_at(self, cmd):
        """Where ``publish=`` holds ``cmd``'s run (a Path), or None (no publish=, or not below base)."""
        if self.publish is None:
            return None
        try:
            return self.publish / Path(os.path.abspath(cmd.run_dir)).relative_to(self.base)
        except ValueError:
            return None

    def _published_complete(self, cmd):
        """Whether the published copy ended ok with every word attack the command asks: then, on a
        machine without the run's folder, it is not run again. A copy without an asked attack is
        not complete (the command then attacks the local run, or trains it again where it is gone)."""
        dest = self._published_at(cmd)
        return dest is not None and run_status(dest) == "ok" and not missing_word_attacks(dest, cmd.cfg)

    def _publish(self, cmd):
        """Publish a finished run's small files (``publish=``); a failure is said, not raised."""
        if self.publish is None:
            return
        dest = self._published_at(cmd)
        if dest is None:
            self.say(f"       {cmd.name}: not published (its folder is not below {self.base})")
            return
        try:
            publish_run(Path(os.path.abspath(cmd.run_dir)), dest)
        except (OSError, ValueError) as err:
            self.say(f"       {cmd.name}: not published to {dest}: {err}")
            return
        self.say(f"       {cmd.name}: published to {dest}")

    def say(self, line):
        print(line, file=self.out, flush=True)

    @property
    def stopping(self):
        """The first SIGINT/SIGTERM of this sweep (`lstm_adv.common.lifecycle.deferred_signals`), or None."""
        return None if self._stop is None else self._stop.signum

    def _kill_running(self, signum):
        """A second signal: stop now (the runs keep their last checkpoint)."""
        for proc, *_ in self.running.values():
            if proc.poll() is None:
                proc.kill()

    def run(self):
        total = len(self.commands)
        todo, finished, published, failed_before = [], [], [], 0
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
                if status == "ok" and missing_word_attacks(cmd.run_dir, cmd.cfg):
                    status = "needs its word attack"   # train attacks it without training again
                if status != "ok" and self._published_complete(cmd):
                    self.results[cmd] = ("ok", "published earlier")
                    published.append(cmd)
                    continue
            if status == "ok":
                self.results[cmd] = ("ok", "finished earlier")
                finished.append(cmd)
            elif status == "nan":
                self.results[cmd] = ("nan", "ended in NaN earlier (status nan); delete the run directory to retry")
                failed_before += 1
            else:
                todo.append(cmd)
        done = total - len(todo)
        if published:
            self.say(f"{len(published)} run(s) already published in {self.publish}: not run again")
        self.say(f"{total} runs under {self.root}: {done - failed_before} already finished, {failed_before} failed "
                 f"(nan earlier, or bad input), {len(todo)} to run, {self.jobs} at a time "
                 f"(compile caches in {self.compiledir})")
        for cmd in finished:
            self._publish(cmd)
        if not todo:
            return self.summary()

        pool = SlotPool(self.compiledir, min(self.jobs, len(todo)))
        attempts = {cmd: 0 for cmd in todo}
        queue = list(todo)
        t0, durations = time.time(), []
        forwarded = False
        # SIGINT/SIGTERM: forwarded to the runs, which checkpoint; the sweep ends when they have.
        with lifecycle.deferred_signals(on_repeat=self._kill_running) as self._stop:
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
                        if rc == EXIT_USER_ERROR and not isinstance(proc, _Adopted):
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
                        if outcome == "ok":
                            self._publish(cmd)
            finally:
                pool.release()
        rc = self.summary()
        return exit_for_signal(self.stopping) if self.stopping else rc

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
        files = RunDir(cmd.run_dir)
        with open(files.stdout_log, "a") as out, open(files.stderr_log, "a") as err:
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
            err_at = RunDir(cmd.run_dir).stderr_log.stat().st_size
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
        return EXIT_FAILED if bad else EXIT_OK


def run(argv):
    if not argv or not positional_arg(argv[0]):
        raise UserError("sweep run needs a commands file: python -m lstm_adv.sweep run COMMANDS_FILE [jobs=N]")
    opts = sweep_options(RunOptions, argv[1:], "run")
    checks.writable_dir("compiledir", opts.compiledir or default_compiledir_root())
    if opts.publish:
        checks.writable_dir("publish", opts.publish)
    commands = read_commands(argv[0])
    check_run_dirs(commands, argv[0])
    return Launcher(commands, opts.jobs, opts.retries, opts.compiledir or None, publish=opts.publish or None,
                    base=Path(argv[0]).parent).run()

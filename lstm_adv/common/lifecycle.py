"""A command's process from start to exit: exit statuses, SIGINT/SIGTERM, a full disk, the run lock.

Every command goes through `cli_entry` the same way (train, sweep, data, embeddings, bench, and
the read-only results, visualize), so each stops the same way:

- **exit statuses**: `EXIT_OK` 0; `EXIT_FAILED` 1, some runs of a sweep failed; `EXIT_USER_ERROR`
  2, bad input or a full disk, one ``error:`` line and no traceback; `EXIT_NAN` 3, train's cost
  became NaN/Inf; 130/143 after SIGINT/SIGTERM (`exit_for_signal`, as a shell reports them).
- **signals**: inside `cli_entry` SIGINT and SIGTERM raise `Interrupted` at once, so the stack
  unwinds: every atomic write (`lstm_adv.common.utils.atomic_write_bytes`) removes its temporary
  file, and nothing half-written is left. The command ends with one line and 130/143. A stage may
  say what an interruption there means (`interruptible`); a loop that must finish its step first
  (train's updates, the sweep launcher's runs) takes them with `deferred_signals` and stops at a
  point of its choosing.
- **a full disk** (ENOSPC, EDQUOT): one line and exit 2; `disk_full_says` names the folder
  and what to do, else the file that could not be written.
- **the run lock** (`RunLock`): one process per run directory; `lock_holder` says which.

The tests drive each path at a chosen point with the fault hook (`lstm_adv.common.faults`).
"""

import errno
import fcntl
import functools
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from . import faults
from .errors import UserError

# Exit statuses of every command; `lstm_adv.sweeps.launcher` reads train's to decide what to retry.
EXIT_OK = 0
EXIT_FAILED = 1       # some runs of a sweep failed (each listed at the end)
EXIT_USER_ERROR = 2   # bad input (or a full disk): one line on stderr, nothing half-written
EXIT_NAN = 3          # train: the cost became NaN or Inf (metrics.json says status nan)

#: what a command says when a signal stops it and nothing more specific was said (`interruptible`)
RERUN = "interrupted by signal {signum} before the command finished; run the same command again"

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def exit_for_signal(signum):
    """The exit status after a stop by signal ``signum``, as a shell reports it: 130 SIGINT, 143 SIGTERM."""
    return 128 + int(signum)


# ---- signals ---------------------------------------------------------------------------------------
class Interrupted(BaseException):
    """SIGINT/SIGTERM received; a BaseException so that no ``except Exception`` on the way swallows it.

    ``message`` (with ``{signum}``) is the line `cli_entry` prints when the command does not
    handle the interruption itself.
    """

    def __init__(self, signum, message=RERUN):
        super().__init__(signum)
        self.signum = signum
        self.message = message

    def line(self):
        return self.message.format(signum=self.signum)


@contextmanager
def _on_signals(handler):
    """SIGTERM and SIGINT go to ``handler`` inside the block; the previous handlers come back after it.

    Python sets handlers in the main thread only; elsewhere (a command run from a thread) the
    block runs with the handlers it has.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def interruptible(message=RERUN):
    """Inside the block SIGINT/SIGTERM raise `Interrupted` at once, carrying ``message`` (with
    ``{signum}``): what `cli_entry` prints if the interruption reaches it."""
    def _raise(signum, frame):
        raise Interrupted(signum, message)

    with _on_signals(_raise):
        yield


class Stop:
    """The signals `deferred_signals` took: falsy until one came; `check` raises it at a safe point."""

    def __init__(self, on_repeat=None):
        self.signum = None
        self._on_repeat = on_repeat

    def __bool__(self):
        return self.signum is not None

    def _take(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        elif self._on_repeat is not None:   # a second signal: the caller may stop harder
            self._on_repeat(signum)

    def check(self):
        """Raise `Interrupted` for the first signal taken, if one came."""
        if self.signum is not None:
            raise Interrupted(self.signum)


@contextmanager
def deferred_signals(on_repeat=None):
    """Inside the block SIGINT/SIGTERM are only noted on the `Stop` it yields, so a loop can
    finish its step (an update and its checkpoint) before it stops; ``on_repeat(signum)`` is
    called for each signal after the first."""
    stop = Stop(on_repeat)
    with _on_signals(stop._take):
        yield stop


# ---- a full disk -----------------------------------------------------------------------------------
def is_disk_full(err):
    """Whether ``err`` is a write refused for want of space (ENOSPC) or quota (EDQUOT)."""
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


@contextmanager
def disk_full_says(where, advice):
    """A full disk inside the block becomes one line, a `UserError` naming ``where`` and then
    ``advice`` (what is intact, what to do); other errors pass."""
    try:
        yield
    except OSError as err:
        if is_disk_full(err):
            raise UserError(f"disk full while writing to {where} ({err.strerror}); {advice}") from None
        raise


# ---- the entry point -------------------------------------------------------------------------------
def cli_entry(main):
    """Decorate a ``main(argv) -> int``: the one way every command starts and stops.

    ``argv`` defaults to ``sys.argv[1:]``. SIGINT/SIGTERM raise `Interrupted` (`interruptible`);
    what reaches here ends with one line: a `UserError` ``error: ...`` and exit 2, a full disk
    the same, an interruption its message and 130/143.
    """

    @functools.wraps(main)
    def wrapper(argv=None):
        try:
            faults.check_env()   # the tests' hook: refused if malformed, said if set, before any work
            with interruptible():
                return main(sys.argv[1:] if argv is None else argv)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USER_ERROR
        except Interrupted as intr:
            print(intr.line(), file=sys.stderr)
            return exit_for_signal(intr.signum)
        except OSError as err:
            if not is_disk_full(err):
                raise
            where = f" to {err.filename}" if err.filename else ""
            print(f"error: disk full while writing{where} ({err.strerror}); free space and run the same command "
                  "again", file=sys.stderr)
            return EXIT_USER_ERROR

    return wrapper


# ---- the run lock ----------------------------------------------------------------------------------
class RunLock:
    """The lock file ``.lock`` of one run directory: two processes never write one run.

    `acquire` starts a provisional hold: until `keep`, `discard` undoes it, removing the ``.lock``
    and the folders `acquire` made, so that a refused start-up leaves no new run directory.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.path = self.folder / ".lock"
        self._fh = None
        self._made = None   # provisional (`acquire` to `keep`): (folders made, new .lock, anchor, its times)

    def acquire(self):
        """Take the lock (writing our pid into it), or refuse with a `UserError` naming its holder.

        SIGINT/SIGTERM wait while the folders are made and recorded (a signal between the two would
        leave a new folder behind); one that came is then raised again, after the provisional hold
        is undone (`discard`).
        """
        with deferred_signals() as stop:
            self._acquire()
        if stop:
            self.discard()
            signal.raise_signal(stop.signum)   # the caller's handler takes it, as if it came now

    def _acquire(self):
        for _ in range(10):
            made = _missing_folders(self.folder)
            new_lock = not os.path.lexists(self.path)
            anchor = made[-1].parent if made else self.folder   # the folder whose entries we change
            times = _times(anchor)
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                fh = open(self.path, "a+")
            except OSError as err:
                _remove_folders(made)
                raise UserError(f"cannot create run directory {self.folder}: {err.strerror}; "
                                "choose another saveto=") from None
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                fh.close()
                raise UserError(f"run directory {self.folder} is in use by pid {holder}; wait for it to finish "
                                "or choose another saveto=") from None
            if _same_file(fh, self.path):
                break
            # A refused start-up removed the file we opened before we locked it: lock the new one.
            fh.close()
        else:
            raise UserError(f"cannot lock {self.path}: it keeps being replaced; choose another saveto=")
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        self._made = (made, new_lock, anchor, times)

    @property
    def provisional(self):
        """Whether `acquire` holds the lock and `keep` has not been called yet."""
        return self._made is not None

    def keep(self):
        """End the provisional hold: from now on the run directory stays whatever happens."""
        self._made = None

    def discard(self):
        """Undo a provisional hold: remove the ``.lock`` and the folders `acquire` made (a folder
        that existed before keeps everything it held, and its times), then release."""
        made, self._made = self._made, None
        folders, new_lock, anchor, times = made or ((), False, None, None)
        if new_lock and self._fh is not None:
            # Removed while we hold it: a process that opened it meanwhile sees that it is gone (`acquire`).
            self.path.unlink(missing_ok=True)
        self.release()
        if _remove_folders(folders) and (new_lock or folders) and times is not None:
            try:
                os.utime(anchor, ns=times)
            except OSError:
                pass

    def release(self):
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def lock_holder(folder):
    """The pid (as text) of the live process holding ``folder``'s run lock, or None. Creates nothing."""
    try:
        fh = open(Path(folder) / ".lock", "r")
    except OSError:
        return None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return fh.read().strip() or "another process"
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None


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

"""Small shared helpers: seeded RNG streams, atomic file writes, library versions, provenance."""

import io
import json
import os
import platform
import socket
import subprocess
import tempfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import faults


_UMASK = os.umask(0)
os.umask(_UMASK)


def make_rng(seed, purpose):
    """A numpy Generator for one purpose, derived from the run's single ``seed``.

    Each consumer (validation split, shuffling, init, dropout ...) gets its own stream, so
    adding a random choice in one place never shifts the numbers drawn in another.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(purpose.encode())]))


@contextmanager
def atomic_path(path, suffix=".tmp"):
    """A temporary file beside ``path`` for the block to write; renamed over ``path`` at its end.

    Readers see the old file or the new one, never half: the block writes the yielded path (by
    name, or opened); at its end the file is flushed to disk, given the usual mode and renamed
    over the target. If anything fails (an error, a signal, a full disk), the temporary file is
    removed and the previous version of ``path`` is untouched. ``suffix``: how the temporary
    name ends (a writer that picks its format by the name, e.g. gensim's ``.gz``, wants
    ``path``'s own).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
        faults.reached("write")   # tests only: LSTM_ADV_FAULT (a signal or a full disk before the rename)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` atomically (`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_savez(path, arrays):
    """Save a dict of arrays as an uncompressed ``.npz`` atomically (loadable with allow_pickle=False)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def library_versions():
    """Versions of the interpreter and every library that can change a result."""
    import importlib.metadata as md  # slow to import: only when a run records its versions

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("lstm_adv", "pytensor", "numpy", "scipy", "numba", "gensim", "sacremoses", "jax", "jaxlib"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


#: The repository root when the package runs from a checkout (``lstm_adv/..``).
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def git_state(path=PACKAGE_ROOT):
    """``(commit, dirty)`` of the git work tree holding ``path``; ``(None, None)`` outside one.

    ``dirty`` is True when tracked files differ from the commit (untracked files, such as run
    directories, do not count). Never raises: no git, no checkout or a slow file system give None.
    """
    def git(*args):
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, timeout=10,
                              stdin=subprocess.DEVNULL)
    try:
        top = git("rev-parse", "--show-toplevel")
        # An installed copy inside some other repository (a venv in a project) is not a checkout of ours.
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != Path(path).resolve():
            return None, None
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None, None
        status = git("status", "--porcelain", "--untracked-files=no")
        dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
        return head.stdout.strip(), dirty
    except (OSError, subprocess.SubprocessError):
        return None, None


def provenance():
    """Where a result came from: the code's git commit and dirty flag (None outside a checkout), the
    host, and the tests' fault hook (``LSTM_ADV_FAULT``) if it was set."""
    commit, dirty = git_state()
    return {"git_commit": commit, "git_dirty": dirty, "host": socket.gethostname(), "fault_hook": faults.current()}


def short_number(v):
    """A number as a sweep's commands file and its summaries write it: 0.5, 15.0, 3, 0.0001."""
    if isinstance(v, float):
        return repr(float(f"{v:.4g}"))
    return str(v)

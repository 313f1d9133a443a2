"""The one validation layer every command uses before it writes anything.

Each function either returns quietly or raises `UserError` with one line naming the key, the
problem and the fix; none of them leaves anything behind (the write checks make and remove one
temporary entry, `_probe`). Commands call them on their whole command line first (values, finite
numbers, paths readable, output folders writable, files in the way, sizes that fit in memory), and
only then start work.
"""

import importlib.util
import math
import os
import tempfile
from pathlib import Path

from .errors import UserError

NAME_MAX = 255    # bytes in one path component (Linux, macOS)
PATH_MAX = 4095   # bytes in a whole path


def finite(name, value):
    """``value`` as a float, refusing NaN and +-Inf."""
    if not math.isfinite(value):
        raise UserError(f"{name}={value} must be a finite number")
    return value


def no_duplicates(pairs):
    """Refuse a key given twice in ``(key, raw value)`` pairs (``hdim=8 hdim=16``)."""
    seen = {}
    for name, raw in pairs:
        if name in seen:
            raise UserError(f"{name} is given twice ({name}={seen[name]} and {name}={raw}); give it once")
        seen[name] = raw
    return pairs


def path_names(name, path):
    """Refuse a path the file system cannot hold: a component over 255 bytes, or a whole over 4095."""
    text = os.fsencode(str(path))
    if b"\0" in text:
        raise UserError(f"{name}= holds a NUL character; give a file name")
    if len(text) > PATH_MAX:
        raise UserError(f"{name}= is a path of {len(text)} bytes; the limit is {PATH_MAX}")
    for part in text.split(b"/"):
        if len(part) > NAME_MAX:
            shown = os.fsdecode(part[:40])
            raise UserError(f"{name}=: the name {shown}... is {len(part)} bytes long; a file name may have at "
                            f"most {NAME_MAX}: use a shorter one")
    return Path(path)


def readable_file(name, path):
    """An existing, readable regular file."""
    path = path_names(name, Path(path).expanduser())
    if not path.exists():
        raise UserError(f"{name}={path}: no such file")
    if path.is_dir():
        raise UserError(f"{name}={path} is a folder; give a file")
    if not os.access(path, os.R_OK):
        raise UserError(f"{name}={path}: cannot read it (permission denied)")
    return path


def readable_dir(name, path):
    """An existing folder whose entries can be listed."""
    path = path_names(name, Path(path).expanduser())
    if not path.exists():
        raise UserError(f"{name}={path}: no such folder")
    if not path.is_dir():
        raise UserError(f"{name}={path} is a file; give a folder")
    try:
        os.listdir(path)
    except OSError as err:
        raise UserError(f"{name}={path}: cannot read the folder ({err.strerror})") from None
    return path


def readable_path(name, path):
    """An existing readable file or folder."""
    path = path_names(name, Path(path).expanduser())
    if not path.exists():
        raise UserError(f"{name}={path}: no such file or folder")
    if path.is_dir():
        return readable_dir(name, path)
    return readable_file(name, path)


def _existing_ancestor(name, path, given):
    """The nearest existing folder above ``path`` (or ``path`` itself), refusing a broken symbolic
    link on the way: nothing can be made through it, though the folder above it is writable.
    ``given``: the value of ``name`` as the errors show it."""
    p = Path(os.path.abspath(path))
    while not p.exists():
        if os.path.lexists(p):
            raise UserError(f"{name}={given}: {p} is a symbolic link to nowhere, so nothing can be made there; "
                            "remove it or choose another place")
        if p.parent == p:
            break
        p = p.parent
    return p


def _probe(name, path, folder, make_folder):
    """Create and remove one temporary entry (a folder if ``make_folder``, else a file) in ``folder``.

    Permission bits do not tell whether something can be made there: root passes every
    ``os.access`` test, and /proc, /sys, read-only bind mounts and some network or FUSE file systems
    refuse anyway, which a command would otherwise find out only at its end. The folder's times are
    put back, so that a refused command leaves the file system as it found it.
    """
    try:
        st = os.stat(folder)
        if make_folder:
            os.rmdir(tempfile.mkdtemp(prefix=".lstm_adv-probe-", dir=folder))
        else:
            fd, tmp = tempfile.mkstemp(prefix=".lstm_adv-probe-", dir=folder)
            os.close(fd)
            os.unlink(tmp)
    except OSError as err:
        raise UserError(f"{name}={path}: nothing can be created in {folder} ({err.strerror or err}); choose another "
                        "place") from None
    try:
        os.utime(folder, ns=(st.st_atime_ns, st.st_mtime_ns))
    except OSError:
        pass


def writable_dir(name, path):
    """A folder that exists and is writable, or that can be created (its nearest existing
    ancestor is a writable folder). Nothing is left behind (see `_probe`)."""
    path = path_names(name, Path(path).expanduser())
    if path.exists() and not path.is_dir():
        raise UserError(f"{name}={path} is a file, not a folder")
    anc = _existing_ancestor(name, path, path)
    if not anc.is_dir():
        raise UserError(f"{name}={path}: {anc} is a file, so no folder can be made under it")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise UserError(f"{name}={path}: cannot write in {anc} (permission denied or read-only); choose another "
                        "folder")
    _probe(name, path, anc, make_folder=anc != Path(os.path.abspath(path)))
    return path


def writable_file(name, path):
    """A file that can be written (created or replaced) at ``path``, its folder made if need be.
    Nothing is left behind (see `_probe`)."""
    path = path_names(name, Path(path).expanduser())
    if str(path).endswith(os.sep) or path.is_dir():
        raise UserError(f"{name}={path} is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{name}={path}: cannot write it (permission denied)")
    anc = _existing_ancestor(name, path.parent, path)
    if not anc.is_dir():
        raise UserError(f"{name}={path}: {anc} is a file, not a folder")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise UserError(f"{name}={path}: cannot write in {anc} (permission denied or read-only); choose another "
                        "place")
    _probe(name, path, anc, make_folder=anc != Path(os.path.abspath(path.parent)))
    return path


def writable_files(name, folder, names):
    """A folder as `writable_dir`, and the files ``names`` in it that a command writes: none may be
    a folder in the way or a file it cannot replace. Returns the folder."""
    folder = writable_dir(name, folder)
    for file_name in names:
        path = folder / file_name
        if path.is_dir():
            raise UserError(f"{name}={folder}: {path} is a folder in the way of the file {file_name} to be "
                            f"written there; move it away or choose another {name}=")
        if path.exists() and not os.access(path, os.W_OK):
            raise UserError(f"{name}={folder}: cannot write {path} (permission denied); choose another {name}=")
    return folder


def physical_memory():
    """Bytes of RAM on this machine (None if unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n:.1f} EiB"


def fits_in_memory(what, nbytes, fix):
    """Refuse ``nbytes`` of arrays that cannot fit in this machine's memory."""
    total = physical_memory()
    if total and nbytes > total:
        raise UserError(f"{what} needs about {_bytes(nbytes)}, more than this machine's {_bytes(total)} of memory; "
                        f"{fix}")


#: The IMDB dictionary has 101,746 entries: n_words beyond it makes no bigger IMDB model.
MAX_VOCAB = 101_746
#: Parameter-sized arrays a training process holds: parameters, gradients, two optimizer
#: accumulators, best copy, checkpoint copies.
PARAM_COPIES = 8


def model_bytes(cfg, n_words=None):
    """Estimated bytes of the parameter-sized arrays a training run holds.

    ``n_words``: the model's vocabulary (rows of ``Wemb``) once the data is loaded. Before (None),
    IMDB's dictionary bounds ``cfg.n_words`` for data=imdb; another corpus's dictionary is not known
    yet, so its ``Wemb`` is left out (`lstm_adv.train` checks again with the loaded vocabulary).
    """
    e, h = cfg.wdim, cfg.hdim
    if n_words is None:
        n_words = min(cfg.n_words, MAX_VOCAB) if cfg.data == "imdb" else 0
    n = n_words * e + h * 2 + 2
    n += (e * 4 * h + h * 4 * h + 4 * h) if cfg.encoder == "lstm" else (e * h + h * h + h)
    return n * (4 if cfg.floatX == "float32" else 8) * PARAM_COPIES


def model_fits(cfg, n_words=None):
    """Refuse a model (`model_bytes`) larger than this machine's memory."""
    shown = cfg.n_words if n_words is None else n_words
    fits_in_memory(f"wdim={cfg.wdim}, hdim={cfg.hdim}, n_words={shown} ({cfg.floatX})", model_bytes(cfg, n_words),
                   "use smaller wdim/hdim" + ("" if n_words is None else "/n_words"))


def mode_name(cfg):
    """The backend a configuration asks for: ``auto`` is JAX on device=gpu, else C."""
    if cfg.mode != "auto":
        return cfg.mode
    # C, not NUMBA (PyTensor 3's default): with the C kernels of the LSTM step
    # (`lstm_adv.core.kernels.LSTMCell`) and the manual backward pass, C is about 2x faster per
    # update, because NUMBA's LLVM code computes every sigmoid and tanh with scalar libm calls
    # (`python -m lstm_adv.bench` prints the figures; experiments/benchmarks.md, "CPU backends").
    # JAX stays opt-in on the CPU (an optional extra, and static shapes).
    return "JAX" if cfg.device == "gpu" else "C"


def backend(cfg):
    """Refuse ``mode=JAX`` / ``device=gpu`` where JAX (or its GPU) is missing, without importing PyTensor.

    The entry points call it before any work; `lstm_adv.core.backend.get_mode` calls it again
    when compiling (a model built from Python).
    """
    if mode_name(cfg) != "JAX":
        return
    if importlib.util.find_spec("jax") is None:
        if cfg.device == "gpu":
            raise UserError("device=gpu needs jax with a CUDA jaxlib (pip install -e '.[jax]' and "
                            "pip install 'jax[cuda12]'); none is installed here, so use device=cpu")
        raise UserError("mode=JAX needs jax: pip install -e '.[jax]' (a CUDA jaxlib for device=gpu), "
                        "or use mode=NUMBA")
    if cfg.device == "gpu":
        try:
            import jax  # an optional dependency, found above; only for device=gpu
            gpus = jax.devices("gpu")
        except (RuntimeError, ImportError):
            gpus = []
        if not gpus:
            raise UserError("device=gpu but JAX sees no GPU (install a CUDA jaxlib, e.g. "
                            "pip install 'jax[cuda12]'), or use device=cpu")

"""The backend: which PyTensor mode a configuration compiles in, and how many BLAS threads run.

`get_mode` turns ``mode``/``device`` into a PyTensor `Mode` (NUMBA, C, JAX on a GPU with a
CUDA jaxlib, FAST_COMPILE), refusing what this machine lacks; every compiled function and the
scans' inner functions use it. `limit_blas_threads` (called by the entry points: train, bench,
visualize) runs the BLAS libraries single-threaded, and `blas_threads` scopes another count
(the visualiser's nearest-neighbour products use every core), both through threadpoolctl.
"""

import os
import warnings
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

from ..common import checks
from ..common.errors import UserError

# User-facing mode names -> PyTensor's predefined modes.
MODES = {"NUMBA": "NUMBA", "C": "CVM", "JAX": "JAX", "FAST_COMPILE": "FAST_COMPILE"}


def resolve_mode_name(cfg):
    """The backend a configuration asks for: ``auto`` is JAX on device=gpu, else C (`checks.mode_name`)."""
    return checks.mode_name(cfg)


def get_mode(cfg):
    """The PyTensor compilation mode for a configuration, refusing what this machine lacks.

    PyTensor 3 has no ``device`` flag: the GPU is reached through JAX with a CUDA jaxlib.
    Rather than let JAX fall back to the CPU silently, device=gpu fails when JAX sees no GPU.
    """
    import pytensor  # slow to import: the entry points use this module's BLAS limits before any model

    name = resolve_mode_name(cfg)
    if name == "JAX":
        checks.backend(cfg)   # jax installed, and a GPU for device=gpu: one line if not
        try:
            from .jax_backend import enable_compilation_cache, set_x64  # imports jax: only for mode=JAX
        except ImportError as err:   # installed but broken (e.g. a jaxlib that does not match jax)
            raise UserError(f"mode=JAX: jax is installed but does not import ({err}); reinstall it with "
                            "pip install -e '.[jax]', or use mode=NUMBA") from None

        set_x64(cfg.floatX)
        enable_compilation_cache()
    if name == "C" and not pytensor.config.cxx:
        raise UserError("mode=C needs a C++ compiler (g++) that PyTensor can find; or use mode=NUMBA")
    # The model writes its softmax out (`lstm_adv.core.model.softmax_rows`); do not let PyTensor fold
    # it back into the `OpFromGraph` that the C backend would run through a Numba function.
    mode = pytensor.compile.mode.get_mode(MODES[name]).excluding("symbolic_op_recognition")
    # Both modes whose C code links BLAS (FAST_COMPILE's C thunks too) read the flags here, silently
    # (`blas_ldflags`): else the first such compile in a process reads them itself and warns.
    ldflags = blas_ldflags() if name in ("C", "FAST_COMPILE") else None
    if name == "C" and not ldflags:
        # Without a BLAS to link (a pip-installed PyTensor), the C backend's Gemm/Gemv use a
        # NumPy-C-API fallback that is 2-4x slower than NumPy's own dot for our (16, 128) x
        # (128, 512) steps; keep Dot22 (numpy.dot on NumPy's OpenBLAS) plus an elementwise add.
        mode = mode.excluding("gemm_optimizer", "local_gemm_to_gemv", "local_dot22_to_dot22scalar")
    return mode


def blas_ldflags():
    """PyTensor's BLAS link flags, without its "could not link to a BLAS installation" warning.

    A pip-installed PyTensor finds no BLAS to link its C code against and warns that BLAS
    operations "will be severely degraded". Mode C expects exactly that: `get_mode` then keeps
    the products on NumPy's own OpenBLAS (Dot22), which is what the C timings of
    `python -m lstm_adv.bench` measure. Only that one warning is silenced, once per process (PyTensor caches the flags).
    """
    import pytensor  # slow to import: the entry points use this module's BLAS limits before any model

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS installation",
                                category=UserWarning)
        return pytensor.config.blas__ldflags

BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def _blas_controller():
    """threadpoolctl's controller of the BLAS libraries loaded in this process, or None when the
    environment chooses their threads (any of `BLAS_THREAD_VARS` set)."""
    if any(os.environ.get(v) for v in BLAS_THREAD_VARS):
        return None
    try:
        import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS, the one Numba's dot calls)
    except ImportError:
        pass
    return ThreadpoolController().select(user_api="blas")


def blas_info():
    """The BLAS libraries loaded in this process, as the benchmark records them.

    Returns
    -------
    list of dict
        Per library (threadpoolctl's ``info()``): ``library`` (internal API and version, e.g.
        ``openblas 0.3.31``), ``architecture`` (the kernel it runs: OpenBLAS picks one for the CPU
        unless ``OPENBLAS_CORETYPE`` pins it), ``threads`` and ``file`` (its file name).
    """
    try:
        import scipy.linalg  # noqa: F401  (SciPy's OpenBLAS, the one Numba's dot calls)
    except ImportError:
        pass
    return [{"library": f"{lib.get('internal_api')} {lib.get('version')}", "architecture": lib.get("architecture"),
             "threads": lib.get("num_threads"), "file": os.path.basename(lib.get("filepath") or "")}
            for lib in ThreadpoolController().select(user_api="blas").info()]


def limit_blas_threads(n=1):
    """Run the BLAS libraries (OpenBLAS, MKL, BLIS) loaded in this process with ``n`` threads.

    The model's matrix products are small ((16, 128) x (128, 512) per time step); OpenBLAS's
    default of one thread per core makes each of them wake a thread pool, and on a machine
    whose cores are busy (other runs of a sweep) its threads wait on each other: a training
    update runs many times slower (experiments/benchmarks.md, "CPU backends"). One thread per process is also what
    a sweep of several seeds in parallel wants. Setting any of `BLAS_THREAD_VARS` in the
    environment leaves the libraries alone. Called by the entry points, before the model runs.

    Returns
    -------
    list of str
        The libraries whose thread count was set (empty where none was found or the
        environment chooses).
    """
    blas = _blas_controller()
    if blas is None:
        return []
    blas.limit(limits=n)
    return sorted(lib.filepath for lib in blas.lib_controllers)


# Sets the SSE control register's flush-to-zero (bit 15) and denormals-are-zero (bit 6) bits.
_FTZ_SOURCE = """#include <xmmintrin.h>
extern "C" unsigned int lstm_adv_flush_denormals(void) {
    _mm_setcsr(_mm_getcsr() | 0x8040);
    return _mm_getcsr();
}
"""


def flush_denormals():
    """Treat subnormal floats as zero on this thread (x86-64: MXCSR's FTZ and DAZ bits).

    With large eps the perturbed inputs saturate the LSTM gates; their derivatives and the
    products that use them underflow into subnormal floats, which x86 CPUs compute in microcode:
    a table1 run at eps=15 took 247 ms an update instead of 57 (`experiments/benchmarks.md`,
    "Subnormal floats"). Flushing them changed no bit of the parameters in our checks (42 updates from a
    trained eps=15 and eps=1 checkpoint; a toy run). NumPy, BLAS and PyTensor's C code run on the
    calling thread (one BLAS thread, `limit_blas_threads`), and threads started later inherit the
    setting. The two-line helper is compiled with PyTensor's C++ compiler and loaded with ctypes.

    Returns
    -------
    bool
        Whether the bits are now set (False where the machine is not x86-64 or there is no compiler).
    """
    import ctypes
    import platform
    import subprocess
    import tempfile

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    import pytensor  # its configured C++ compiler

    cxx = pytensor.config.cxx
    if not cxx:
        return False
    with tempfile.TemporaryDirectory(prefix="lstm_adv_ftz_") as tmp:
        src, lib = os.path.join(tmp, "ftz.cpp"), os.path.join(tmp, "libftz.so")
        with open(src, "w") as fh:
            fh.write(_FTZ_SOURCE)
        try:
            subprocess.run([cxx, "-O1", "-shared", "-fPIC", src, "-o", lib], check=True, capture_output=True, timeout=120)
            fn = ctypes.CDLL(lib).lstm_adv_flush_denormals   # the mapping outlives the deleted file
        except (OSError, subprocess.SubprocessError):
            return False
    fn.restype = ctypes.c_uint
    return (fn() & 0x8040) == 0x8040


@contextmanager
def blas_threads(n=None):
    """Inside the block, the BLAS libraries run ``n`` threads (None: one per CPU this process may
    use); afterwards the previous counts. Does nothing where the environment chooses."""
    blas = _blas_controller()
    if blas is None:
        yield
        return
    if n is None:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            n = os.cpu_count() or 1
    with blas.limit(limits=n):
        yield

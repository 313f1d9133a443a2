"""Benchmark the backends: ``python -m lstm_adv.bench [modes=C,NUMBA] [floatX=float32] [out=bench.json]``.

For each mode and floatX, two fresh processes run the same measurement: the first with an empty
PyTensor compile directory (``base_compiledir`` in a temporary folder: cold compile, C modules
and Numba cache included), the second reusing it (cached compile). Each reports:

- compile time: building the clean (eps=0) and the adversarial (eps=0.5) `Model` and their
  first calls (Numba compiles on the first call);
- milliseconds per training update (adadelta, batch 16 x 100 steps, n_words=10000,
  wdim=hdim=128, all defaults otherwise), clean and adversarial: median wall time and median
  process CPU time (the CPU time is what to compare on a loaded machine), the
  adversarial/clean ratio and tokens per second;
- forward-only evaluation (`Model.f_pred_prob`) on long reviews, batch 64 x 256 steps;
- peak memory (``ru_maxrss`` of the process);
- the update's matrix-product FLOPs against this machine's measured NumPy matmul speed for the
  same shapes in the same float type (single-threaded, as the model runs): the "FLOP floor" in ms
  and the fraction of it reached;
- a hash of the parameters after a few updates from a fixed start, to check that the two
  processes (cold and cached) compute bit-identical results;
- JAX only: the compile time of every padded shape (`lstm_adv.core.jax_backend`; T=100 runs padded
  to its bucket, 128), split into PyTensor's graph rewriting and JAX's trace + XLA compile.

The keys (``--help`` lists them): the modes and float types, the timed updates, the shapes
(``wdim=``, ``hdim=``, ``n_words=``: the tutorial's by default, or ``preset=authors``), the
update of ``Wemb`` (``wemb_update=lazy`` or ``dense``: `lstm_adv.core.compiled.Model`), mode
C's LSTM (``lstm_kernel=seq``, the whole-sequence C Ops, or ``c``, the scans with per-step C
kernels), ``cold=0`` (one process in PyTensor's usual compile directory instead: no cold
figure, no cross-process check).

A measurement whose worker process fails (a missing compiler, an import error, a signal) prints
a ``failed (...)`` line and is recorded with the end of its error output; the other modes still
run, ``out=`` is written, and the exit status is 1.

The modules: this one the command line and the driver (one worker process per measurement),
`lstm_adv.bench.measure` the measurement in the worker, `lstm_adv.bench.profiling` the breakdown.

Breakdown (``breakdown=1``, the default): the adversarial update of the first mode compiled once
more with PyTensor's profiler, its time per phase (ms per update and share): input projections
and the other whole-sequence products (outside the recurrence), the forward and the backward
recurrence (scans, or mode C's `LSTMSeq` / `LSTMSeqGrad`), the embedding gradient (rows, or the
dense zero-filled scatter), the optimizer step on ``Wemb`` and on the other parameters,
everything else. The profiler times each node (its own overhead is
in the total it reports, which is above the unprofiled median).
"""

import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..common import checks
from ..common.errors import UserError
from ..common.options import help_text, option, parse, wants_help
from ..common.utils import atomic_write_text
from ..core.backend import blas_info
from .measure import B, DIM, EVAL_B, EVAL_T, N_WORDS, T, Shapes, update_flops, worker
from .profiling import breakdown_lines

__all__ = ["B", "T", "BenchOptions", "Shapes", "WorkerFailed", "main", "update_flops", "worker"]

# Set on some machines (older OpenBLAS builds crash on newer CPUs): they pin a kernel, recorded with the figures.
BLAS_KERNEL_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
ALL_MODES = ("C", "NUMBA", "JAX", "FAST_COMPILE")


# ---- the driver ---------------------------------------------------------------------------
def _available(mode):
    if mode == "JAX":
        try:
            import jax  # noqa: F401  (an optional dependency: is it installed?)
        except ImportError:
            return "jax is not installed (pip install -e '.[jax]')"
    if mode == "NUMBA" and importlib.util.find_spec("numba") is None:
        return "numba is not installed"
    if mode == "C":
        import pytensor  # slow to import: only when the driver checks mode C

        if not pytensor.config.cxx:
            return "no C++ compiler for PyTensor"
    return None


class WorkerFailed(Exception):
    """A measurement's worker process ended without its figures (a crash, a signal, an import error).

    ``summary`` is one line (how it ended and the last line it printed), ``stderr`` its whole error output."""

    def __init__(self, returncode, stderr):
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
        how = (f"killed by {signal.Signals(-returncode).name}" if returncode < 0 and -returncode in
               signal.valid_signals() else f"exit {returncode}")
        self.summary = how + (f": {lines[-1]}" if lines else "")
        self.stderr = stderr
        super().__init__(self.summary)


def _run_worker(mode, floatX, reps, compiledir=None, shapes=None):
    env = dict(os.environ)
    if compiledir is not None:  # else PyTensor's usual (shared, probably warm) compile directory
        flags = env.get("PYTENSOR_FLAGS", "")
        env["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, f"base_compiledir={compiledir}") if f)
    root = str(Path(__file__).resolve().parents[2])   # the checkout holding this lstm_adv
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lstm_adv.bench", "--worker", mode, floatX, str(reps),
                           json.dumps(shapes or {})],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise WorkerFailed(proc.returncode, proc.stderr)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_s"] = round(time.perf_counter() - t0, 1)
    return res


@dataclass(frozen=True)
class BenchOptions:
    """The keys of ``python -m lstm_adv.bench``."""

    modes: tuple[str, ...] = option((), "of C, NUMBA, JAX, FAST_COMPILE (default: C,NUMBA, and JAX if installed)")
    floatX: tuple[str, ...] = option(("float32",), "float types to measure", ("float32", "float64"))
    reps: int = option(30, "timed updates per objective", minimum=1, maximum=100000)
    out: str = option("bench.json", "the JSON file of the results")
    cold: bool = option(True, "1: a cold and a cached process per mode; 0: one process in the usual compile dir")
    wdim: int = option(0, f"word embedding size (0 = {DIM}, or 300 with preset=authors)", minimum=0, maximum=4096)
    hdim: int = option(DIM, "hidden units", minimum=1, maximum=4096)
    n_words: int = option(N_WORDS, "vocabulary size", minimum=3, maximum=10_000_000)
    preset: str = option("", "authors: the authors' configuration (wdim=300; keys given win)", ("", "authors"))
    wemb_update: str = option("lazy", "adadelta's update of Wemb (lstm_adv.core.compiled.Model)", ("lazy", "dense"))
    lstm_kernel: str = option("seq", "mode C's LSTM: seq (whole-sequence C Ops) or c (scans, per-step C kernels)",
                              ("seq", "c"))
    breakdown: bool = option(True, "the first mode's adversarial update once more under the profiler, per phase")


def _parse(argv):
    opts = parse(BenchOptions, argv)
    shapes = {"wdim": opts.wdim or (300 if opts.preset == "authors" else DIM), "hdim": opts.hdim,
              "n_words": opts.n_words, "wemb_update": opts.wemb_update, "lstm_kernel": opts.lstm_kernel,
              "breakdown": opts.breakdown}
    # An empty list given is a mistake, not a request for the default modes.
    if not opts.modes and any(a.partition("=")[0].strip().lstrip("-") == "modes" for a in argv):
        raise UserError("modes= is empty; e.g. modes=C,NUMBA (or leave it out for the default); choose from "
                        + ", ".join(ALL_MODES))
    given = opts.modes or ("C", "NUMBA") + (("JAX",) if _available("JAX") is None else ())
    modes = [m.upper() for m in given]   # modes are case-insensitive (c,numba)
    bad = [m for m in modes if m not in ALL_MODES]
    if bad or not modes:
        raise UserError(f"modes={','.join(given)}: choose from {', '.join(ALL_MODES)}")
    if not opts.floatX:
        raise UserError("floatX= is empty; e.g. floatX=float32")
    checks.writable_file("out", opts.out)
    if opts.cold:   # the cold compile directories are made there
        try:
            checks.writable_dir("$TMPDIR", tempfile.gettempdir())
        except FileNotFoundError as err:
            raise UserError(f"cold=1 needs a temporary folder: {err}; set TMPDIR, or use cold=0") from None
    return modes, list(opts.floatX), opts.reps, opts.out, opts.cold, shapes


def _line(r):
    u = r["update"]
    c, a = u["clean"], u["adversarial"]
    return (f"{r['mode']:>12} {r['floatX']:>7} | compile cold {r.get('cold_compile_s', float('nan')):6.1f}s "
            f"cached {r['compile_s']['clean'] + r['compile_s']['adversarial']:6.1f}s | update ms (cpu) "
            f"clean {c['ms_median']:6.1f} ({c['cpu_ms_median']:5.1f}) adv {a['ms_median']:6.1f} "
            f"({a['cpu_ms_median']:5.1f}) ratio {r['adv_clean_ratio_cpu']:.2f} | {c['tokens_per_s']:6d} tok/s | "
            f"eval {r['eval']['tokens_per_s']:7d} tok/s | peak {r['peak_rss_mb']:6.0f} MB | "
            f"{100 * a['fraction_of_matmul_peak']:3.0f}% of matmul floor ({a['flop_floor_ms']:.0f} ms)"
            f"{'' if r.get('bitwise_same_across_processes', True) else ' | NOT bit-reproducible'}"
            + "".join(f"\n{'':>12} compile {c['model']} {c['function']} T={c['T']} B={c['B']}: {c['s']:.1f}s "
                      f"(PyTensor {c['pytensor_s']:.1f}s, JAX trace + XLA {c['jax_first_call_s']:.1f}s)"
                      for c in r.get("compile_per_bucket", [])))


def main(argv):
    if wants_help(argv):
        print(help_text(BenchOptions, "python -m lstm_adv.bench [key=value ...]", __doc__))
        return 0
    modes, floatxs, reps, out, cold, shapes = _parse(argv)
    machine = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
               "cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_start": os.getloadavg(),
               # The BLAS kernel changes the figures by 15-20%: OPENBLAS_CORETYPE pins an older one.
               "blas": blas_info(), "openblas_env": {v: os.environ[v] for v in BLAS_KERNEL_VARS if v in os.environ}}
    kernels = ", ".join(sorted({f"{b['library']} ({b['architecture']})" for b in machine["blas"]})) or "none found"
    pinned = "".join(f", {k}={v}" for k, v in machine["openblas_env"].items())
    print(f"lstm_adv.bench: B={B} T={T} n_words={shapes['n_words']} wdim={shapes['wdim']} hdim={shapes['hdim']} "
          f"adadelta (Wemb "
          f"{shapes['wemb_update']}), mode C's LSTM {shapes['lstm_kernel']}, eval B={EVAL_B} T={EVAL_T}; "
          f"{machine['cpus']} CPUs, load {machine['loadavg_start'][0]:.1f}; BLAS {kernels}{pinned}", flush=True)
    results = []
    for mode in modes:
        why = _available(mode)
        if why:
            print(f"{mode:>12}: skipped ({why})", flush=True)
            results.append({"mode": mode, "skipped": why})
            continue
        for floatX in floatxs:
            # Only the first measurement that gives figures is profiled.
            profile = shapes["breakdown"] and not any("update" in r for r in results)
            try:
                if cold:
                    with tempfile.TemporaryDirectory(prefix="lstm_adv_bench_") as tmp:
                        first = _run_worker(mode, floatX, reps, tmp, dict(shapes, breakdown=False))
                        r = _run_worker(mode, floatX, reps, tmp, dict(shapes, breakdown=profile))
                else:
                    first, r = None, _run_worker(mode, floatX, reps, None, dict(shapes, breakdown=profile))
            except WorkerFailed as err:
                # One mode's failure (a compiler, a library) must not cost the other modes' figures.
                print(f"{mode:>12} {floatX:>7} | failed ({err.summary}); its error output is in {out}", flush=True)
                results.append({"mode": mode, "floatX": floatX, "failed": err.summary,
                                 "stderr_tail": err.stderr[-5000:]})
                continue
            if first is not None:
                r["cold_compile_s"] = round(first["compile_s"]["clean"] + first["compile_s"]["adversarial"], 2)
                r["cold_run"] = first
                r["bitwise_same_across_processes"] = all(
                    first["update"][k]["params_sha256_after_5"] == r["update"][k]["params_sha256_after_5"]
                    for k in ("clean", "adversarial"))
            results.append(r)
            print(_line(r), flush=True)
            if "breakdown" in r:
                print("\n".join(breakdown_lines(r)), flush=True)
    machine["loadavg_end"] = os.getloadavg()
    record = {"machine": machine, "settings": {"B": B, "T": T, "n_words": shapes["n_words"], "wdim": shapes["wdim"],
                                               "hdim": shapes["hdim"],
                                               "reps": reps, "wemb_update": shapes["wemb_update"],
                                               "lstm_kernel": shapes["lstm_kernel"]},
              "results": results}
    try:
        atomic_write_text(out, json.dumps(record, indent=2))
    except OSError as err:   # checked before the work; a full disk since then, say
        raise UserError(f"cannot write out={out} ({err.strerror or err}); the figures are above") from None
    print(f"wrote {out}")
    failed = [f"{r['mode']} {r['floatX']}" for r in results if "failed" in r]
    if failed:
        print(f"error: {len(failed)} measurement(s) failed ({', '.join(failed)}): their lines above say how",
              file=sys.stderr)
        return 1
    return 0

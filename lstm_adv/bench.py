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
- the update's matrix-product FLOPs against this machine's measured NumPy float32 matmul speed
  for the same shapes (single-threaded, as the model runs): the "FLOP floor" in ms and the
  fraction of it reached;
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

Breakdown (``breakdown=1``, the default): the adversarial update of the first mode compiled once
more with PyTensor's profiler, its time per phase (ms per update and share): input projections
and the other whole-sequence products (outside the recurrence), the forward and the backward
recurrence (scans, or mode C's `LSTMSeq` / `LSTMSeqGrad`), the embedding gradient (rows, or the
dense zero-filled scatter), the optimizer step on ``Wemb`` and on the other parameters,
everything else. The profiler times each node (its own overhead is
in the total it reports, which is above the unprofiled median).
"""

import hashlib
import importlib.util
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import checks
from .common.errors import UserError
from .common.lifecycle import cli_entry
from .common.options import help_text, option, parse, wants_help
from .common.utils import atomic_write_text
from .config import parse_args
from .core.backend import blas_info, flush_denormals, limit_blas_threads
from .data import prepare_data

B, T, N_WORDS, DIM = 16, 100, 10000, 128
WDIM, HDIM = DIM, DIM  # set per run (wdim=, hdim=, preset=authors)
WEMB_UPDATE = "lazy"
LSTM_KERNEL = "seq"
# Set on some machines (older OpenBLAS builds crash on newer CPUs): they pin a kernel, recorded with the figures.
BLAS_KERNEL_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
EVAL_B, EVAL_T = 64, 256
ALL_MODES = ("C", "NUMBA", "JAX", "FAST_COMPILE")


# ---- the measurement, in a worker process ---------------------------------------------------
def _batch(rng, b, t, floatX):
    seqs = [list(rng.integers(2, N_WORDS, size=t)) for _ in range(b)]  # uniform ids: the most rows per batch
    return prepare_data(seqs, rng.integers(0, 2, size=b), floatX)


def _time(fn, args, reps):
    wall, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(*args)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    return 1000 * float(np.median(wall)), 1000 * float(np.median(cpu)), 1000 * float(np.min(wall))


def matmul_speed(reps=200):
    """Single-threaded NumPy float32 GFLOP/s for the model's per-step and whole-sequence products."""
    rng = np.random.default_rng(0)
    out = {}
    for name, (m, k, n) in {"step": (B, HDIM, 4 * HDIM), "sequence": (B * T, WDIM, 4 * HDIM)}.items():
        a = rng.random((m, k), dtype=np.float32)
        b = rng.random((k, n), dtype=np.float32)
        r = reps if name == "step" else max(reps // 20, 5)
        best = np.inf
        for _ in range(5):
            c0 = time.process_time()
            for _ in range(r):
                a @ b
            best = min(best, (time.process_time() - c0) / r)
        out[name] = 2 * m * k * n / best / 1e9
    return out


def update_flops(adversarial, adv_emb_grad=0):
    """Matrix-product FLOPs of one update, split into per-step and whole-sequence products.

    Per LSTM branch: forward h_{t-1} U (per step) and emb W (sequence); backward dpre U^T (per
    step), the sums over time for dU and dW (sequence) and, where the embedding gradient is
    needed (the clean branch; the adversarial one only with adv_emb_grad=1), dpre W^T.
    """
    unit_h = 2 * T * B * HDIM * 4 * HDIM   # h U, dpre U^T, and the sum over time for dU
    unit_e = 2 * T * B * WDIM * 4 * HDIM   # emb W, dpre W^T, and the sum over time for dW
    # The clean branch: 2 per-step (H), sequence: emb W, dW, dpre W^T (E) and dU (H).
    step, seq = 2 * unit_h, 3 * unit_e + unit_h
    if adversarial:  # the adversarial branch: 2 per-step, emb W, dW (+ dpre W^T with adv_emb_grad=1), dU
        step, seq = step + 2 * unit_h, seq + (2 + adv_emb_grad) * unit_e + unit_h
    return {"step": step, "sequence": seq}


def _floor_ms(flops, speed):
    return 1000 * sum(flops[k] / (speed[k] * 1e9) for k in flops)


def worker(mode, floatX, reps, shapes=None):
    """One mode and precision in this process; returns the measurements as a dict."""
    _set_shapes(shapes)
    load_before = os.getloadavg()
    import pytensor  # PyTensor in the worker process only: the driver and --help stay fast

    from .core.compiled import Model  # PyTensor: worker process only
    blas_set = limit_blas_threads(1)   # as the entry points run the model
    flushed = flush_denormals()        # as train's default denormals=flush

    res = {"mode": mode, "floatX": floatX, "compile_s": {}, "update": {},
           "shapes": {"wdim": WDIM, "hdim": HDIM, "n_words": N_WORDS, "wemb_update": WEMB_UPDATE,
                      "lstm_kernel": LSTM_KERNEL}}
    rng = np.random.default_rng(0)
    x, mask, y = _batch(rng, B, T, floatX)
    xe, maske, _ = _batch(rng, EVAL_B, EVAL_T, floatX)
    models = {}
    for name, eps in (("clean", "0"), ("adversarial", "0.5")):
        cfg = parse_args([f"mode={mode}", f"floatX={floatX}", f"eps={eps}", f"n_words={N_WORDS}",
                          f"wdim={WDIM}", f"hdim={HDIM}"])
        t0 = time.perf_counter()
        m = Model(cfg, N_WORDS, wemb_update=WEMB_UPDATE, lstm_kernel=LSTM_KERNEL)
        p0 = {k: v.copy() for k, v in m.get_params().items()}
        state0 = _state(m)
        m.f_train(x, mask, y)
        if name == "clean":
            m.f_pred_prob(xe, maske)
        res["compile_s"][name] = round(time.perf_counter() - t0, 2)
        models[name] = (m, p0, state0)
    for name, (m, p0, state0) in models.items():
        wall, cpu, best = _time(m.f_train, (x, mask, y), reps)
        res["update"][name] = {"ms_median": round(wall, 2), "cpu_ms_median": round(cpu, 2), "ms_min": round(best, 2),
                               "tokens_per_s": round(B * T / (wall / 1000)), "flops": sum(update_flops(name != "clean").values())}
        # Reproducibility: a few updates from the start, hashed (compared across processes).
        _restore(m, p0, state0)
        for _ in range(5):
            m.f_train(x, mask, y)
        h = hashlib.sha256()
        for k, v in m.get_params().items():
            h.update(k.encode() + np.ascontiguousarray(v).tobytes())
        res["update"][name]["params_sha256_after_5"] = h.hexdigest()[:16]
    if mode == "JAX":
        # JAX compiles once per padded shape (lstm_adv.core.jax_backend): T=100 runs in bucket 128.
        from .core.jax_backend import bucket_length  # only for mode=JAX

        res["jax_buckets"] = {"update": [bucket_length(T), B], "eval": [bucket_length(EVAL_T), EVAL_B]}
        res["compile_per_bucket"] = [
            {"model": name, "function": f.name, "T": t, "B": b, "s": round(sum(parts), 2),
             "pytensor_s": round(parts[0], 2), "jax_first_call_s": round(parts[1], 2)}
            for name, (mm, _, _) in models.items() for f in mm._jax_functions
            for (t, b), parts in sorted(f.compile_parts.items())]
    u = res["update"]
    res["adv_clean_ratio"] = round(u["adversarial"]["ms_median"] / u["clean"]["ms_median"], 2)
    res["adv_clean_ratio_cpu"] = round(u["adversarial"]["cpu_ms_median"] / u["clean"]["cpu_ms_median"], 2)
    m = models["clean"][0]
    wall, cpu, _ = _time(m.f_pred_prob, (xe, maske), max(reps // 3, 5))
    res["eval"] = {"batch": EVAL_B, "steps": EVAL_T, "ms_median": round(wall, 2), "cpu_ms_median": round(cpu, 2),
                   "reviews_per_s": round(EVAL_B / (wall / 1000)), "tokens_per_s": round(EVAL_B * EVAL_T / (wall / 1000))}
    speed = matmul_speed()
    res["matmul_gflops"] = {k: round(v, 1) for k, v in speed.items()}
    for name in ("clean", "adversarial"):
        floor = _floor_ms(update_flops(name != "clean"), speed)
        res["update"][name]["flop_floor_ms"] = round(floor, 2)
        res["update"][name]["fraction_of_matmul_peak"] = round(floor / res["update"][name]["cpu_ms_median"], 3)
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    res["blas_threads_set_to_1"] = [os.path.basename(p) for p in blas_set]
    res["denormals_flushed"] = flushed
    res["pytensor"] = {"version": pytensor.__version__, "blas__ldflags": pytensor.config.blas__ldflags,
                       "linker": str(m.mode.linker)}
    if (shapes or {}).get("breakdown", True):
        m, p0, state0 = models["adversarial"]
        _restore(m, p0, state0)
        res["breakdown"] = breakdown(m, (x, mask, y), reps)
    res["loadavg"] = {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in os.getloadavg()]}
    return res


def _set_shapes(shapes):
    global WDIM, HDIM, N_WORDS, WEMB_UPDATE, LSTM_KERNEL
    shapes = shapes or {}
    LSTM_KERNEL = shapes.get("lstm_kernel", LSTM_KERNEL)
    WDIM, HDIM = int(shapes.get("wdim", WDIM)), int(shapes.get("hdim", HDIM))
    N_WORDS = int(shapes.get("n_words", N_WORDS))
    WEMB_UPDATE = shapes.get("wemb_update", WEMB_UPDATE)


# ---- the per-phase breakdown (PyTensor's profiler) -------------------------------------------
PHASES = ("input projections (sequence products)", "forward recurrence", "backward recurrence", "embedding gradient",
          "optimizer step Wemb", "optimizer step rest", "everything else")


def _phase_labels(fn):
    """Phase of every node of a compiled update, from the op and which updates it feeds."""
    from pytensor.scan.op import Scan  # PyTensor: worker process only (see `worker`)
    from pytensor.tensor.extra_ops import Unique  # (as above)
    from pytensor.tensor.subtensor import AdvancedIncSubtensor1

    from .core.sequence_ops import LSTMSeq, LSTMSeqGrad  # (as above)

    fg = fn.maker.fgraph
    # What each output is: the cost, or the update of a named shared variable.
    out_kind = ["other"] * len(fg.outputs)
    for i_out, i_in in fg.update_mapping.items():
        name = fn.maker.expanded_inputs[i_in].variable.name or ""
        out_kind[i_out] = "wemb" if name.startswith("Wemb") else ("rest" if not name.startswith("rng") else "other")
    reach = {}
    for i, v in enumerate(fg.outputs):
        reach.setdefault(v, set()).add(out_kind[i])
    nodes = fg.toposort()
    feeds = {}
    for node in reversed(nodes):
        kinds = set()
        for out in node.outputs:
            kinds |= reach.get(out, set())
            for client, _ in fg.clients.get(out, []):
                if client != "output" and hasattr(client, "op"):
                    kinds |= feeds.get(client, set())
        feeds[node] = kinds
        for inp in node.inputs:
            reach.setdefault(inp, set())
    # The embedding gradient: the scatter-add into zeros (rows or dense) and what feeds only it.
    scatter = [n for n in nodes if isinstance(n.op, AdvancedIncSubtensor1) and not n.op.set_instead_of_inc
               and feeds[n] == {"wemb"}]
    emb_grad = set()
    stack = list(scatter)
    while stack:
        n = stack.pop()
        if n in emb_grad:
            continue
        emb_grad.add(n)
        stack += [i.owner for i in n.inputs if i.owner is not None and feeds.get(i.owner) == {"wemb"}]
    labels = {}
    for n in nodes:
        op = n.op
        # The recurrence: scans (NUMBA, JAX, lstm_kernel="c") or the whole-sequence Ops (mode C).
        if isinstance(op, LSTMSeqGrad) or (isinstance(op, Scan) and "backward" in (op.name or "")):
            labels[n] = "backward recurrence"
        elif isinstance(op, (Scan, LSTMSeq)):
            labels[n] = "forward recurrence"
        elif n in emb_grad or isinstance(op, Unique):
            labels[n] = "embedding gradient"
        elif "Dot" in type(op).__name__ or "Gemm" in type(op).__name__ or "Gemv" in type(op).__name__:
            labels[n] = "input projections (sequence products)"
        elif feeds[n] == {"wemb"}:
            labels[n] = "optimizer step Wemb"
        elif feeds[n] == {"rest"}:
            labels[n] = "optimizer step rest"
        else:
            labels[n] = "everything else"
    return labels


def breakdown(m, batch, reps):
    """Milliseconds per adversarial update by phase (`PHASES`), from PyTensor's profiler."""
    import pytensor  # worker process only (see `worker`)

    inputs, cost, updates = m._train_spec
    with pytensor.config.change_flags(floatX=m.cfg.floatX):
        fn = pytensor.function(inputs, cost, updates=updates, mode=m.mode, name="f_train_profiled",
                               on_unused_input="ignore", profile=True)
    fn(*batch)
    fn.profile.apply_time.clear()
    calls = max(reps, 5)
    t0 = time.perf_counter()
    for _ in range(calls):
        fn(*batch)
    wall = 1000 * (time.perf_counter() - t0) / calls
    labels = _phase_labels(fn)
    ms = dict.fromkeys(PHASES, 0.0)
    for (fg, node), t in fn.profile.apply_time.items():
        ms[labels.get(node, "everything else")] += 1000 * t / calls
    total = sum(ms.values())
    return {"ms_per_update_profiled": round(wall, 2), "ms_in_nodes": round(total, 2),
            "phases_ms": {k: round(v, 2) for k, v in ms.items()},
            "phases_share": {k: round(v / total, 3) if total else None for k, v in ms.items()}}


def _breakdown_lines(r):
    b = r["breakdown"]
    sh = r.get("shapes", {})
    lines = [f"breakdown of one adversarial update ({r['mode']} {r['floatX']}, wdim={sh.get('wdim')} "
             f"hdim={sh.get('hdim')} n_words={sh.get('n_words')}, Wemb update {sh.get('wemb_update')}; "
             f"profiled {b['ms_per_update_profiled']:.1f} ms/update, {b['ms_in_nodes']:.1f} ms in nodes):"]
    for k in PHASES:
        lines.append(f"  {k:<40} {b['phases_ms'][k]:7.2f} ms  {100 * (b['phases_share'][k] or 0):5.1f}%")
    return lines


def _state(m):
    return (m.get_opt_state(), {k: v.get_value().bit_generator.state for k, v in m.rngs.items()})


def _restore(m, p0, state0):
    m.set_params(p0)
    opt, rngs = state0
    m.set_opt_state(opt)
    for k, v in m.rngs.items():
        g = np.random.default_rng()
        g.bit_generator.state = rngs[k]
        v.set_value(g)


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
    root = str(Path(__file__).resolve().parent.parent)
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
    global WDIM, HDIM, N_WORDS
    WDIM, HDIM, N_WORDS = shapes["wdim"], shapes["hdim"], shapes["n_words"]
    machine = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
               "cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_start": os.getloadavg(),
               # The BLAS kernel changes the figures by 15-20%: OPENBLAS_CORETYPE pins an older one.
               "blas": blas_info(), "openblas_env": {v: os.environ[v] for v in BLAS_KERNEL_VARS if v in os.environ}}
    kernels = ", ".join(sorted({f"{b['library']} ({b['architecture']})" for b in machine["blas"]})) or "none found"
    pinned = "".join(f", {k}={v}" for k, v in machine["openblas_env"].items())
    print(f"lstm_adv.bench: B={B} T={T} n_words={N_WORDS} wdim={WDIM} hdim={HDIM} adadelta (Wemb "
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
                print("\n".join(_breakdown_lines(r)), flush=True)
    machine["loadavg_end"] = os.getloadavg()
    record = {"machine": machine, "settings": {"B": B, "T": T, "n_words": N_WORDS, "wdim": WDIM, "hdim": HDIM,
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


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], sys.argv[3], int(sys.argv[4]),
                                json.loads(sys.argv[5]) if len(sys.argv) > 5 else None)))
        sys.exit(0)
    sys.exit(cli_entry(main)(sys.argv[1:]))

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
- JAX only: the compile time of every padded shape (`lstm_adv.jax_backend`; T=100 runs padded
  to its bucket, 128), split into PyTensor's graph rewriting and JAX's trace + XLA compile.

Options: ``modes=`` (comma list of C, NUMBA, JAX, FAST_COMPILE; default C,NUMBA and JAX if
installed), ``floatX=`` (comma list), ``reps=`` (timed updates per objective, default 30),
``out=`` (JSON file, default bench.json), ``cold=0`` (one process in PyTensor's usual compile
directory instead: no cold figure, no cross-process check).
"""

import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

B, T, N_WORDS, DIM = 16, 100, 10000, 128
EVAL_B, EVAL_T = 64, 256
ALL_MODES = ("C", "NUMBA", "JAX", "FAST_COMPILE")


# ---- the measurement, in a worker process ---------------------------------------------------
def _batch(rng, b, t, floatX):
    from .data import prepare_data

    seqs = [list(rng.integers(2, N_WORDS, size=t)) for _ in range(b)]
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
    for name, (m, k, n) in {"step": (B, DIM, 4 * DIM), "sequence": (B * T, DIM, 4 * DIM)}.items():
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
    unit = 2 * T * B * DIM * 4 * DIM
    step, seq = 2, 4  # the clean branch: 2 per-step, 4 whole-sequence products
    if adversarial:   # the adversarial branch: 2 per-step, 3 (4 with adv_emb_grad=1) sequence
        step, seq = step + 2, seq + 3 + adv_emb_grad
    return {"step": step * unit, "sequence": seq * unit}


def _floor_ms(flops, speed):
    return 1000 * sum(flops[k] / (speed[k] * 1e9) for k in flops)


def worker(mode, floatX, reps):
    """One mode and precision in this process; returns the measurements as a dict."""
    load_before = os.getloadavg()
    from . import graph
    from .config import parse_args

    import pytensor

    res = {"mode": mode, "floatX": floatX, "compile_s": {}, "update": {}}
    rng = np.random.default_rng(0)
    x, mask, y = _batch(rng, B, T, floatX)
    xe, maske, _ = _batch(rng, EVAL_B, EVAL_T, floatX)
    models = {}
    for name, eps in (("clean", "0"), ("adversarial", "0.5")):
        cfg = parse_args([f"mode={mode}", f"floatX={floatX}", f"eps={eps}", f"n_words={N_WORDS}"])
        t0 = time.perf_counter()
        m = graph.Model(cfg, N_WORDS)
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
        # JAX compiles once per padded shape (lstm_adv.jax_backend): T=100 runs in bucket 128.
        from .jax_backend import bucket_length

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
    res["blas_threads_set_to_1"] = [os.path.basename(p) for p in getattr(m, "blas_threads_set", [])]
    res["pytensor"] = {"version": pytensor.__version__, "blas__ldflags": pytensor.config.blas__ldflags,
                       "linker": str(m.mode.linker)}
    res["loadavg"] = {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in os.getloadavg()]}
    return res


def _state(m):
    return ({k: np.array(v.get_value()) for k, v in m.opt_state.items()},
            {k: v.get_value().bit_generator.state for k, v in m.rngs.items()})


def _restore(m, p0, state0):
    m.set_params(p0)
    opt, rngs = state0
    for k, v in m.opt_state.items():
        v.set_value(opt[k])
    for k, v in m.rngs.items():
        g = np.random.default_rng()
        g.bit_generator.state = rngs[k]
        v.set_value(g)


# ---- the driver ---------------------------------------------------------------------------
def _available(mode):
    if mode == "JAX":
        try:
            import jax  # noqa: F401
        except ImportError:
            return "jax is not installed (pip install -e '.[jax]')"
    if mode == "C":
        import pytensor

        if not pytensor.config.cxx:
            return "no C++ compiler for PyTensor"
    return None


def _run_worker(mode, floatX, reps, compiledir=None):
    env = dict(os.environ)
    if compiledir is not None:  # else PyTensor's usual (shared, probably warm) compile directory
        flags = env.get("PYTENSOR_FLAGS", "")
        env["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, f"base_compiledir={compiledir}") if f)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lstm_adv.bench", "--worker", mode, floatX, str(reps)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"bench worker {mode}/{floatX} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_s"] = round(time.perf_counter() - t0, 1)
    return res


def _parse(argv):
    from . import checks
    from .config import split_key_values
    from .errors import UserError

    opts = {"modes": None, "floatX": "float32", "reps": "30", "out": "bench.json", "cold": "1"}
    for k, v in split_key_values(argv, opts):
        opts[k] = v
    if opts["modes"] is None:
        opts["modes"] = "C,NUMBA" + (",JAX" if _available("JAX") is None else "")
    modes = [m.strip().upper() for m in opts["modes"].split(",") if m.strip()]
    bad = [m for m in modes if m not in ALL_MODES]
    if bad or not modes:
        raise UserError(f"modes={opts['modes']}: choose from {', '.join(ALL_MODES)}")
    floatxs = [f.strip() for f in opts["floatX"].split(",") if f.strip()]
    if not floatxs:
        raise UserError("floatX= is empty; e.g. floatX=float32")
    for f in floatxs:
        checks.choice("floatX", f, ("float32", "float64"))
    reps = checks.integer("reps", opts["reps"], minimum=1, maximum=100000)
    cold = checks.choice("cold", opts["cold"].strip(), ("0", "1"))
    checks.writable_file("out", opts["out"])
    return modes, floatxs, reps, opts["out"], cold != "0"


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
    if any(a in ("-h", "--help", "help") for a in argv):
        print(__doc__)
        return 0
    modes, floatxs, reps, out, cold = _parse(argv)
    machine = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
               "cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_start": os.getloadavg()}
    print(f"lstm_adv.bench: B={B} T={T} n_words={N_WORDS} wdim=hdim={DIM} adadelta, eval B={EVAL_B} T={EVAL_T}; "
          f"{machine['cpus']} CPUs, load {machine['loadavg_start'][0]:.1f}", flush=True)
    results = []
    for mode in modes:
        why = _available(mode)
        if why:
            print(f"{mode:>12}: skipped ({why})", flush=True)
            results.append({"mode": mode, "skipped": why})
            continue
        for floatX in floatxs:
            if cold:
                with tempfile.TemporaryDirectory(prefix="lstm_adv_bench_") as tmp:
                    first = _run_worker(mode, floatX, reps, tmp)
                    r = _run_worker(mode, floatX, reps, tmp)
            else:
                first, r = None, _run_worker(mode, floatX, reps)
            if first is not None:
                r["cold_compile_s"] = round(first["compile_s"]["clean"] + first["compile_s"]["adversarial"], 2)
                r["cold_run"] = first
                r["bitwise_same_across_processes"] = all(
                    first["update"][k]["params_sha256_after_5"] == r["update"][k]["params_sha256_after_5"]
                    for k in ("clean", "adversarial"))
            results.append(r)
            print(_line(r), flush=True)
    machine["loadavg_end"] = os.getloadavg()
    Path(out).write_text(json.dumps({"machine": machine, "settings": {"B": B, "T": T, "n_words": N_WORDS,
                                                                      "wdim": DIM, "hdim": DIM, "reps": reps},
                                     "results": results}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
        sys.exit(0)
    from .errors import cli_entry
    sys.exit(cli_entry(main)(sys.argv[1:]))

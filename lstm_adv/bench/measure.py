"""The measurement of one mode and float type, in a worker process (`worker`; the driver is
`lstm_adv.bench`): compile times, ms per update, evaluation speed, the matmul floor, a hash of the
parameters after a few updates.

The shapes travel as one `Shapes` value (``wdim=`` ...), never as module globals.
"""

import hashlib
import os
import resource
import time
from dataclasses import asdict, dataclass

import numpy as np

from ..config import parse_args
from ..core.backend import flush_denormals, limit_blas_threads
from ..data import prepare_data

B, T, DIM, N_WORDS = 16, 100, 128, 10000   # the training batch: 16 reviews x 100 steps; the tutorial's sizes
EVAL_B, EVAL_T = 64, 256


@dataclass(frozen=True)
class Shapes:
    """What one measurement builds: the model's sizes, adadelta's update of ``Wemb`` and mode C's LSTM
    (`lstm_adv.core.compiled.Model`), and whether to profile the adversarial update (`breakdown`)."""

    wdim: int = DIM
    hdim: int = DIM
    n_words: int = N_WORDS
    wemb_update: str = "lazy"
    lstm_kernel: str = "seq"
    breakdown: bool = True

    @classmethod
    def of(cls, shapes):
        """From a JSON dict (the worker's argument); keys left out keep their defaults."""
        return cls(**{k: v for k, v in (shapes or {}).items() if k in cls.__dataclass_fields__})

    def model_keys(self):
        """The record's ``shapes``: what the model was built with."""
        return {k: v for k, v in asdict(self).items() if k != "breakdown"}


def _batch(rng, b, t, floatX, n_words):
    seqs = [list(rng.integers(2, n_words, size=t)) for _ in range(b)]  # uniform ids: the most rows per batch
    return prepare_data(seqs, rng.integers(0, 2, size=b), floatX)


def _time(fn, args, reps):
    wall, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(*args)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    return 1000 * float(np.median(wall)), 1000 * float(np.median(cpu)), 1000 * float(np.min(wall))


def matmul_speed(shapes, dtype="float32", reps=200):
    """Single-threaded NumPy GFLOP/s in ``dtype`` (the measured model's floatX: a float64 update is
    compared with float64 products) for the model's per-step and whole-sequence products."""
    rng = np.random.default_rng(0)
    out = {}
    H, E = shapes.hdim, shapes.wdim
    for name, (m, k, n) in {"step": (B, H, 4 * H), "sequence": (B * T, E, 4 * H)}.items():
        a = rng.random((m, k), dtype=np.dtype(dtype))
        b = rng.random((k, n), dtype=np.dtype(dtype))
        r = reps if name == "step" else max(reps // 20, 5)
        best = np.inf
        for _ in range(5):
            c0 = time.process_time()
            for _ in range(r):
                a @ b
            best = min(best, (time.process_time() - c0) / r)
        out[name] = 2 * m * k * n / best / 1e9
    return out


def update_flops(adversarial, shapes, adv_emb_grad=0):
    """Matrix-product FLOPs of one update, split into per-step and whole-sequence products.

    Per LSTM branch: forward h_{t-1} U (per step) and emb W (sequence); backward dpre U^T (per
    step), the sums over time for dU and dW (sequence) and, where the embedding gradient is
    needed (the clean branch; the adversarial one only with adv_emb_grad=1), dpre W^T.
    """
    H, E = shapes.hdim, shapes.wdim
    unit_h = 2 * T * B * H * 4 * H   # h U, dpre U^T, and the sum over time for dU
    unit_e = 2 * T * B * E * 4 * H   # emb W, dpre W^T, and the sum over time for dW
    # The clean branch: 2 per-step (H), sequence: emb W, dW, dpre W^T (E) and dU (H).
    step, seq = 2 * unit_h, 3 * unit_e + unit_h
    if adversarial:  # the adversarial branch: 2 per-step, emb W, dW (+ dpre W^T with adv_emb_grad=1), dU
        step, seq = step + 2 * unit_h, seq + (2 + adv_emb_grad) * unit_e + unit_h
    return {"step": step, "sequence": seq}


def _floor_ms(flops, speed):
    return 1000 * sum(flops[k] / (speed[k] * 1e9) for k in flops)


def worker(mode, floatX, reps, shapes=None):
    """One mode and precision in this process; returns the measurements as a dict.

    ``shapes``: a JSON dict of `Shapes` (the driver's keys)."""
    shapes = Shapes.of(shapes)
    load_before = os.getloadavg()
    import pytensor  # PyTensor in the worker process only: the driver and --help stay fast

    from ..core.compiled import Model  # PyTensor: worker process only
    blas_set = limit_blas_threads(1)   # as the entry points run the model
    flushed = flush_denormals()        # as train's default denormals=flush

    res = {"mode": mode, "floatX": floatX, "compile_s": {}, "update": {},
           "shapes": shapes.model_keys()}
    rng = np.random.default_rng(0)
    x, mask, y = _batch(rng, B, T, floatX, shapes.n_words)
    xe, maske, _ = _batch(rng, EVAL_B, EVAL_T, floatX, shapes.n_words)
    models = {}
    for name, eps in (("clean", "0"), ("adversarial", "0.5")):
        cfg = parse_args([f"mode={mode}", f"floatX={floatX}", f"eps={eps}", f"n_words={shapes.n_words}",
                          f"wdim={shapes.wdim}", f"hdim={shapes.hdim}"])
        t0 = time.perf_counter()
        m = Model(cfg, shapes.n_words, wemb_update=shapes.wemb_update, lstm_kernel=shapes.lstm_kernel)
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
                               "tokens_per_s": round(B * T / (wall / 1000)), "flops": sum(update_flops(name != "clean", shapes).values())}
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
        from ..core.jax_backend import bucket_length  # only for mode=JAX

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
    speed = matmul_speed(shapes, floatX)
    res["matmul_gflops"] = {k: round(v, 1) for k, v in speed.items()}
    res["matmul_dtype"] = floatX
    for name in ("clean", "adversarial"):
        floor = _floor_ms(update_flops(name != "clean", shapes), speed)
        res["update"][name]["flop_floor_ms"] = round(floor, 2)
        res["update"][name]["fraction_of_matmul_peak"] = round(floor / res["update"][name]["cpu_ms_median"], 3)
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    res["blas_threads_set_to_1"] = [os.path.basename(p) for p in blas_set]
    res["denormals_flushed"] = flushed
    res["pytensor"] = {"version": pytensor.__version__, "blas__ldflags": pytensor.config.blas__ldflags,
                       "linker": str(m.mode.linker)}
    if shapes.breakdown:
        from .profiling import breakdown  # PyTensor's profiler: only when asked

        m, p0, state0 = models["adversarial"]
        _restore(m, p0, state0)
        res["breakdown"] = breakdown(m, (x, mask, y), reps)
    res["loadavg"] = {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in os.getloadavg()]}
    return res


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

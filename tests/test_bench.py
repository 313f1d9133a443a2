"""The speed benchmark (`python -m lstm_adv.bench`): end to end on tiny shapes, and its cold/cached bookkeeping.

The figures themselves are timings (not asserted); what is asserted is what the benchmark
promises around them: one result per mode and float type, the keys given reaching the workers,
unavailable modes reported as skipped, the parameter hash after a few updates reproducible
across processes, and with ``cold=1`` two workers per measurement sharing one fresh compile
directory, compared bit for bit.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import HANG_GUARD
from lstm_adv import bench
from lstm_adv.common.lifecycle import cli_entry

TINY_SHAPES = ["wdim=8", "hdim=8", "n_words=50"]


@pytest.mark.slow
def test_bench_end_to_end_on_tiny_shapes(tmp_path, monkeypatch, capsys):
    # JAX reported missing (whether or not it is installed): its line says skipped, nothing runs.
    real = bench._available
    monkeypatch.setattr(bench, "_available", lambda mode: "not here (test)" if mode == "JAX" else real(mode))
    out = tmp_path / "bench.json"
    assert cli_entry(bench.main)(["modes=c,JAX", "reps=3", "cold=0", *TINY_SHAPES, f"out={out}"]) == 0
    printed = capsys.readouterr().out
    assert "n_words=50 wdim=8 hdim=8" in printed and "JAX: skipped (not here (test))" in printed
    assert printed.rstrip().endswith(f"wrote {out}")

    rep = json.loads(out.read_text())
    # The BLAS libraries and the kernel each runs (OPENBLAS_CORETYPE pins one), on the first line too.
    blas = rep["machine"]["blas"]
    assert blas and all(b["library"] and b["architecture"] and b["file"] for b in blas), blas
    assert f"BLAS {blas[0]['library'].split()[0]}" in printed.splitlines()[0]
    assert set(rep["machine"]["openblas_env"]) <= {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}
    assert rep["settings"] == {"B": bench.B, "T": bench.T, "n_words": 50, "wdim": 8, "hdim": 8, "reps": 3,
                               "wemb_update": "lazy", "lstm_kernel": "seq"}
    c, jax = rep["results"]
    assert jax == {"mode": "JAX", "skipped": "not here (test)"}
    assert (c["mode"], c["floatX"]) == ("C", "float32")
    assert c["shapes"] == {"wdim": 8, "hdim": 8, "n_words": 50, "wemb_update": "lazy",
                           "lstm_kernel": "seq"}   # the keys reached the worker
    assert "cold_compile_s" not in c and "bitwise_same_across_processes" not in c        # cold=0: one process
    for name in ("clean", "adversarial"):
        u = c["update"][name]
        assert 0 < u["ms_min"] <= u["ms_median"] and u["cpu_ms_median"] > 0, (name, u)
        # tokens/s comes from the unrounded median, ms_median is rounded to 0.01 ms: they agree within
        # that rounding (a fixed rel=0.01 would fail wherever an update takes under 0.5 ms).
        tokens = bench.B * bench.T * 1000
        assert tokens / (u["ms_median"] + 0.005) - 0.5 <= u["tokens_per_s"] <= tokens / (u["ms_median"] - 0.005) + 0.5, \
            (name, u)
        assert u["flops"] == sum(bench.update_flops(name == "adversarial", bench.Shapes(wdim=8, hdim=8)).values())
    assert c["matmul_dtype"] == "float32"   # the floor of a float32 update: float32 products
    assert c["update"]["adversarial"]["flops"] > c["update"]["clean"]["flops"]
    phases = c["breakdown"]["phases_ms"]   # the first mode's adversarial update, profiled
    assert {"forward recurrence", "backward recurrence", "optimizer step Wemb"} <= set(phases)
    assert phases["forward recurrence"] > 0 and phases["backward recurrence"] > 0
    assert sum(phases.values()) == pytest.approx(c["breakdown"]["ms_in_nodes"], abs=0.01 * len(phases))

    # The hash after 5 updates from the fixed start: the same in a second process (what cold=1
    # compares between its cold and cached worker).
    again = bench._run_worker("C", "float32", 1, None, dict(wdim=8, hdim=8, n_words=50, breakdown=False))
    for name in ("clean", "adversarial"):
        assert again["update"][name]["params_sha256_after_5"] == c["update"][name]["params_sha256_after_5"], name
    assert c["update"]["clean"]["params_sha256_after_5"] != c["update"]["adversarial"]["params_sha256_after_5"]


def _fake_result(mode, floatX, compile_s, sha):
    update = {name: {"ms_median": 10.0, "cpu_ms_median": 9.0, "ms_min": 8.0, "tokens_per_s": 160000, "flops": 1,
                     "params_sha256_after_5": sha[name], "flop_floor_ms": 1.0, "fraction_of_matmul_peak": 0.1}
              for name in ("clean", "adversarial")}
    return {"mode": mode, "floatX": floatX, "compile_s": {"clean": compile_s, "adversarial": 2 * compile_s},
            "update": update, "adv_clean_ratio": 1.0, "adv_clean_ratio_cpu": 1.0,
            "eval": {"tokens_per_s": 1000}, "peak_rss_mb": 100.0}


def test_cold_runs_two_workers_in_one_fresh_compile_directory_and_compares_their_bits(tmp_path, monkeypatch, capsys):
    # The workers stubbed (a real cold compile takes minutes): main's bookkeeping around them.
    calls = []

    def worker(mode, floatX, reps, compiledir, shapes):
        calls.append((mode, floatX, reps, compiledir, os.path.isdir(compiledir), dict(shapes)))
        first = sum(1 for c in calls if c[:2] == (mode, floatX)) == 1
        sha = {"clean": "same", "adversarial": "same" if floatX == "float32" or first else "differs"}
        return _fake_result(mode, floatX, 5.0 if first else 1.0, sha)

    monkeypatch.setattr(bench, "_run_worker", worker)
    monkeypatch.setattr(bench, "_available", lambda mode: None)
    out = tmp_path / "bench.json"
    assert cli_entry(bench.main)(["modes=C,NUMBA", "floatX=float32,float64", "reps=2", *TINY_SHAPES,
                                  f"out={out}"]) == 0
    printed = capsys.readouterr().out
    assert [c[:3] for c in calls] == [(m, f, 2) for m in ("C", "NUMBA") for f in ("float32", "float64") for _ in (0, 1)]
    for cold, cached in zip(calls[::2], calls[1::2]):
        assert cold[3] == cached[3] and cold[4] and cached[4]   # one compile directory, existing, for both
        assert cold[5]["breakdown"] is False                     # the cold worker is never profiled
    assert len({c[3] for c in calls}) == 4 and not any(os.path.exists(c[3]) for c in calls)   # fresh, then removed
    # Only the first measurement is profiled.
    assert [c[5]["breakdown"] for c in calls[1::2]] == [True, False, False, False]

    results = json.loads(out.read_text())["results"]
    assert [(r["mode"], r["floatX"]) for r in results] == [("C", "float32"), ("C", "float64"),
                                                          ("NUMBA", "float32"), ("NUMBA", "float64")]
    for r in results:
        assert r["cold_compile_s"] == 15.0 and r["compile_s"] == {"clean": 1.0, "adversarial": 2.0}
        assert r["cold_run"]["compile_s"]["clean"] == 5.0
        assert r["bitwise_same_across_processes"] == (r["floatX"] == "float32"), r
    lines = [ln for ln in printed.splitlines() if ln.strip().startswith(("C ", "NUMBA "))]
    assert len(lines) == 4
    assert ["NOT bit-reproducible" in ln for ln in lines] == [False, True, False, True]


def test_a_failed_worker_is_reported_and_the_other_modes_still_run(tmp_path, monkeypatch, capsys):
    # The workers stubbed: C's fails, NUMBA's gives figures (and is the one profiled, as the first that does).
    calls = []

    def worker(mode, floatX, reps, compiledir, shapes):
        calls.append((mode, shapes["breakdown"]))
        if mode == "C":
            raise bench.WorkerFailed(-9, "compiling...\n")
        return _fake_result(mode, floatX, 1.0, {"clean": "a", "adversarial": "b"})

    monkeypatch.setattr(bench, "_run_worker", worker)
    monkeypatch.setattr(bench, "_available", lambda mode: None)
    out = tmp_path / "bench.json"
    assert cli_entry(bench.main)(["modes=C,NUMBA", "cold=0", *TINY_SHAPES, f"out={out}"]) == 1
    captured = capsys.readouterr()
    assert calls == [("C", True), ("NUMBA", True)]
    assert f"C float32 | failed (killed by SIGKILL: compiling...); its error output is in {out}" in captured.out
    assert captured.err == "error: 1 measurement(s) failed (C float32): their lines above say how\n"
    c, numba = json.loads(out.read_text())["results"]
    assert c == {"mode": "C", "floatX": "float32", "failed": "killed by SIGKILL: compiling...",
                 "stderr_tail": "compiling...\n"}
    assert numba["mode"] == "NUMBA" and "update" in numba


def test_a_worker_that_cannot_start_ends_the_command_without_a_traceback(tmp_path):
    """A real worker process that fails at once (a numba that cannot be imported, which only the worker
    imports): one failed line, the record written, exit 1, no traceback from the driver."""
    (tmp_path / "fake" / "numba").mkdir(parents=True)
    (tmp_path / "fake" / "numba" / "__init__.py").write_text('raise ImportError("numba is broken here (test)")\n')
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "fake"), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "lstm_adv.bench", "modes=NUMBA", "cold=0", "reps=1", *TINY_SHAPES,
                        f"out={out}"], env=env, capture_output=True, text=True, timeout=HANG_GUARD)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "NUMBA float32 | failed (exit 1: ImportError: numba is broken here (test))" in r.stdout
    assert r.stderr == "error: 1 measurement(s) failed (NUMBA float32): their lines above say how\n"
    [numba] = json.loads(out.read_text())["results"]
    assert numba["failed"].startswith("exit 1: ImportError") and "Traceback" in numba["stderr_tail"]


def test_the_matmul_floor_is_measured_in_the_models_float_type(monkeypatch):
    # A float64 update against float64 products, not float32 ones (twice as fast on most CPUs).
    from lstm_adv.bench import measure

    made = []
    real = np.random.default_rng

    class Recording:
        def __init__(self, seed):
            self.rng = real(seed)

        def random(self, shape, dtype):
            made.append(np.dtype(dtype))
            return self.rng.random(shape, dtype=dtype)

    monkeypatch.setattr(measure.np.random, "default_rng", Recording)
    speed = measure.matmul_speed(bench.Shapes(wdim=8, hdim=8), "float64", reps=1)
    assert set(speed) == {"step", "sequence"} and all(v > 0 for v in speed.values())
    assert made and set(made) == {np.dtype("float64")}

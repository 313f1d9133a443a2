"""experiments/length_probe.py on a toy run trained with maxlen_mode=truncate."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HANG_GUARD, TINY, assert_one_line_error, merge, read_json, run_cli

PROBE = Path(__file__).resolve().parents[1] / "experiments" / "length_probe.py"


def probe(*args, cwd):
    return subprocess.run([sys.executable, str(PROBE), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=HANG_GUARD, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})


@pytest.mark.slow
def test_probe_reproduces_the_runs_dev_and_test_errors_and_reads_whole_reviews(tmp_path):
    run = tmp_path / "cut"
    proc = run_cli("lstm_adv.train", merge(TINY, ["maxlen=6", "maxlen_mode=truncate", f"saveto={run}"]), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = read_json(run / "metrics.json")
    out = probe(run, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [ln for ln in out.stdout.splitlines() if ln.startswith("| cut |")]
    assert len(rows) == 1, out.stdout
    valid_cut, valid_whole, test_cut, test_whole = (float(c) for c in rows[0].strip("| ").split(" | ")[3:])
    # Cut validation reviews and whole test reviews are what training measured.
    assert valid_cut == round(metrics["valid_err"], 3) and test_whole == round(metrics["test_err"], 3)
    # Toy reviews have 3-16 tokens, their sentiment words anywhere: the first 6 hold less of it, so
    # whole reviews are read better than cut ones in both splits.
    assert valid_whole < valid_cut and test_cut > test_whole


def test_probe_refuses_a_missing_run_before_any_work(tmp_path):
    out = probe(tmp_path / "nothing", cwd=tmp_path)
    assert_one_line_error(out, "no such model", "nothing")
    assert "| run |" not in out.stdout

"""What the README promises of rerunning a training command: ``resume=0`` starts over, a resumed
run trains on to a larger ``max_epochs``, and ``mode=JAX`` trains, checkpoints and resumes from the
command line, each on data=toy at the TINY settings.

An interrupted run is made without racing the clock: the tests' fault hook (``LSTM_ADV_FAULT``,
`lstm_adv.common.faults`) sends the run SIGINT at the end of update N, so it stops (checkpoint,
exit 130) at that update whatever the machine's speed.
"""

import numpy as np
import pytest

from conftest import TINY, load_npz, merge, read_json, run_cli

PARAM_NAMES = ["Wemb", "lstm_W", "lstm_U", "lstm_b", "U", "b"]


def interrupted_run(args, n, cwd):
    """``python -m lstm_adv.train args``, interrupted by SIGINT at the end of update ``n`` (exit 130)."""
    return run_cli("lstm_adv.train", args, cwd, env={"LSTM_ADV_FAULT": f"int@update={n}"})


def assert_same_run(a, b):
    """Two run directories hold the same trained model: parameters bit for bit, history, update counts."""
    pa, pb = load_npz(a / "params.npz"), load_npz(b / "params.npz")
    assert list(pa) == list(pb) == PARAM_NAMES
    for k in PARAM_NAMES:
        assert np.array_equal(pa[k], pb[k]), k
    assert (a / "history.csv").read_text() == (b / "history.csv").read_text()
    ma, mb = read_json(a / "metrics.json"), read_json(b / "metrics.json")
    keys = ("status", "train_err", "valid_err", "test_err", "best_update", "n_updates")
    assert [ma[k] for k in keys] == [mb[k] for k in keys]


def _saveto(args, path):
    return merge(args, [f"saveto={path}"])


@pytest.mark.slow
def test_resume_0_trains_a_finished_run_again_from_scratch(tmp_path):
    ref = _saveto(TINY, tmp_path / "ref")                       # max_epochs=2: 120 updates
    assert run_cli("lstm_adv.train", ref, tmp_path).returncode == 0
    run = _saveto(merge(TINY, ["max_epochs=3"]), tmp_path / "run")
    proc = run_cli("lstm_adv.train", run, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_json(tmp_path / "run" / "metrics.json")["n_updates"] == 180

    # The same directory, resume=0 and a smaller budget: trained from the start, not resumed from
    # its checkpoint (update 180) and not refused as finished; the result is a fresh 2-epoch run's.
    again = merge(run, ["max_epochs=2", "resume=0"])
    proc = run_cli("lstm_adv.train", again, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "already finished" not in proc.stdout and "resumed from" not in proc.stdout
    assert_same_run(tmp_path / "ref", tmp_path / "run")

    # Without resume=0 the finished run is left alone.
    before = (tmp_path / "run" / "params.npz").stat().st_mtime_ns
    proc = run_cli("lstm_adv.train", merge(run, ["max_epochs=2"]), tmp_path)
    assert proc.returncode == 0 and "already finished (status ok); resume=0 trains it again" in proc.stdout
    assert (tmp_path / "run" / "params.npz").stat().st_mtime_ns == before


@pytest.mark.slow
def test_a_resumed_run_trains_on_to_a_larger_max_epochs(tmp_path):
    # max_epochs is not part of a run's identity (README, "A run's identity"): a run interrupted
    # under max_epochs=1 and resumed with max_epochs=3 is, bit for bit, a 3-epoch run.
    ref = _saveto(merge(TINY, ["max_epochs=3"]), tmp_path / "ref")
    assert run_cli("lstm_adv.train", ref, tmp_path).returncode == 0
    short = _saveto(merge(TINY, ["max_epochs=1"]), tmp_path / "run")
    proc = interrupted_run(short, 30, tmp_path)                # mid-epoch 1 (60 updates an epoch)
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert read_json(tmp_path / "run" / "metrics.json")["status"] == "interrupted"

    proc = run_cli("lstm_adv.train", merge(short, ["max_epochs=3"]), tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resumed from the checkpoint at update 30 (epoch 0)" in proc.stdout
    assert_same_run(tmp_path / "ref", tmp_path / "run")
    assert read_json(tmp_path / "run" / "metrics.json")["n_updates"] == 180

    # A finished run is not trained again, whatever the budget: a larger max_epochs changes
    # nothing (README: "a finished run is not trained again"; resume=0 starts over).
    before = (tmp_path / "run" / "params.npz").stat().st_mtime_ns
    proc = run_cli("lstm_adv.train", merge(short, ["max_epochs=5"]), tmp_path)
    assert proc.returncode == 0 and "already finished" in proc.stdout, proc.stderr[-2000:]
    assert (tmp_path / "run" / "params.npz").stat().st_mtime_ns == before
    assert read_json(tmp_path / "run" / "metrics.json")["n_updates"] == 180


@pytest.mark.slow
def test_mode_jax_trains_checkpoints_and_resumes_from_the_command_line(tmp_path):
    pytest.importorskip("jax", reason="mode=JAX needs jax")
    args = merge(TINY, ["mode=JAX"])
    ref = _saveto(args, tmp_path / "ref")
    proc = run_cli("lstm_adv.train", ref, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_json(tmp_path / "ref" / "config.json")["pytensor"]["mode"] == "JAX"
    metrics = read_json(tmp_path / "ref" / "metrics.json")
    assert metrics["status"] == "ok" and metrics["n_updates"] == 120 and metrics["jax_compile"]["f_train"]
    assert "JAX: " in proc.stdout and "compilations" in proc.stdout

    run = _saveto(args, tmp_path / "run")
    proc = interrupted_run(run, 50, tmp_path)                 # after the checkpoint at update 40
    assert proc.returncode == 130, proc.stderr[-2000:]
    with np.load(tmp_path / "run" / "checkpoint.npz") as f:
        assert '"uidx": 50' in str(f["state_json"])           # written on the signal
    proc = run_cli("lstm_adv.train", run, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resumed from the checkpoint at update 50" in proc.stdout
    assert_same_run(tmp_path / "ref", tmp_path / "run")

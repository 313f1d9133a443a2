"""The training command end to end on data=toy: outputs, learning, resume, locks, bad input."""

import errno
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import HANG_GUARD, TINY, assert_one_line_error, load_npz, merge, read_json, run_cli, write_nan_params
from lstm_adv import train
from lstm_adv.evaluate import attack_summary
from lstm_adv.rundir import RunDir

PARAM_NAMES = ["Wemb", "lstm_W", "lstm_U", "lstm_b", "U", "b"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One uninterrupted tiny run: the reference for resume, reload and refusal tests."""
    root = tmp_path_factory.mktemp("ref")
    args = merge(TINY, ["max_epochs=6", "saveFreq=7", "validFreq=10", "eps=0.5", f"saveto={root / 'run'}"])
    proc = run_cli("lstm_adv.train", args, root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "run", args


@pytest.mark.slow
def test_toy_run_learns_and_writes_its_directory(tmp_path):
    # The README's toy command at the paper's eps=0.5 must learn (from the toy's own vectors).
    proc = run_cli("lstm_adv.train", ["data=toy", "eps=0.5", "progress=0", "mode=C", "attack_eps=0.03,0.3",
                                      "attack_k=5"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = next((tmp_path / "runs").iterdir())
    assert {"config.json", "history.csv", "metrics.json", "params.npz", "checkpoint.npz", "vocab.json",
            "train.log"} <= {p.name for p in run.iterdir()}
    metrics = read_json(run / "metrics.json")
    assert metrics["status"] == "ok"
    assert metrics["test_err"] < 0.1 and metrics["valid_err"] < 0.1  # chance is 0.5
    attacks = metrics["attacks"]
    assert attacks["n"] == 400 and attacks["k"] == 5 and attacks["clean_err"] == metrics["test_err"]
    for name in ("onestep_pred", "iter_sign_pred", "iter_l2_pred", "onestep_true"):
        assert set(attacks[name]) == {"0.03", "0.3"}
        for fig in attacks[name].values():
            assert fig["robust_err"] >= max(fig["adv_err"], attacks["clean_err"])
    # The iterative attack (trained toy model) is at least as strong as the one-step one.
    for s in ("0.03", "0.3"):
        assert attacks["iter_sign_pred"][s]["robust_err"] >= attacks["onestep_pred"][s]["robust_err"]
    assert attacks["onestep_pred"]["0.3"]["robust_err"] > attacks["clean_err"]  # the attack does something
    assert attacks["relative"]["0.3"] == pytest.approx(0.3 / attacks["wemb_median_abs"])
    saved = read_json(run / "config.json")
    assert saved["config"]["data"] == "toy" and saved["pytensor"]["mode"] == "C"
    assert {"pytensor", "numpy"} <= set(saved["versions"])
    assert list(load_npz(run / "params.npz")) == PARAM_NAMES
    header = (run / "history.csv").read_text().splitlines()[0]
    assert header == "update,epoch,train_cost,train_err,valid_err,test_err"
    assert "data toy: train 950, valid 50, test 400" in proc.stdout


@pytest.mark.slow
def test_a_run_shorter_than_validFreq_validates_at_its_end(tmp_path):
    # 950 toy training reviews in batches of 16: 60 updates, and validFreq=1000 never comes. The
    # README lists history.csv among every run's files: the run validates once at its end.
    run = tmp_path / "r"
    proc = run_cli("lstm_adv.train", merge(TINY, ["max_epochs=1", "validFreq=1000", "n_words=20", f"saveto={run}"]),
                   tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = (run / "history.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("60,0,"), rows
    assert read_json(run / "metrics.json")["best_update"] == 60
    assert "update 60 epoch 0: cost " in proc.stdout
    # The log names the model's vocabulary, not only the dictionary's size.
    assert "words, the model's n_words=20 (the rest are UNK: " in proc.stdout


@pytest.mark.slow
def test_the_end_of_run_validation_is_not_kept_by_a_resumed_run(tmp_path, monkeypatch, capsys):
    """validFreq=1000 never comes, so a run validates once after its last update. Stopped there or
    in the final evaluation after it, then rerun with a larger max_epochs (a budget key), the run
    is the longer uninterrupted one bit for bit: its history.csv holds that run's end-of-run row,
    not the first part's too, and from the resume on history.csv is the checkpoint's."""
    import lstm_adv.evaluate as evaluate

    monkeypatch.chdir(tmp_path)
    args = merge(TINY, ["validFreq=1000"])   # 60 updates an epoch
    main = train.cli_entry(train.main)
    assert main(merge(args, ["max_epochs=2", "saveto=ref"])) == 0
    run = tmp_path / "run"

    # SIGINT during the end-of-run validation stops the run (it was taken and dropped, exit 0).
    real_validate = train.validate
    monkeypatch.setattr(train, "validate", lambda *a: os.kill(os.getpid(), signal.SIGINT) or real_validate(*a))
    assert main(merge(args, ["max_epochs=1", "saveto=run"])) == 130
    assert not (run / "history.csv").exists()
    monkeypatch.setattr(train, "validate", real_validate)

    # Rerun: SIGTERM in the final evaluation, once the end-of-run row (update 60) is in history.csv.
    real_final, real_pred = train._final_evaluation, evaluate.pred_error
    final = []
    monkeypatch.setattr(train, "_final_evaluation", lambda *a: final.append(1) or real_final(*a))
    monkeypatch.setattr(evaluate, "pred_error", lambda *a: (os.kill(os.getpid(), signal.SIGTERM) if final and (
        run / "history.csv").exists() else None) or real_pred(*a))
    assert main(merge(args, ["max_epochs=1", "saveto=run"])) == 143
    rows = (run / "history.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("60,0,"), rows
    monkeypatch.setattr(train, "_final_evaluation", real_final)
    monkeypatch.setattr(evaluate, "pred_error", real_pred)

    # Resumed under max_epochs=2 and stopped at update 90: no row yet, as in the checkpoint.
    monkeypatch.setenv("LSTM_ADV_FAULT", "int@update=90")
    assert main(merge(args, ["max_epochs=2", "saveto=run"])) == 130
    assert not (run / "history.csv").exists()
    monkeypatch.delenv("LSTM_ADV_FAULT")
    assert main(merge(args, ["max_epochs=2", "saveto=run"])) == 0
    assert "resumed from the checkpoint at update 90 (epoch 1)" in capsys.readouterr().out
    a, b = load_npz(tmp_path / "ref" / "params.npz"), load_npz(run / "params.npz")
    for k in PARAM_NAMES:
        assert np.array_equal(a[k], b[k]), k
    ref_rows = (tmp_path / "ref" / "history.csv").read_text().splitlines()
    assert len(ref_rows) == 2 and ref_rows[1].startswith("120,1,")
    assert (run / "history.csv").read_text().splitlines() == ref_rows
    ma, mb = read_json(tmp_path / "ref" / "metrics.json"), read_json(run / "metrics.json")
    keys = ("status", "train_err", "valid_err", "test_err", "best_update", "n_updates")
    assert [ma[k] for k in keys] == [mb[k] for k in keys]


# Each fault strikes at a chosen point (lstm_adv.common.faults), never after a sleep: the toy run
# cannot end first on a fast machine. saveFreq=7: checkpoints at updates 7, 14, 21, ...
KILLS = {
    "kill@update=25": (-signal.SIGKILL, "running", 21),      # SIGKILL mid-run: no handler runs
    "kill@checkpoint=2": (-signal.SIGKILL, "running", 7),    # between the temporary file and its rename
    "int@update=25": (130, "interrupted", 25),               # SIGINT: the loop checkpoints where it is
    "term@update=30": (143, "interrupted", 30),              # SIGTERM (a cluster's pre-emption)
}


@pytest.mark.slow
@pytest.mark.parametrize("fault", list(KILLS))
def test_kill_and_resume_is_bit_exact(finished_run, tmp_path, fault):
    ref_dir, ref_args = finished_run
    code, status, resume_at = KILLS[fault]
    run = tmp_path / "run"
    args = [a for a in ref_args if not a.startswith("saveto=")] + [f"saveto={run}"]
    killed = run_cli("lstm_adv.train", args, tmp_path, env={"LSTM_ADV_FAULT": fault})
    assert killed.returncode == code, killed.stderr[-3000:]
    assert read_json(run / "metrics.json")["status"] == status
    assert (run / ".checkpoint.next.npz").exists() == (fault == "kill@checkpoint=2")
    if code > 0:
        assert f"interrupted by signal {code - 128} at update {resume_at}: checkpoint written" in killed.stdout

    proc = run_cli("lstm_adv.train", args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resumed from the checkpoint at update {resume_at} " in proc.stdout
    assert not (run / ".checkpoint.next.npz").exists()
    a, b = load_npz(ref_dir / "params.npz"), load_npz(run / "params.npz")
    for k in PARAM_NAMES:
        assert np.array_equal(a[k], b[k]), k
    assert (ref_dir / "history.csv").read_text() == (run / "history.csv").read_text()
    ma, mb = read_json(ref_dir / "metrics.json"), read_json(run / "metrics.json")
    assert [ma[k] for k in ("train_err", "valid_err", "test_err", "best_update", "n_updates")] == \
           [mb[k] for k in ("train_err", "valid_err", "test_err", "best_update", "n_updates")]


def test_a_malformed_fault_hook_is_refused_before_anything_is_written(tmp_path):
    proc = run_cli("lstm_adv.train", merge(TINY, ["saveto=run"]), tmp_path, env={"LSTM_ADV_FAULT": "kill@epoch=3"})
    assert_one_line_error(proc, "LSTM_ADV_FAULT='kill@epoch=3': expected ACTION@POINT=N")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_finished_run_is_not_trained_again(finished_run):
    run, args = finished_run
    before = (run / "params.npz").stat().st_mtime_ns
    proc = run_cli("lstm_adv.train", args, run.parent)
    assert proc.returncode == 0 and "already finished" in proc.stdout
    assert (run / "params.npz").stat().st_mtime_ns == before


@pytest.mark.slow
def test_second_process_on_a_run_directory_is_refused(finished_run, tmp_path):
    run, args = finished_run
    held = RunDir(run)
    held.lock()
    try:
        assert_one_line_error(run_cli("lstm_adv.train", args, tmp_path), "is in use by pid")
    finally:
        held.unlock()


@pytest.mark.slow
def test_resuming_with_another_configuration_is_refused(finished_run, tmp_path):
    run, args = finished_run
    proc = run_cli("lstm_adv.train", merge(args, ["hdim=6"]), tmp_path)
    assert_one_line_error(proc, "holds a run with hdim=8, not 6")


@pytest.mark.slow
def test_another_backend_is_the_same_run(finished_run, tmp_path):
    # mode is not part of a run's identity (lstm_adv.config.IDENTITY_KEYS): the finished run is found.
    run, args = finished_run
    proc = run_cli("lstm_adv.train", merge(args, ["mode=FAST_COMPILE"]), tmp_path)
    assert proc.returncode == 0 and "already finished (status ok)" in proc.stdout, proc.stderr[-2000:]


@pytest.mark.slow
def test_reload_model_that_does_not_fit_says_which_parameter(finished_run, tmp_path):
    run, _ = finished_run
    proc = run_cli("lstm_adv.train", merge(TINY, ["hdim=6", f"reload_model={run}", f"saveto={tmp_path / 'r'}"]), tmp_path)
    assert_one_line_error(proc, "params.npz: parameter lstm_W has shape (8, 32)", "needs (8, 24)")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    proc = run_cli("lstm_adv.train", TINY + [f"reload_model={bad}", f"saveto={tmp_path / 'r2'}"], tmp_path)
    assert_one_line_error(proc, "is not a readable parameter .npz")


@pytest.mark.slow
def test_truncated_checkpoint_falls_back_to_the_previous_one(finished_run, tmp_path):
    ref, args = finished_run
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "checkpoint.npz", "checkpoint.prev.npz"):
        shutil.copy(ref / name, run / name)
    data = (run / "checkpoint.npz").read_bytes()
    (run / "checkpoint.npz").write_bytes(data[: len(data) // 2])
    args = [a for a in args if not a.startswith("saveto=")] + [f"saveto={run}"]
    proc = run_cli("lstm_adv.train", args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "checkpoint.npz is unreadable" in proc.stdout and "resumed from the checkpoint" in proc.stdout
    # Both unreadable: refuse, delete nothing.
    run2 = tmp_path / "run2"
    run2.mkdir()
    shutil.copy(ref / "config.json", run2 / "config.json")
    for name in ("checkpoint.npz", "checkpoint.prev.npz"):
        (run2 / name).write_bytes(data[:100])
    before = sorted(p.name for p in run2.iterdir())
    proc = run_cli("lstm_adv.train", [a for a in args if not a.startswith("saveto=")] + [f"saveto={run2}"], tmp_path)
    assert_one_line_error(proc, "every checkpoint", "resume=0")
    assert (run2 / "checkpoint.npz").read_bytes() == data[:100]
    # Refused at start-up, before compiling: the run folder as it was (no train.log, no .lock).
    assert sorted(p.name for p in run2.iterdir()) == before


@pytest.mark.slow
def test_nan_cost_stops_with_status_nan(tmp_path):
    nan = write_nan_params(tmp_path / "nan.npz", TINY)
    args = merge(TINY, ["saveFreq=1", f"reload_model={nan}", f"saveto={tmp_path / 'run'}"])
    proc = run_cli("lstm_adv.train", args, tmp_path)
    assert proc.returncode == train.EXIT_NAN, proc.stderr[-2000:]
    metrics = read_json(tmp_path / "run" / "metrics.json")
    assert metrics["status"] == "nan" and metrics["test_err"] is None
    assert "bad cost nan at update 1" in proc.stdout
    assert not (tmp_path / "run" / "checkpoint.npz").exists()   # nothing saved after the blow-up
    assert not (tmp_path / "run" / "params.npz").exists()


def test_full_disk_during_a_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch, capsys):
    import lstm_adv.rundir.files as rundir   # RunDir's writers

    real = rundir.atomic_savez
    calls = []

    def flaky(path, arrays):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, arrays)

    monkeypatch.setattr(rundir, "atomic_savez", flaky)
    monkeypatch.chdir(tmp_path)
    status = train.cli_entry(train.main)(merge(TINY, ["saveFreq=5", "saveto=run"]))
    assert status == 2
    assert "disk full" in capsys.readouterr().err
    assert not list((tmp_path / "run").glob(".*.tmp"))
    with np.load(tmp_path / "run" / "checkpoint.npz") as f:
        state = str(f["state_json"])
    assert '"uidx": 10' in state  # saves at 5 and 10 succeeded, 15 hit the full disk


def test_signals_outside_the_loop_and_disk_full_at_the_first_write(tmp_path, monkeypatch, capsys):
    """SIGTERM during the final evaluation, SIGINT during start-up, a full disk at the first
    config.json write: one line, 143/130/2, metrics.json never left at running; the same
    command then completes the run (and removes a killed save's temporary files)."""
    import lstm_adv.evaluate as evaluate
    import lstm_adv.rundir.files as rundir   # RunDir's writers

    monkeypatch.chdir(tmp_path)
    args = merge(TINY, ["max_epochs=1", "saveto=run"])
    main = train.cli_entry(train.main)

    # SIGINT while loading the data: nothing trained, one line, 130.
    real_load = train.load_dataset
    monkeypatch.setattr(train, "load_dataset", lambda cfg: os.kill(os.getpid(), signal.SIGINT) or real_load(cfg))
    assert main(args) == 130
    assert "interrupted by signal 2 during start-up" in capsys.readouterr().err
    monkeypatch.setattr(train, "load_dataset", real_load)

    # A full disk at the first config.json write.
    real_json = rundir.atomic_write_json

    def full(path, obj):
        if str(path).endswith("config.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_json(path, obj)

    monkeypatch.setattr(rundir, "atomic_write_json", full)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "error: disk full" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "config.json").exists() and not (tmp_path / "run" / "metrics.json").exists()
    monkeypatch.setattr(rundir, "atomic_write_json", real_json)

    # SIGTERM during the final evaluation.
    real_final, real_pred = train._final_evaluation, evaluate.pred_error
    final = []
    monkeypatch.setattr(train, "_final_evaluation", lambda *a: final.append(1) or real_final(*a))
    monkeypatch.setattr(evaluate, "pred_error",
                        lambda *a: (os.kill(os.getpid(), signal.SIGTERM) if final else None) or real_pred(*a))
    assert main(args) == 143
    out = capsys.readouterr().out
    assert "interrupted by signal 15 during the final evaluation" in out
    assert read_json(tmp_path / "run" / "metrics.json")["status"] == "interrupted"
    monkeypatch.setattr(train, "_final_evaluation", real_final)
    monkeypatch.setattr(evaluate, "pred_error", real_pred)

    stale = [tmp_path / "run" / ".params.npz.x1y2.tmp", tmp_path / "run" / ".checkpoint.next.npz"]
    for p in stale:
        p.write_bytes(b"half a save")
    assert main(args) == 0
    assert "resumed from the checkpoint" in capsys.readouterr().out
    assert read_json(tmp_path / "run" / "metrics.json")["status"] == "ok"
    assert not any(p.exists() for p in stale)


@pytest.mark.skipif(__import__("platform").machine().lower() not in ("x86_64", "amd64"), reason="FTZ/DAZ: x86-64")
def test_flush_denormals_zeroes_subnormals_on_the_calling_thread():
    code = ("import numpy as np\nfrom lstm_adv.core.backend import flush_denormals\n"
            "a = np.array([1e-39], dtype=np.float32)\n"
            "print(float((a * np.float32(1))[0]), flush_denormals(), float((a * np.float32(1))[0]))")
    # A fresh process: the setting would otherwise stay with this test worker.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_GUARD)
    before, ok, after = out.stdout.split()
    assert float(before) > 0 and ok == "True" and float(after) == 0.0, out.stderr


@pytest.mark.slow
def test_denormals_flush_and_keep_train_the_same_parameters_at_large_eps(tmp_path):
    """The README's claim for denormals=flush: at eps=15 (saturated gates) the parameters match IEEE's bit for bit."""
    params = {}
    for mode in ("flush", "keep"):
        r = run_cli("lstm_adv.train", merge(TINY, ["eps=15", "max_epochs=1", f"denormals={mode}",
                                                  f"saveto={tmp_path / mode}"]), tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
        params[mode] = load_npz(tmp_path / mode / "params.npz")
    for k in params["keep"]:
        np.testing.assert_array_equal(params["flush"][k], params["keep"][k], err_msg=k)


def test_done_line_keeps_radius_multiplier_and_error_apart():
    a = {"n": 100, "relative": {"0.001": 0.0104, "0.5": 5.19, "0.1": 0.0},
         "iter_sign_pred": {"0.001": {"robust_err": 0.48}, "0.5": {"robust_err": 0.7}, "0.1": {"robust_err": 0.5}}}
    assert attack_summary(a) == ("robust error under iter_sign_pred on 100 test reviews: "
                                 "radius 0.001 (0.01x median |Wemb|): err 0.480; "
                                 "radius 0.5 (5.2x median |Wemb|): err 0.700; radius 0.1: err 0.500")
    a.update(strength_units="x emb_median_abs", emb_median_abs=0.0123)
    assert attack_summary(a).startswith("robust error under iter_sign_pred on 100 test reviews, radius in multiples "
                                        "of the median |e| (0.0123): radius 0.001x: err 0.480; radius 0.5x: ")

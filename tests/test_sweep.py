"""The sweeps (lstm_adv.sweep, lstm_adv.sweeps) and experiments/table1.sh, end to end on data=toy.

The training runs here compile PyTensor graphs: about 10 s (clean) and 20 s (adversarial) each
with a warm compile cache, minutes with a cold one. The launcher keeps its caches in
``$LSTM_ADV_COMPILEDIR`` (default ``~/.cache/lstm_adv/pytensor``); the tests point it at one
temporary folder per test session (`env`), so they write nothing outside their temporary
folders, and only the first sweep of a session pays for compiling.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import HANG_GUARD, merge, wait_for_file, write_nan_params
from lstm_adv.sweeps import commands as commands_file, launcher, plan, random_search, slurm

REPO = Path(__file__).resolve().parents[1]
TINY = ["data=toy", "max_epochs=1", "validFreq=20", "saveFreq=20", "hdim=8", "wdim=8", "attack_eps=",
        "progress=0"]


_COMPILEDIR = []


@pytest.fixture(scope="session", autouse=True)
def _session_compiledir(tmp_path_factory):
    """The launcher's compile caches for this session: in a temporary folder, never ~/.cache."""
    _COMPILEDIR.append(tmp_path_factory.mktemp("compiledir"))
    yield
    _COMPILEDIR.clear()


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    if _COMPILEDIR:
        e["LSTM_ADV_COMPILEDIR"] = str(_COMPILEDIR[-1])
    return e


def sweep_cli(*args, cwd, timeout=HANG_GUARD):
    return subprocess.run([sys.executable, "-m", "lstm_adv.sweep", *map(str, args)], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=timeout)


def train_line(*keys):
    return commands_file.command_line(merge(keys))


def status(run_dir):
    return json.loads((Path(run_dir) / "metrics.json").read_text())["status"]


def mtime(run_dir):
    return (Path(run_dir) / "metrics.json").stat().st_mtime_ns


def attempts(run_dir):
    return (Path(run_dir) / "stdout.log").read_text().count("=== attempt ")


# --------------------------------------------------------------------------- fast: no training
def test_plan_table1_grid_and_pass_through(tmp_path):
    r = sweep_cli("plan", "table1", "seeds=3", "max_epochs=5", "attack_eps=0.01,0.5", "attack_size=100",
                  cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    path = tmp_path / r.stdout.strip()
    assert path == tmp_path / "runs" / "table1-max_epochs=5,attack_eps=0.01,0.5,attack_size=100" / "commands.txt"
    commands = commands_file.read_commands(path)
    assert len(commands) == 12 * 3
    assert sorted({c.cfg.eps for c in commands}) == list(plan.TABLE1_EPS)
    assert {c.cfg.seed for c in commands} == {1, 2, 3}
    assert {c.cfg.alpha for c in commands} == {0.5}
    for c in commands:   # pass-through keys (robustness attack included) reach every run
        assert (c.cfg.max_epochs, c.cfg.attack_strengths, c.cfg.attack_size) == (5, (0.01, 0.5), 100)
        assert (c.cfg.preset, c.cfg.wemb_init, c.cfg.wdim) == ("authors", "word2vec", 300)   # the default setting
        assert tmp_path / c.run_dir == path.parent / f"eps={c.cfg.eps}" / f"seed={c.cfg.seed}"
    assert len({c.run_dir for c in commands}) == len(commands)
    # the tutorial-init table: the preset and its epoch cap turned off from the command line
    r = sweep_cli("plan", "table1", "seeds=1", "preset=", "max_epochs=100", "sweep_dir=tut", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert {(c.cfg.wemb_init, c.cfg.wdim, c.cfg.max_epochs) for c in commands_file.read_commands(tmp_path / r.stdout.strip())} \
        == {("random", 128, 100)}
    # keys the grid sets are refused
    for bad in ("eps=0.5", "seed=3", "saveto=x"):
        r = sweep_cli("plan", "table1", bad, cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "table1 grid" in r.stderr


def test_plan_names_the_keys_it_adds_on_its_first_line(tmp_path):
    r = sweep_cli("plan", "table1", "seeds=1", "data=toy", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith("table1: 12 runs on data=toy, each with preset=authors (wemb_init=word2vec wdim=300 ")
    assert first.endswith(" max_epochs=150 (set by the plan; give another value to replace it, e.g. preset=)")
    assert {c.cfg.wdim for c in commands_file.read_commands(tmp_path / r.stdout.strip())} == {300}
    r = sweep_cli("plan", "table1", "seeds=1", "data=toy", "preset=", "max_epochs=3", cwd=tmp_path)
    assert r.stderr.splitlines()[0] == "table1: 12 runs on data=toy, with no keys added by the plan"
    r = sweep_cli("plan", "table1", "seeds=1", "data=toy", "max_epochs=3", cwd=tmp_path)
    assert "each with preset=authors (" in r.stderr and "max_epochs=150" not in r.stderr


def test_sweep_folder_names_a_corpus_file_by_its_name(tmp_path):
    corpus = tmp_path / "data" / "my.csv"
    corpus.parent.mkdir()
    corpus.write_text("text,label\na good film,pos\na bad film,neg\n")
    r = sweep_cli("plan", "table1", "seeds=1", f"data={corpus}", "preset=", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    path = tmp_path / r.stdout.strip()
    assert path == tmp_path / "runs" / "table1-data=my.csv,preset=" / "commands.txt"
    assert {c.cfg.data for c in commands_file.read_commands(path)} == {str(corpus)}   # the whole path runs


def test_plan_random_pairs_share_the_draw(tmp_path):
    r = sweep_cli("plan", "random", "draws=4", "search_seed=7", "data=toy", "optimizer=adadelta", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    commands = commands_file.read_commands(tmp_path / r.stdout.strip())
    assert len(commands) == 8
    for adv, plain in zip(commands[::2], commands[1::2]):
        assert adv.run_dir.name == "adv" and plain.run_dir.name == "plain"
        assert adv.cfg.adversarial and adv.cfg.eps > 0 and not plain.cfg.adversarial and plain.cfg.eps == 0
        a, p = adv.cfg.to_dict(), plain.cfg.to_dict()
        assert {k for k in a if a[k] != p[k]} == {"eps", "saveto"}
        assert adv.cfg.optimizer == "adadelta" and adv.cfg.data == "toy"   # pass-through fixes a key
    assert len({c.cfg.seed for c in commands}) == 4
    # draws are reproducible and do not depend on how many are drawn
    assert random_search.draw_config(7, 2) == random_search.draw_config(7, 2) != random_search.draw_config(8, 2)
    r2 = sweep_cli("plan", "random", "draws=2", "search_seed=7", "data=toy", "optimizer=adadelta",
                   "sweep_dir=other", cwd=tmp_path)
    assert [c.keys[:-1] for c in commands_file.read_commands(tmp_path / r2.stdout.strip())] == \
        [c.keys[:-1] for c in commands[:4]]


def test_typo_refuses_the_whole_sweep(tmp_path):
    r = sweep_cli("plan", "table1", "hdimm=8", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr == "error: unknown key 'hdimm'; did you mean hdim?\n"
    assert not (tmp_path / "runs").exists()

    cmds = tmp_path / "commands.txt"
    good = train_line(*TINY, "saveto=r/a")
    for bad, words in [(train_line(*TINY, "hdimm=8", "saveto=r/b"), ("line 3", "hdimm", "did you mean hdim")),
                       (train_line(*TINY, "eps=-1", "saveto=r/b"), ("line 3", "eps=-1")),
                       (train_line(*TINY, "saveto=r/a"), ("line 3", "run directory", "line 1")),
                       ("echo hello", ("line 3", "not a"))]:
        cmds.write_text(f"{good}\n# a comment\n{bad}\n")
        for sub in ("run", "slurm"):
            r = sweep_cli(sub, cmds, "jobs=2" if sub == "run" else "max_parallel=2", cwd=tmp_path)
            assert r.returncode == 2, (sub, bad, r.stdout, r.stderr)
            assert r.stderr.count("\n") == 1 and all(w in r.stderr for w in words), r.stderr
            assert r.stdout == ""
        assert not (tmp_path / "r").exists()   # nothing started
    # The console script's form is a command too, and the two forms mix.
    cmds.write_text(f"{good}\nlstm-adv-train {' '.join(TINY)} saveto=r/c\n")
    parsed = commands_file.read_commands(cmds)
    assert [c.keys[-1] for c in parsed] == ["saveto=r/a", "saveto=r/c"] and parsed[1].cfg.hdim == 8
    r = sweep_cli("run", tmp_path / "missing.txt", cwd=tmp_path)
    assert r.returncode == 2 and "cannot read" in r.stderr
    r = sweep_cli("run", cmds, "max_epochs=3", cwd=tmp_path)
    assert r.returncode == 2 and "unknown option 'max_epochs'" in r.stderr


def test_retry_policy():
    assert launcher.classify(0, None) == "ok"
    assert launcher.classify(3, None) == "nan"        # a finished failure: never retried
    assert launcher.classify(2, None) == "error"      # bad input: never retried
    assert launcher.classify(1, None) == "retry"      # a crash
    assert launcher.classify(-9, None) == "retry"     # killed (OOM killer, SIGKILL)
    assert launcher.classify(143, None) == "retry"    # terminated by someone else: resume
    assert launcher.classify(143, signal.SIGTERM) == "interrupted"   # we are stopping


def test_compile_env_replaces_cache_flags(tmp_path):
    e = launcher.compile_env(tmp_path / "slot-1", {"PYTENSOR_FLAGS": "floatX=float32,compiledir=/x,base_compiledir=/y"})
    assert e["PYTENSOR_FLAGS"] == f"floatX=float32,base_compiledir={tmp_path / 'slot-1'}"
    assert e["NUMBA_CACHE_DIR"] == str(tmp_path / "slot-1" / "numba")


def test_slot_pool_locks_and_seeds_slots(tmp_path):
    a = launcher.SlotPool(tmp_path, 2)
    assert [s.name for s in a.free] == ["slot-0", "slot-1"]
    (a.free[0] / "compiledir_x").mkdir(parents=True)
    (a.free[0] / "compiledir_x" / "mod.so").write_text("compiled")
    b = launcher.SlotPool(tmp_path, 2)   # another sweep on this host: other slots, seeded from a warm one
    assert [s.name for s in b.free] == ["slot-2", "slot-3"]
    assert not (b.free[0] / "compiledir_x").exists()   # slot-0 is not ours to read: b had none warm
    a.release()
    (b.free[0] / "compiledir_y").mkdir(parents=True)
    c = launcher.SlotPool(tmp_path, 3)
    assert [s.name for s in c.free] == ["slot-0", "slot-1", "slot-4"]
    assert (c.free[2] / "compiledir_x" / "mod.so").read_text() == "compiled"
    b.release()
    c.release()


def test_slurm_script_one_command_per_task(tmp_path, monkeypatch):
    """Render the array script, then run it as Slurm would, for every task id, with a stub python."""
    monkeypatch.chdir(tmp_path)
    lines = [train_line(*TINY, f"seed={i}", f"saveto=runs/s/{i}") for i in range(5)]
    cmds = tmp_path / "commands.txt"
    cmds.write_text("# planned by hand\n" + "\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n")
    r = sweep_cli("slurm", cmds, "max_parallel=3", "time=1:00:00", "partition=gpu", "out=job.sh", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "job.sh").read_text()
    assert "#SBATCH --array=0-4%3\n" in text and "#SBATCH --time=1:00:00\n" in text
    assert "#SBATCH --partition=gpu\n" in text and os.access(tmp_path / "job.sh", os.X_OK)

    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "python").write_text('#!/bin/bash\necho "$PYTENSOR_FLAGS|$*" >> "$STUB_LOG"\n')
    (stub / "python").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(stub / "python"))
    script = tmp_path / "stub.sh"
    sweep_commands = commands_file.read_commands(cmds)
    script.write_text(slurm.render_slurm(cmds, sweep_commands, 3, compiledir=tmp_path / "cache"))
    log = tmp_path / "stub.log"
    for task in range(5):
        r = subprocess.run(["bash", str(script)], env={**os.environ, "SLURM_ARRAY_TASK_ID": str(task),
                                                          "STUB_LOG": str(log)}, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    calls = log.read_text().splitlines()
    assert [c.split("|")[1] for c in calls] == [ln.split(" ", 1)[1] for ln in lines]
    assert all(c.split("|")[0].startswith(f"base_compiledir={tmp_path / 'cache'}/") for c in calls)
    r = subprocess.run(["bash", str(script)], env={**os.environ, "SLURM_ARRAY_TASK_ID": "5", "STUB_LOG": str(log)},
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no command for array task 5" in r.stderr


def test_random_search_summary(tmp_path):
    def run(draw, kind, valid, test, status="ok", eps=0.3):
        d = tmp_path / f"draw={draw:03d}" / kind
        d.mkdir(parents=True)
        adv = kind == "adv"
        cfg = {"hdim": 64, "wdim": 32, "optimizer": "adadelta", "lrate": 0.1, "alpha": 0.4,
               "eps": eps if adv else 0.0, "seed": draw}
        (d / "config.json").write_text(json.dumps({"config": cfg, "adversarial": adv}))
        (d / "metrics.json").write_text(json.dumps({"status": status, "valid_err": valid, "test_err": test,
                                                    "attack": {"0.1": test + 0.1} if test else {}}))

    run(0, "adv", 0.20, 0.25)
    run(0, "plain", 0.18, 0.22)
    run(1, "adv", 0.10, 0.30)      # best adversarial on validation (not on test)
    run(1, "plain", 0.15, 0.21)    # best plain
    run(2, "adv", None, None, status="nan")
    run(2, "plain", 0.16, 0.20)
    r = sweep_cli("summary", tmp_path, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "summary.md").read_text()
    assert text == r.stdout
    rows = {ln.split("|")[1].strip(): ln for ln in text.splitlines() if ln.startswith("| adversarial")
            or ln.startswith("| plain")}
    assert "draw=001" in rows["adversarial"] and "0.1000" in rows["adversarial"] and "0.3000" in rows["adversarial"]
    assert "2 of 3" in rows["adversarial"] and "eps=0.3" in rows["adversarial"] and "lrate" not in rows["adversarial"]
    assert "draw=001" in rows["plain"] and "0.2100" in rows["plain"] and "eps=" not in rows["plain"]
    assert "2 draws with both runs ok" in text and "test error 0.3000 vs 0.2100 (+0.0900)" in text
    assert "draw=002/adv (nan)" in text


# --------------------------------------------------------------------------- end to end (trains)
@pytest.mark.slow
def test_table1_end_to_end_with_a_nan_run(tmp_path):
    """plan -> run (jobs=2) -> table; a NaN run is reported, not retried, and failed in the table;
    then experiments/table1.sh over the same folder skips every finished run and writes the table."""
    root = tmp_path / "table1"
    r = sweep_cli("plan", "table1", "seeds=1", "eps_grid=0,0.5", f"sweep_dir={root}", *TINY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    nan_dir = root / "eps=0.1" / "seed=1"
    cmds = root / "with-nan.txt"   # the planned grid plus a run that ends in NaN
    nan = write_nan_params(tmp_path / "nan.npz", ["alpha=0.5", "eps=0.1", "seed=1", *TINY])  # NaN at update 1
    cmds.write_text(Path(r.stdout.strip()).read_text()
                    + train_line("alpha=0.5", "eps=0.1", "seed=1", *TINY, f"reload_model={nan}", f"saveto={nan_dir}")
                    + "\n")

    t0 = time.time()
    r = sweep_cli("run", cmds, "jobs=2", "retries=2", cwd=tmp_path)
    print(r.stdout, r.stderr, f"{time.time() - t0:.0f}s")
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout
    assert (f"3 runs under {root}: 0 already finished, 0 failed (nan earlier, or bad input), 3 to run, "
            "2 at a time") in out
    # Runs share two slots, so they may finish in any order: the order is not asserted.
    assert re.search(r"\[[123]/3\] ok     eps=0\.0/seed=1 \(", out), out
    assert re.search(r"\[[123]/3\] ok     eps=0\.5/seed=1 \(", out), out
    assert "[3/3]" in out and "ETA" in out and "elapsed" in out
    assert "summary: 2 of 3 runs ok, 1 failed" in out
    assert f"nan         {nan_dir}: exit 3 (NaN cost): bad cost nan at update" in out
    assert "retrying" not in out
    ok_dirs = [root / "eps=0.0" / "seed=1", root / "eps=0.5" / "seed=1"]
    assert [status(d) for d in ok_dirs] == ["ok", "ok"] and status(nan_dir) == "nan"
    assert attempts(nan_dir) == 1
    for d in ok_dirs + [nan_dir]:   # per-run logs of the process's output
        assert "run directory:" in (d / "stdout.log").read_text()
        assert (d / "stderr.log").exists()
    mtimes = [mtime(d) for d in ok_dirs + [nan_dir]]

    # The script: plans the same grid (same folder), skips everything, publishes the finished runs'
    # small files (not the NaN run), writes the tables.
    results = tmp_path / "results"
    script = ["bash", str(REPO / "experiments" / "table1.sh"), "eps_grid=0,0.5", f"sweep_dir={root}", *TINY]
    script_env = {**env(), "SEEDS": "1", "JOBS": "2", "PYTHON": sys.executable, "RESULTS_DIR": str(results)}
    r = subprocess.run(script, cwd=tmp_path, env=script_env, capture_output=True, text=True, timeout=HANG_GUARD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"2 runs under {root}: 2 already finished, 0 failed (nan earlier, or bad input), 0 to run" in r.stdout
    assert [mtime(d) for d in ok_dirs + [nan_dir]] == mtimes   # nothing retrained
    published = results / "table1"
    assert sorted(p.relative_to(published).as_posix() for p in published.rglob("*.json")) == [
        "eps=0.0/seed=1/config.json", "eps=0.0/seed=1/metrics.json",
        "eps=0.5/seed=1/config.json", "eps=0.5/seed=1/metrics.json"]
    assert (published / "eps=0.5" / "seed=1" / "history.csv").exists()
    assert str(tmp_path) not in (published / "eps=0.5" / "seed=1" / "config.json").read_text()
    assert "(n=1)" in (published / "table1.md").read_text()

    table = (root / "table1.md").read_text()
    assert (root / "table1.csv").exists() and (root / "table1.png").exists()
    # The toy sweep's figures and long-format table, written by the same command.
    for name in ("table1.png", "learning_curves.png"):
        assert (root / name).read_bytes()[:4] == b"\x89PNG" and (root / name).stat().st_size > 5000, name
    runs_csv = (root / "runs.csv").read_text().splitlines()
    assert len(runs_csv) > 2 and "eps" in runs_csv[0] and "seed" in runs_csv[0]
    header, _, dev = table.splitlines()[4:7]
    cols = [c.strip() for c in header.split("|")[1:-1]]
    cells = dict(zip(cols, [c.strip() for c in dev.split("|")[1:-1]]))
    assert cells["0.1"].startswith("1 nan")
    assert "(n=1)" in cells["0.0"] and "(n=1)" in cells["0.5"]
    assert "| 0.1 | 0 | 1 | 1 nan |" in table

    # The launcher itself, again: the NaN run is reported as failed earlier, not started.
    r = sweep_cli("run", cmds, "jobs=2", cwd=tmp_path)
    assert r.returncode == 1 and "2 already finished, 1 failed (nan earlier, or bad input), 0 to run" in r.stdout
    assert attempts(nan_dir) == 1 and [mtime(d) for d in ok_dirs + [nan_dir]] == mtimes

    # The same folders planned with another setting: refused per run, as train would, never skipped.
    other = tmp_path / "hdim16.txt"
    other.write_text(cmds.read_text().replace(" hdim=8 ", " hdim=16 "))
    r = sweep_cli("run", other, "jobs=2", cwd=tmp_path)
    assert r.returncode == 1 and "0 already finished, 3 failed (nan earlier, or bad input), 0 to run" in r.stdout
    assert r.stdout.count("holds a run with hdim=8, not 16") == 3
    assert [mtime(d) for d in ok_dirs + [nan_dir]] == mtimes

    # On a machine without a run's directory, its published copy is not run again (the other one,
    # finished here, is published again).
    shutil.rmtree(ok_dirs[0])
    r = subprocess.run(script, cwd=tmp_path, env=script_env, capture_output=True, text=True, timeout=HANG_GUARD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 run(s) already published" in r.stdout and "2 already finished" in r.stdout
    assert not ok_dirs[0].exists()


def _repo_copy(tmp_path, *names):
    """A copy of experiments/NAMES under tmp_path/repo: the scripts cd to its root, so a regression
    writes into the copy, never into this checkout."""
    copy = tmp_path / "repo"
    (copy / "experiments").mkdir(parents=True)
    for name in names:
        shutil.copy(REPO / "experiments" / name, copy / "experiments" / name)
    return copy


@pytest.mark.slow
def test_table1_script_on_a_corpus_file_publishes_nothing_and_prints_the_table_once(tmp_path):
    """table1.sh data=my.csv (relative to the caller): runs, writes the table in runs/table1-data=my.csv,...
    and publishes nothing, as experiments/results/ holds IMDB's tables. The scripts run from a copy,
    so a regression publishes into the copy, never into this checkout."""
    from test_corpus import make_rows, write_csv
    copy = _repo_copy(tmp_path, "table1.sh", "run_and_publish.sh")
    caller = tmp_path / "caller"
    caller.mkdir()
    write_csv(caller / "my.csv", make_rows(n=30, n_test=9))
    keys = [k for k in TINY if not k.startswith("data=")] + ["data=my.csv", "eps_grid=0", "preset=",
                                                             "wemb_init=random"]
    script_env = {**env(), "SEEDS": "1", "JOBS": "1", "PYTHON": sys.executable,
                  "LSTM_ADV_CACHE": str(tmp_path / "cache"), "LSTM_ADV_OFFLINE": "1"}
    script_env.pop("RESULTS_DIR", None)
    r = subprocess.run(["bash", str(copy / "experiments" / "table1.sh"), *keys], cwd=caller, env=script_env,
                       capture_output=True, text=True, timeout=HANG_GUARD)
    assert r.returncode == 0, r.stdout + r.stderr
    [sweep] = (copy / "runs").iterdir()
    assert ",data=my.csv," in sweep.name and (sweep / "table1.md").exists()
    assert json.loads((sweep / "eps=0.0" / "seed=1" / "config.json").read_text())["config"]["data"] == \
        str(caller / "my.csv")
    assert not (copy / "experiments" / "results").exists()
    assert "nothing is published (set RESULTS_DIR to publish)" in r.stderr
    assert r.stdout.count("# Error against eps at alpha = 0.5 on data=my.csv") == 1


def _script_copy(tmp_path, *names):
    """`_repo_copy` and a stub interpreter (PYTHON=) that logs each call's arguments and, for
    `lstm_adv.sweep run`, the commands file it was given: the scripts' shell logic runs, no training does."""
    copy = _repo_copy(tmp_path, *names)
    log = tmp_path / "python.log"
    stub = tmp_path / "python"
    stub.write_text(f'#!/usr/bin/env bash\necho "$*" >> {log}\n'
                    f'if [ "$3" = run ]; then cat "$4" >> {log}; fi\n')
    stub.chmod(0o755)
    script_env = {**env(), "PYTHON": str(stub), "JOBS": "1"}
    script_env.pop("RESULTS_DIR", None)
    return copy, log, script_env


def test_run_and_publish_reads_commands_from_stdin_and_hands_the_launcher_its_results_folder(tmp_path):
    """The commands come on standard input and are kept whole in RUNS_DIR/commands.txt; the launcher
    gets publish=, which skips the runs published complete (`test_launcher_skips_runs_published_complete`)."""
    copy, log, script_env = _script_copy(tmp_path, "run_and_publish.sh")
    lines = "".join(f"python -m lstm_adv.train eps=0 seed=1 saveto=runs/demo/{n}\n" for n in "ab")
    r = subprocess.run(["bash", str(copy / "experiments" / "run_and_publish.sh"), "-", "runs/demo", "demo", "eps"],
                       input=lines, env=script_env, capture_output=True, text=True, timeout=HANG_GUARD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (copy / "runs" / "demo" / "commands.txt").read_text() == lines
    assert not list((copy / "runs" / "demo").glob("commands.txt.*"))
    assert log.read_text() == (f"-m lstm_adv.sweep run runs/demo/commands.txt jobs=1 publish=experiments/results/demo\n"
                               f"{lines}-m lstm_adv.results experiments/results/demo by=eps\n")


def test_launcher_skips_runs_published_complete(tmp_path):
    """A run whose published copy ended ok is not run again on a machine without its folder, unless
    its command asks a word attack the copy lacks (or has with another sample): then it is run
    (attacked where its folder is, trained again where it is gone), so a study published with PWWS
    only gets its beam search from the same script later."""
    from lstm_adv.rundir import RunDir

    root, results = tmp_path / "r", tmp_path / "results"
    root.mkdir()
    cmds = root / "commands.txt"
    attack = ["word_attack=pwws,beam:20", "word_attack_size=50"]
    cmds.write_text("".join(train_line(*TINY, *keys, f"saveto={root / name}") + "\n"
                            for name, keys in [("plain", []), ("pwws", attack), ("both", attack), ("other", attack)]))
    done = {"n": 50, "seed": 1, "max_change": 1.0}
    RunDir(results / "plain").write_metrics({"status": "ok"})
    RunDir(results / "pwws").write_metrics({"status": "ok", "word_attack": {"pwws": done}})
    RunDir(results / "both").write_metrics({"status": "ok", "word_attack": {"pwws": done, "beam": {**done, "n": 20}}})
    RunDir(results / "other").write_metrics({"status": "ok", "word_attack": {"pwws": {**done, "seed": 2},
                                                                             "beam": {**done, "n": 20}}})
    run = launcher.Launcher(commands_file.read_commands(cmds), publish=results, base=root, out=open(os.devnull, "w"))
    assert {c.name: run._published_complete(c) for c in run.commands} == {
        "plain": True, "pwws": False, "both": True, "other": False}

    cmds.write_text("".join(line + "\n" for line in cmds.read_text().splitlines()[::2]))   # plain, both
    r = sweep_cli("run", cmds, f"publish={results}", f"compiledir={tmp_path / 'cc'}", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"2 run(s) already published in {results}: not run again" in r.stdout
    assert "summary: 2 of 2 runs ok, 0 failed" in r.stdout
    assert not (root / "plain").exists() and not (root / "both").exists()


@pytest.mark.parametrize("script, args", [
    ("run_and_publish.sh", ["-", "runs/demo", "demo"]),
    ("ablation.sh", ["data=toy"]),
    ("ablation.sh", ["data=/some/where/my.csv"]),
    ("vat_comparison.sh", ["data=toy"]),
])
def test_experiment_scripts_refuse_to_publish_another_corpus_among_the_imdb_results(tmp_path, script, args):
    """experiments/results/ holds the paper's IMDB runs: runs on another corpus go to RESULTS_DIR or nowhere,
    refused before anything runs or is written (a committed IMDB run of the same folder name was
    skipped as 'already published' before this check)."""
    copy, log, script_env = _script_copy(tmp_path, "run_and_publish.sh", script)
    lines = "python -m lstm_adv.train data=toy eps=0 saveto=runs/demo/a\n"
    r = subprocess.run(["bash", str(copy / "experiments" / script), *args], input=lines, env=script_env,
                       capture_output=True, text=True, timeout=HANG_GUARD)
    corpus = next(a for a in args + lines.split() if a.startswith("data="))
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith(f"error: these runs train on {corpus}, not IMDB") and r.stderr.count("\n") == 1
    assert "set RESULTS_DIR" in r.stderr
    assert not log.exists() and sorted(p.name for p in copy.iterdir()) == ["experiments"]


def test_run_and_publish_refuses_a_relative_corpus_path_it_cannot_see(tmp_path):
    copy, log, script_env = _script_copy(tmp_path, "run_and_publish.sh")
    script_env["RESULTS_DIR"] = str(tmp_path / "results")
    r = subprocess.run(["bash", str(copy / "experiments" / "run_and_publish.sh"), "-", "runs/demo", "demo"],
                       input="python -m lstm_adv.train data=my.csv saveto=runs/demo/a\n", env=script_env,
                       capture_output=True, text=True, timeout=HANG_GUARD)
    assert r.returncode == 2 and r.stderr == ("error: data=my.csv: no such file or folder from the repository "
                                              "root, where the experiment scripts run; give its absolute path\n")
    assert not log.exists() and not (copy / "runs").exists() and not (tmp_path / "results").exists()


def wait_for_text(log, text, proc):
    """Poll until ``text`` is in the file ``log``; fail as soon as ``proc`` has ended without it.
    No deadline: the launcher writes it at a point these tests hold it at (a lock they keep)."""
    while text not in log.read_text():
        assert proc.poll() is None, log.read_text()
        time.sleep(0.05)


@pytest.mark.slow
def test_resume_after_a_run_is_killed(tmp_path):
    """SIGKILL one training process mid-run; the sweep reports it; rerunning the sweep resumes it
    from its checkpoint and leaves the finished run alone."""
    a, b = tmp_path / "r" / "a", tmp_path / "r" / "b"
    cmds = tmp_path / "commands.txt"
    cmds.write_text(train_line(*TINY, "seed=1", f"saveto={a}") + "\n"
                    + train_line(*TINY, "seed=2", "max_epochs=4", "saveFreq=10", f"saveto={b}") + "\n")
    # a has 60 updates, b 240: only b reaches update 150, where it kills itself (after the checkpoint there).
    r = subprocess.run([sys.executable, "-m", "lstm_adv.sweep", "run", str(cmds), "jobs=1", "retries=0"],
                       cwd=tmp_path, env={**env(), "LSTM_ADV_FAULT": "kill@update=150"}, capture_output=True,
                       text=True, timeout=HANG_GUARD)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert f"failed      {b}: killed by SIGKILL" in out, out
    assert status(a) == "ok" and status(b) == "running"
    a_mtime = mtime(a)

    r = sweep_cli("run", cmds, "jobs=1", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"2 runs under {tmp_path / 'r'}: 1 already finished, 0 failed (nan earlier, or bad input), 1 to run" in r.stdout
    assert "summary: 2 of 2 runs ok, 0 failed" in r.stdout
    assert status(b) == "ok" and mtime(a) == a_mtime and attempts(a) == 1 and attempts(b) == 2
    assert "resumed from the checkpoint at update 150 " in (b / "train.log").read_text()
    assert (b / "train.log").read_text().count("run directory:") == 2


@pytest.mark.slow
def test_a_crashed_run_is_retried_and_resumes(tmp_path):
    """The launcher retries a run killed mid-way (the OOM killer's SIGKILL) in the same sweep; the
    retry resumes from the checkpoint and the sweep ends ok. The fault fires once (its file)."""
    a = tmp_path / "r" / "a"
    cmds = tmp_path / "commands.txt"
    cmds.write_text(train_line(*TINY, "saveFreq=10", f"saveto={a}") + "\n")
    fired = tmp_path / "fired"
    r = subprocess.run([sys.executable, "-m", "lstm_adv.sweep", "run", str(cmds), "jobs=1", "retries=1"],
                       cwd=tmp_path, env={**env(), "LSTM_ADV_FAULT": f"kill@update=35,file={fired}"},
                       capture_output=True, text=True, timeout=HANG_GUARD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert fired.exists() and "summary: 1 of 1 runs ok, 0 failed" in r.stdout
    assert status(a) == "ok" and attempts(a) == 2
    log = (a / "train.log").read_text()
    assert "resumed from the checkpoint at update 30 " in log and log.count("run directory:") == 2


@pytest.mark.slow
def test_sigterm_stops_the_sweep(tmp_path):
    """SIGTERM to the launcher: the running run checkpoints (status interrupted), nothing new starts."""
    c, d = tmp_path / "r" / "c", tmp_path / "r" / "d"
    cmds = tmp_path / "commands.txt"
    cmds.write_text(train_line(*TINY, "max_epochs=4", "saveFreq=10", f"saveto={c}") + "\n"
                    + train_line(*TINY, f"saveto={d}") + "\n")
    paused = tmp_path / "paused"   # c waits at update 30 for the signal, so it cannot end first
    proc = subprocess.Popen([sys.executable, "-m", "lstm_adv.sweep", "run", str(cmds), "jobs=1"], cwd=tmp_path,
                            env={**env(), "LSTM_ADV_FAULT": f"pause@update=30,file={paused}"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_file(paused, proc)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=HANG_GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "stopping (signal 15)" in out and "0 failed, 2 not finished" in out
    assert status(c) == "interrupted" and not d.exists()
    assert "interrupted by signal 15 at update 30: checkpoint written" in (c / "train.log").read_text()


# --------------------------------------------------------------------------- a real Slurm array
def _no_slurm(reason):
    """Skip where Slurm cannot run; in CI (CI=true, where .ci/run installs it) fail instead, so the
    job-array test never silently drops out of a submission's checks."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}: .ci/run installs slurm-wlm and munge for this test")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm_cluster():
    if shutil.which("sbatch") is None:
        _no_slurm("sbatch not installed (apt-get install slurm-wlm munge; see ../shared/slurm/README.md)")
    up = subprocess.run(["sinfo", "-h"], capture_output=True, timeout=HANG_GUARD).returncode == 0
    started = False
    if not up:
        start = REPO.parent / "shared" / "slurm" / "start-cluster.sh"
        if not start.exists() or os.geteuid() != 0:
            _no_slurm("no Slurm controller answers and start-cluster.sh cannot be run here")
        r = subprocess.run(["bash", str(start)], capture_output=True, text=True, timeout=HANG_GUARD)
        if r.returncode != 0:
            _no_slurm(f"could not start a single-node Slurm: {r.stderr.strip()[-300:]}")
        started = True
    yield
    if started:
        subprocess.run(["bash", str(REPO.parent / "shared" / "slurm" / "stop-cluster.sh")], capture_output=True,
                       timeout=HANG_GUARD)


def _slurm_answer(command, guard):
    """The output of a Slurm client command (squeue, scontrol), asked again while the controller does
    not answer: a busy slurmctld (a loaded machine) makes the command fail with nothing on stdout,
    which must not read as "no task left". A job the controller no longer knows gives ""."""
    while True:
        r = subprocess.run(command, capture_output=True, text=True, timeout=HANG_GUARD)
        if r.returncode == 0 or "Invalid job id" in r.stderr:
            return r.stdout
        assert time.monotonic() < guard, f"hang guard: {command} still fails: {r.stderr.strip()[-300:]}"
        time.sleep(0.5)


@pytest.mark.slow
def test_slurm_array_for_real(tmp_path, slurm_cluster):
    root = tmp_path / "t1"
    r = sweep_cli("plan", "table1", "seeds=2", "eps_grid=0", f"sweep_dir={root}", *TINY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    cmds = r.stdout.strip()
    # time=: Slurm's limit per task, a hang guard too (a cold compile cache on a loaded machine takes minutes).
    r = sweep_cli("slurm", cmds, "max_parallel=2", "time=0:30:00", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    job = subprocess.run(["sbatch", "--parsable", r.stdout.strip()], cwd=tmp_path, capture_output=True, text=True,
                         timeout=HANG_GUARD)
    assert job.returncode == 0, job.stderr
    job_id = job.stdout.strip().split(";")[0]
    # Wait while the tasks are queued or running; a task in any other state fails at once. The guard
    # (both tasks' limits, were they to run one after the other) only ends a hung cluster (a stuck job
    # would otherwise hold CI to its limit), not a slow machine.
    guard = time.monotonic() + HANG_GUARD
    while queued := _slurm_answer(["squeue", "-h", "-j", job_id, "-o", "%T"], guard).split():
        assert set(queued) <= {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING"}, queued
        assert time.monotonic() < guard, f"hang guard: the array is still {queued} after {HANG_GUARD} s"
        time.sleep(0.5)
    shown = _slurm_answer(["scontrol", "-o", "show", "job", job_id], guard)
    states = [w for w in shown.split() if w.startswith("JobState=")]
    logs = "".join(p.read_text() for p in sorted((root / "slurm-logs").glob("*.out")))
    assert states == ["JobState=COMPLETED"] * 2, shown + logs
    assert [status(root / "eps=0.0" / f"seed={s}") for s in (1, 2)] == ["ok", "ok"], logs
    for s in (1, 2):
        assert logs.count(f"saveto={root}/eps=0.0/seed={s}\n") == 1


def test_a_run_locked_by_a_live_process_is_waited_for(tmp_path):
    """A rerun after a killed launcher finds its runs still training: it waits for them and
    reports their final status, never "in use" failures. The test holds the lock itself."""
    from lstm_adv.rundir import RunDir

    run_dir = tmp_path / "r" / "a"
    cmds = tmp_path / "commands.txt"
    cmds.write_text(train_line(*TINY, f"saveto={run_dir}") + "\n")
    held = RunDir(run_dir)
    held.lock()
    log = open(tmp_path / "sweep.out", "w")
    proc = subprocess.Popen([sys.executable, "-m", "lstm_adv.sweep", "run", str(cmds), "jobs=1", "retries=0",
                             f"compiledir={tmp_path / 'cc'}"], cwd=tmp_path, env=env(), stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_for_text(tmp_path / "sweep.out", "waiting for it", proc)
        assert proc.poll() is None   # still waiting: only the lock's release can end it
        held.write_metrics({"status": "ok"})
    finally:
        held.unlock()
    assert proc.wait(timeout=HANG_GUARD) == 0, (tmp_path / "sweep.out").read_text()
    log.close()
    out = (tmp_path / "sweep.out").read_text()
    assert f"being trained by pid {os.getpid()}" in out and "[1/1] ok" in out
    assert "summary: 1 of 1 runs ok, 0 failed" in out and "in use" not in out
    assert not (run_dir / "stdout.log").exists()   # never started by the launcher


def test_publish_copies_each_run_as_it_ends(tmp_path):
    """``sweep run publish=DIR``: a run finished earlier is published at the start, a run that ends
    ok is published at once while the others still run (its small files only, no local paths),
    and a run still training is not. The test holds the runs' locks itself: no training."""
    from lstm_adv.rundir import RunDir

    root, results = tmp_path / "r", tmp_path / "results"
    a, b, c = root / "a", root / "b", root / "c"
    cmds = root / "commands.txt"
    root.mkdir()
    cmds.write_text("".join(train_line(*TINY, f"seed={k}", f"saveto={d}") + "\n" for k, d in enumerate((a, b, c))))
    r = sweep_cli("run", cmds, f"publish={cmds}", cwd=tmp_path)   # a file, not a folder: refused first
    assert r.returncode == 2 and r.stderr.strip() == f"error: publish={cmds} is a file, not a folder", r.stderr
    RunDir(c).write_metrics({"status": "ok", "test_err": 0.25})
    held = {d: RunDir(d) for d in (a, b)}
    for run in held.values():
        run.lock()
    log = open(tmp_path / "sweep.out", "w")
    proc = subprocess.Popen([sys.executable, "-m", "lstm_adv.sweep", "run", str(cmds), "jobs=2", "retries=0",
                             f"publish={results}", f"compiledir={tmp_path / 'cc'}"], cwd=tmp_path, env=env(),
                            stdout=log, stderr=subprocess.STDOUT)

    def wait_for(text):
        wait_for_text(tmp_path / "sweep.out", text, proc)

    try:
        wait_for("b: being trained by pid")
        assert (results / "c" / "metrics.json").exists()   # finished earlier: published at the start
        run = held[a]
        run.write_config({"config": {"data_path": str(tmp_path / "data.tar.gz"), "seed": 0}})
        run.write_history([])
        (a / "params.npz").write_bytes(b"not published")
        run.write_metrics({"status": "ok", "test_err": 0.125})
        run.unlock()
        wait_for(f"a: published to {results / 'a'}")
        assert proc.poll() is None and not (results / "b").exists()   # b is still training
        assert sorted(p.name for p in (results / "a").iterdir()) == ["config.json", "history.csv", "metrics.json"]
        assert json.loads((results / "a" / "metrics.json").read_text()) == {"status": "ok", "test_err": 0.125}
        assert str(tmp_path) not in (results / "a" / "config.json").read_text()
        held[b].write_metrics({"status": "ok"})
    finally:
        for run in held.values():
            run.unlock()
    assert proc.wait(timeout=HANG_GUARD) == 0, (tmp_path / "sweep.out").read_text()
    log.close()
    assert json.loads((results / "b" / "metrics.json").read_text()) == {"status": "ok"}
    assert "summary: 3 of 3 runs ok, 0 failed" in (tmp_path / "sweep.out").read_text()


@pytest.mark.slow
def test_vat_comparison_selects_eps_on_validation_then_runs_more_seeds(tmp_path):
    """experiments/vat_comparison.sh on data=toy: stage 1 runs each method's eps grid at seed 1,
    stage 2 runs the other seeds at the eps with the lowest validation error only."""
    results = tmp_path / "results"
    script_env = {**env(), "PYTHON": sys.executable, "RESULTS_DIR": str(results), "VAT_DIR": str(tmp_path / "runs"),
                  "METHODS": "plain vat", "EPS_vat": "0.5 3.0", "SEEDS": "2"}
    tiny = [a for a in TINY if not a.startswith("attack_eps=")]
    r = subprocess.run(["bash", str(REPO / "experiments" / "vat_comparison.sh"), *tiny, "preset=",
                        "attack_eps=0.1,1", "attack_k=2", "attack_size=20"],
                       cwd=tmp_path, env=script_env, capture_output=True, text=True, timeout=HANG_GUARD)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    published = results / "vat_comparison"
    stage1 = sorted(p.name for p in published.glob("*_seed=1"))
    assert stage1 == ["plain_eps=0.0_seed=1", "vat_eps=0.5_seed=1", "vat_eps=3.0_seed=1"]
    dev = {name: json.loads((published / name / "metrics.json").read_text())["valid_err"] for name in stage1[1:]}
    chosen = min(dev, key=lambda n: (dev[n], float(n.split("eps=")[1].split("_")[0])))
    chosen_eps = chosen.split("eps=")[1].split("_")[0]
    assert f"vat: eps={chosen_eps} selected on the validation split (seed 1)" in r.stderr
    assert sorted(p.name for p in published.glob("*_seed=2")) == ["plain_eps=0.0_seed=2", f"vat_eps={chosen_eps}_seed=2"]
    cfg = json.loads((published / f"vat_eps={chosen_eps}_seed=2" / "config.json").read_text())["config"]
    assert cfg["vat"] == 1 and cfg["emb_norm"] == 1 and cfg["maxlen_mode"] == "truncate" and cfg["attack_relative"] == 1
    table = (published / "ablation.md").read_text()
    assert "## Robust test error under the predicted-label iterative attacks" in table and "x emb_median_abs" in table

"""Around the training tool: config= reruns, print_config, provenance, publishable files, logs."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import HANG_GUARD, TINY, assert_one_line_error, load_npz, merge, read_json, run_cli
from lstm_adv import config as config_mod
from lstm_adv.common.config_files import run_dirs_below, similar_run_dirs
from lstm_adv.common.errors import UserError
from lstm_adv.common.publish import publishable_config, publishable_path, publishable_text
from lstm_adv.common.utils import git_state, provenance

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """A tiny adversarial run (dispFreq=10, progress=0) that the rerun tests start from."""
    root = tmp_path_factory.mktemp("src")
    args = TINY + ["eps=0.5", "seed=7", "dispFreq=10", f"saveto={root / 'run'}"]
    proc = run_cli("lstm_adv.train", args, root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "run", proc


@pytest.mark.slow
def test_rerun_from_config_json_is_bit_exact(source_run, tmp_path):
    src, _ = source_run
    proc = run_cli("lstm_adv.train", [f"config={src / 'config.json'}", f"saveto={tmp_path / 'again'}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = load_npz(src / "params.npz"), load_npz(tmp_path / "again" / "params.npz")
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    assert (src / "history.csv").read_text() == (tmp_path / "again" / "history.csv").read_text()
    old, new = read_json(src / "config.json")["config"], read_json(tmp_path / "again" / "config.json")["config"]
    assert {k for k in old if old[k] != new[k]} == {"saveto"}


@pytest.mark.slow
def test_config_keys_after_the_file_win_and_print_config_writes_nothing(source_run, tmp_path):
    src, _ = source_run
    proc = run_cli("lstm_adv.train", [f"config={src}", "eps=0.25", "print_config=1"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads(proc.stdout)
    assert cfg["eps"] == 0.25 and cfg["seed"] == 7 and cfg["hdim"] == 8 and cfg["saveto"] == ""
    assert list(tmp_path.iterdir()) == []   # no run directory, no log
    # The printed configuration is itself a config file.
    (tmp_path / "cfg.json").write_text(proc.stdout)
    assert config_mod.parse_args([f"config={tmp_path / 'cfg.json'}"]).to_dict() == cfg


def test_config_file_forms_and_presets(tmp_path):
    keys = tmp_path / "small.cfg"
    keys.write_text("# a preset file\ndata=toy\nwdim = 64   # trailing comment\n\neps=0.5\nw2v_path=vectors.bin\n")
    cfg = config_mod.parse_args([f"config={keys}", "eps=0.1"])
    assert (cfg.data, cfg.wdim, cfg.eps, cfg.max_epochs) == ("toy", 64, 0.1, 10)   # toy defaults apply
    # A preset given after the file replaces the file's keys; keys after the preset win over it.
    assert config_mod.parse_args([f"config={keys}", "preset=authors"]).wdim == 300
    assert config_mod.parse_args([f"config={keys}", "preset=authors", "wdim=32"]).wdim == 32
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"preset": "authors", "hdim": 16, "data": "toy", "w2v_path": "v.bin"}))
    cfg = config_mod.parse_args([f"config={flat}"])
    assert (cfg.preset, cfg.wemb_init, cfg.wdim, cfg.hdim) == ("authors", "word2vec", 300, 16)
    bad = tmp_path / "bad.cfg"
    bad.write_text("hdimm=3\n")
    with pytest.raises(UserError, match=r"config=.*bad.cfg: unknown key 'hdimm'; did you mean hdim\?"):
        config_mod.parse_args([f"config={bad}"])
    with pytest.raises(UserError, match="no such file"):
        config_mod.parse_args([f"config={tmp_path / 'missing.json'}"])


def test_a_missing_config_folder_names_the_run_folders_like_it(tmp_path):
    # The README's config=runs/eps=0.5 after the toy quick start, whose folder is runs/eps=0.5,data=toy.
    for name in ("eps=0.5,data=toy", "eps=0.3,data=toy", "eps=0.5,seed=2,data=toy"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "config.json").write_text("{}")
    (tmp_path / "runs" / "eps=0.5,data=my.csv").mkdir()   # no config.json: not a run
    proc = run_cli("lstm_adv.train", ["config=runs/eps=0.5", "seed=2"], tmp_path)
    assert_one_line_error(proc, "config=runs/eps=0.5: no such file",
                          "; did you mean runs/eps=0.5,data=toy or runs/eps=0.5,seed=2,data=toy?")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    assert len(list((tmp_path / "runs").iterdir())) == 4
    # A near spelling (difflib), closest first; a run's config.json keeps its file name.
    assert similar_run_dirs(str(tmp_path / "runs" / "eps=0.3,data=tay" / "config.json"))[0] == \
        str(tmp_path / "runs" / "eps=0.3,data=toy" / "config.json")
    assert similar_run_dirs("nowhere/eps=0.5") == []


def test_a_missing_config_folder_finds_nested_run_folders(tmp_path):
    # A sweep nests its runs (runs/table1/eps=0.5/seed=1): the hint looks at any depth below the
    # parent folder, and a nested run's keys are those of every folder on its way.
    runs = tmp_path / "runs"
    for rel in ("table1/eps=0.5/seed=1", "table1/eps=0.5/seed=2", "table1/eps=1.0/seed=1", ".git/x/eps=0.5,seed=1"):
        (runs / rel).mkdir(parents=True)
        (runs / rel / "config.json").write_text("{}")
    (runs / "table1" / "eps=0.5" / "seed=1" / "sub" / "deeper").mkdir(parents=True)   # inside a run: not searched
    (runs / "table1" / "eps=0.5" / "seed=1" / "sub" / "deeper" / "config.json").write_text("{}")
    (runs / "table1" / "loop").symlink_to(runs)   # a link is never entered: no cycle
    # All the keys first (in nested folders), then near spellings.
    with pytest.raises(UserError, match=r"config=.*runs/eps=0.5,seed=1: no such file .*; did you mean "
                                        r"\S*runs/table1/eps=0.5/seed=1 or "):
        config_mod.parse_args([f"config={runs / 'eps=0.5,seed=1'}"])
    # The folder of a grid point (no config.json of its own): its seeds, a run's config.json kept.
    assert similar_run_dirs(str(runs / "table1" / "eps=0.5" / "config.json")) == \
        [str(runs / "table1" / "eps=0.5" / s / "config.json") for s in ("seed=1", "seed=2")]
    assert run_dirs_below(runs) == ["table1/eps=0.5/seed=1", "table1/eps=0.5/seed=2", "table1/eps=1.0/seed=1"]
    # Bounded: it stops after max_runs runs or max_folders folders listed, shallowest first.
    assert run_dirs_below(runs, max_runs=1) == ["table1/eps=0.5/seed=1"]
    assert run_dirs_below(runs, max_folders=2) == []   # runs/ and runs/table1 listed; the runs are deeper
    assert run_dirs_below(tmp_path / "nowhere") == []


def test_bad_config_file_is_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "c.json").write_text("{not json")
    proc = run_cli("lstm_adv.train", ["config=c.json"], tmp_path)
    assert_one_line_error(proc, "config=c.json is not valid JSON")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]


@pytest.mark.slow
def test_provenance_in_config_json(source_run):
    src, _ = source_run
    prov = read_json(src / "config.json")["provenance"]
    assert set(prov) == {"git_commit", "git_dirty", "host", "fault_hook"} and prov["host"]
    assert prov["fault_hook"] is None   # LSTM_ADV_FAULT unset
    commit, dirty = git_state()
    assert prov["git_commit"] == commit
    if (REPO / ".git").exists():
        assert isinstance(prov["git_commit"], str) and len(prov["git_commit"]) == 40
        assert isinstance(prov["git_dirty"], bool)


def test_provenance_outside_a_checkout(tmp_path):
    assert git_state(tmp_path) == (None, None)
    assert provenance()["host"]


@pytest.mark.slow
def test_progress_0_logs_every_dispFreq_updates_without_the_blas_alarm(source_run):
    _, proc = source_run
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("update ") and "ms/update" in ln
             and " train " not in ln]
    assert [ln.split()[1] for ln in lines[:3]] == ["10", "20", "30"]
    assert lines[0].startswith("update 10 epoch 0: cost ")
    assert "could not link to a BLAS installation" not in proc.stderr


@pytest.mark.slow
def test_progress_1_redirected_writes_no_bar(tmp_path):
    """progress=1 with the output going to a pipe (as to a log file or a Slurm .out): the validation
    lines only, no carriage-return redraws of the bar."""
    proc = run_cli("lstm_adv.train", merge(TINY, ["progress=1", "eps=0.5", f"saveto={tmp_path / 'r'}"]), tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # run_cli reads text with universal newlines (a carriage return arrives as a newline): look for the bar.
    assert "%|" not in proc.stdout + proc.stderr and "it/s" not in proc.stderr
    assert "valid " in proc.stdout and "done: " in proc.stdout
    assert not [ln for ln in proc.stdout.splitlines() if ln.startswith("update ") and " train " not in ln]


@pytest.mark.slow
def test_progress_1_into_a_file_has_no_carriage_return(tmp_path):
    """As a Slurm .out file or ``> log 2>&1`` receives it: the bytes themselves, one line per event."""
    import os
    import subprocess

    log = tmp_path / "slurm.out"
    with open(log, "wb") as fh:
        code = subprocess.run([sys.executable, "-m", "lstm_adv.train",
                               *merge(TINY, ["progress=1", "eps=0.5", f"saveto={tmp_path / 'r'}"])], cwd=tmp_path,
                              stdout=fh, stderr=subprocess.STDOUT, timeout=HANG_GUARD,
                              env={**os.environ, "OPENBLAS_NUM_THREADS": "1"}).returncode
    out = log.read_bytes()
    assert code == 0, out[-2000:]
    assert b"\r" not in out and b"\x1b[" not in out   # no bar redraws, no cursor moves
    lines = out.decode().splitlines()
    assert sum(ln.startswith("update ") and " valid " in ln for ln in lines) == 6   # 120 updates, validFreq=20
    assert lines[-1].startswith("done: ")


def test_publishable_files_have_no_local_paths(tmp_path):
    root = tmp_path / "repo"
    assert publishable_path(root / "runs" / "x", root) == "runs/x"
    assert publishable_path(tmp_path / "shared" / "data.tar.gz", root) == "../shared/data.tar.gz"
    assert publishable_path("/elsewhere/deep/cache.npz", root) == ".../cache.npz"
    line = f"python -m lstm_adv.train eps=0.5 data_path={tmp_path}/shared/a.tar.gz saveto=runs/a"
    assert publishable_text(line, root) == "python -m lstm_adv.train eps=0.5 data_path=../shared/a.tar.gz saveto=runs/a"
    text = "see https://ai.stanford.edu/~amaas/data/x.tar.gz, dL(y)/de and 7/10 </p>"
    assert publishable_text(text, root) == text
    record = {"config": {"data_path": f"{tmp_path}/shared/a.tar.gz", "saveto": str(root / "runs" / "a")},
              "argv": [str(root / "lstm_adv" / "train.py"), f"saveto={root}/runs/a"],
              "pytensor": {"mode": "C", "compiledir": "/home/someone/.pytensor/compiledir_x"},
              "data": {"source": "/home/someone/aclImdb_v1.tar.gz", "sha256": "ab" * 32}}
    out = publishable_config(record, root)
    assert out["config"] == {"data_path": "../shared/a.tar.gz", "saveto": "runs/a"}
    assert out["argv"] == ["lstm_adv/train.py", "saveto=runs/a"]
    assert out["pytensor"] == {"mode": "C"} and out["data"]["source"] == ".../aclImdb_v1.tar.gz"
    assert str(tmp_path) not in json.dumps(out) and "someone" not in json.dumps(out)
    # trained in a sibling checkout (another worktree), published from this one: still the package's name
    elsewhere = {**record, "argv": [str(tmp_path / "wt-other" / "lstm_adv" / "train.py"), "eps=1"]}
    assert publishable_config(elsewhere, root)["argv"] == ["lstm_adv/train.py", "eps=1"]


def test_committed_results_carry_no_local_paths():
    for path in (REPO / "experiments" / "results").rglob("*"):
        if path.is_file() and path.suffix in (".txt", ".md", ".html", ".csv", ".json"):
            text = path.read_text(encoding="utf-8")
            for local in ("/work/", "/tmp/", "/home/", "/root/", "/Users/"):
                assert local not in text, (path, local)


def toml_parser():
    """``tomllib`` (Python 3.11+), else ``tomli``: the same parser, which pytest itself requires on
    Python < 3.11, so the test runs on every Python that ``requires-python`` allows (3.10 too)."""
    try:
        import tomllib
    except ModuleNotFoundError:
        import tomli as tomllib
    return tomllib


def test_console_scripts_match_pyproject():
    tomllib = toml_parser()
    from lstm_adv import cli
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    scripts = meta["project"]["scripts"]
    assert scripts == {name: f"lstm_adv.cli:{fn}" for name, fn in cli.SCRIPTS.items()}
    assert all(callable(getattr(cli, fn)) for fn in cli.SCRIPTS.values())
    assert meta["project"]["license"] == "MIT" and (REPO / "LICENSE").read_text().startswith("MIT License")
    sacremoses = [d for d in meta["project"]["dependencies"] if d.startswith("sacremoses")]
    assert sacremoses and "<" in sacremoses[0]   # the tokenizer reads its internals


def test_console_script_runs_train(tmp_path, monkeypatch, capsys):
    from lstm_adv import cli
    monkeypatch.setattr(sys, "argv", ["lstm-adv-train", "data=toy", "eps=0.5", "print_config=1"])
    monkeypatch.chdir(tmp_path)
    assert cli.train() == 0
    assert json.loads(capsys.readouterr().out)["eps"] == 0.5
    monkeypatch.setattr(sys, "argv", ["lstm-adv-train", "hdimm=3"])
    assert cli.train() == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.long
def test_pip_install_puts_the_console_scripts_on_path(tmp_path):
    """A real `pip install` into a fresh venv (needs the package index for setuptools>=77)."""
    import subprocess
    import venv
    venv.create(tmp_path / "venv", with_pip=True, system_site_packages=True)
    bindir = tmp_path / "venv" / "bin"
    proc = subprocess.run([bindir / "python", "-m", "pip", "install", "-q", "--no-deps", str(REPO)],
                          capture_output=True, text=True, timeout=HANG_GUARD)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from lstm_adv import cli
    for name in cli.SCRIPTS:
        assert (bindir / name).exists(), name
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([bindir / "lstm-adv-train", "--help"], capture_output=True, text=True, env=env, timeout=HANG_GUARD)
    assert out.returncode == 0 and "config=PATH" in out.stdout


def test_visualize_finds_the_runs_data_without_downloading(tmp_path, monkeypatch):
    from lstm_adv.analysis.visualize.inputs import _recorded_data
    monkeypatch.delenv("LSTM_ADV_DATA", raising=False)
    cfg = config_mod.parse_args([])
    archive = tmp_path / "aclImdb.tar.gz"
    archive.write_bytes(b"x")
    cache = tmp_path / "imdb-x.npz"
    record = {"data": {"source": str(archive), "cache": str(cache), "sha256": "0" * 64}}
    assert _recorded_data(cfg, record) == (config_mod.parse_args([f"data_path={archive}"]), None)
    archive.unlink()
    assert _recorded_data(cfg, record) == (cfg, None)            # neither archive nor cache: as before
    cache.write_bytes(b"x")
    (tmp_path / "imdb-x.vocab.json").write_text("{}")
    assert _recorded_data(cfg, record) == (cfg, cache)
    given = config_mod.parse_args(["data_path=elsewhere.tar.gz"])
    assert _recorded_data(given, record) == (given, None)        # an explicit data_path wins
    monkeypatch.setenv("LSTM_ADV_DATA", "x.tar.gz")
    assert _recorded_data(cfg, record) == (cfg, None)            # so does $LSTM_ADV_DATA


def _fake_run(d, cfg, status, test, history):
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"config": cfg, "adversarial": cfg["eps"] > 0}))
    (d / "metrics.json").write_text(json.dumps({"status": status, "valid_err": test, "test_err": test}))
    (d / "history.csv").write_text("update,epoch,train_cost,train_err,valid_err,test_err\n"
                                   + "".join(f"{u},0,0.6,0.4,{v},\n" for u, v in history))


def test_random_search_scatter_and_runs_csv(tmp_path):
    import csv
    root = tmp_path / "random"
    for i, (a, p) in enumerate([(0.2, 0.25), (0.3, 0.22), (0.5, 0.21)]):
        base = {"hdim": 32 * (i + 1), "alpha": 0.4, "seed": i, "saveto": f"x{i}", "data_path": f"/d{i}"}
        _fake_run(root / f"draw={i:03d}" / "adv", {**base, "eps": 0.3}, "ok", a, [(10, 0.4), (20, a)])
        _fake_run(root / f"draw={i:03d}" / "plain", {**base, "eps": 0.0}, "ok", p, [(10, 0.45), (20, p)])
    _fake_run(root / "draw=003" / "adv", {"hdim": 8, "alpha": 0.4, "seed": 9, "eps": 0.3}, "nan", None, [])
    proc = run_cli("lstm_adv.sweep", ["summary", str(root)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    png = root / "random_search.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000
    rows = list(csv.DictReader(open(root / "runs.csv")))
    assert len(rows) == 13   # 6 runs x 2 validations + the NaN run's single row
    assert list(rows[0])[:6] == ["run", "status", "eps", "alpha", "seed", "hdim"]
    assert "saveto" not in rows[0] and "data_path" not in rows[0]   # not settings
    assert rows[0]["run"] == "draw=000/adv" and rows[0]["update"] == "10" and rows[1]["valid_err"] == "0.2"
    assert rows[-1]["status"] == "nan" and rows[-1]["update"] == ""
    # lstm_adv.results writes runs.csv and the scatter too.
    png.unlink()
    proc = run_cli("lstm_adv.results", [str(root), f"out={tmp_path / 'tab'}"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "tab" / "runs.csv").read_text() == (root / "runs.csv").read_text() and png.exists()

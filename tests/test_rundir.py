"""The one reader of run directories (lstm_adv.rundir: read_run, find_runs) and the keys of a run's identity."""

import dataclasses
import json
import os

import pytest

from lstm_adv import config, rundir
from lstm_adv.analysis import summary
from lstm_adv.common import paper
from lstm_adv.common.errors import UserError
from lstm_adv.rundir import RunDir, find_runs, read_run, run_status

HISTORY = "update,epoch,train_cost,train_err,valid_err,test_err\n10,1,0.69,0.5,0.5,\n20,2,0.6,0.4,0.45,\n"


def make_run(d, cfg=None, metrics=None, history=HISTORY, raw=None):
    """A run directory as train writes it; ``raw`` maps a file name to text written as is."""
    d.mkdir(parents=True)
    cfg = dataclasses.asdict(config.Config(data="toy", seed=1)) if cfg is None else cfg
    (d / "config.json").write_text(json.dumps({"config": cfg, "n_words": 10}))
    if metrics is not None:
        (d / "metrics.json").write_text(json.dumps(metrics))
    if history is not None:
        (d / "history.csv").write_text(history)
    for name, text in (raw or {}).items():
        (d / name).write_text(text)
    return d


# -- reading -----------------------------------------------------------------------------------------
def test_read_run_returns_every_file(tmp_path):
    d = make_run(tmp_path / "r", metrics={"status": "ok", "test_err": 0.2})
    rec = read_run(d)
    assert rec.path == d and rec.config["seed"] == 1 and rec.saved["n_words"] == 10
    assert rec.status == "ok" and rec.metrics["test_err"] == 0.2 and rec.problem is None
    assert [r["epoch"] for r in rec.history] == ["1", "2"] and rec.history[0]["test_err"] == ""
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.path = tmp_path


def test_missing_metrics_and_history_are_fine(tmp_path):
    rec = read_run(make_run(tmp_path / "r", history=None))
    assert rec.status == "no metrics" and rec.metrics is None and rec.history == ()
    assert run_status(tmp_path / "r") is None


@pytest.mark.parametrize("text, why", [("{\"status\": ", "JSONDecodeError"), ("[1, 2]", "no status entry"),
                                       ("{\"test_err\": 0.2}", "no status entry")])
def test_corrupt_metrics_is_one_error_naming_the_file(tmp_path, text, why):
    d = make_run(tmp_path / "r", raw={"metrics.json": text})
    with pytest.raises(UserError) as err:
        read_run(d)
    assert str(err.value).startswith(f"{d / 'metrics.json'} is unusable (") and why in str(err.value)
    assert "\n" not in str(err.value)
    lenient = read_run(d, strict=False)   # the tables count it as failed instead
    assert lenient.status == "corrupt" and why in lenient.problem and lenient.config["seed"] == 1
    assert run_status(d) is None


def test_unreadable_history_is_an_error_only_when_strict(tmp_path):
    d = make_run(tmp_path / "r", history=None)
    (d / "history.csv").write_bytes(b"update,epoch\n\xff\xfe,1\n")
    with pytest.raises(UserError, match="history.csv is unreadable"):
        read_run(d)
    assert read_run(d, strict=False).history == ()


@pytest.mark.parametrize("text, message", [(None, "has no config.json"), ("{", "config.json is unreadable"),
                                           ("{\"n_words\": 3}", "is not an lstm_adv run configuration")])
def test_config_json_must_be_a_run_configuration(tmp_path, text, message):
    d = tmp_path / "r"
    d.mkdir()
    if text is not None:
        (d / "config.json").write_text(text)
    with pytest.raises(UserError, match=message):
        read_run(d, strict=False)


def test_find_runs_reads_each_directory_once_and_skips_unreadable_configs(tmp_path):
    make_run(tmp_path / "b" / "seed=2", metrics={"status": "running"})
    make_run(tmp_path / "a", metrics={"status": "ok"})
    make_run(tmp_path / "b" / "bad", raw={"config.json": "not json"})
    records, skipped = find_runs([tmp_path, tmp_path / "b"])
    assert [r.path for r in records] == [tmp_path / "a", tmp_path / "b" / "seed=2"]
    assert [r.status for r in records] == ["ok", "running"]
    assert len(skipped) == 1 and "bad/config.json is unreadable" in str(skipped[0])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no runs"):
        find_runs([tmp_path / "empty"])
    with pytest.raises(UserError, match="not found"):
        find_runs([tmp_path / "nope"])


def test_read_vocab(tmp_path):
    d = make_run(tmp_path / "r", raw={"vocab.json": "[\"<pad>\", \"UNK\"]"})
    assert rundir.read_vocab(d) == ["<pad>", "UNK"]
    assert rundir.read_vocab(make_run(tmp_path / "none")) is None
    (d / "vocab.json").write_text("{\"a\": 1}")
    with pytest.raises(UserError, match="is not a list of words"):
        rundir.read_vocab(d)


# -- the keys of a run's identity --------------------------------------------------------------------
def test_every_key_has_a_role_and_the_lists_derive_from_it():
    roles = {name: f.metadata["role"] for name, f in config.FIELDS.items()}
    assert set(roles.values()) <= set(config.ROLES)
    assert config.IDENTITY_KEYS == tuple(k for k, r in roles.items() if r == "model")
    assert set(config.RESULT_KEYS) | set(config.NEUTRAL_KEYS) == set(config.FIELDS)
    assert not set(config.RESULT_KEYS) & set(config.NEUTRAL_KEYS)
    # The choices this project made: the backend, budget, attacks and output keys are not identity.
    assert {"mode", "device", "max_epochs", "attack_eps", "attack_k", "attack_size", "attack_relative", "saveto",
            "runs_dir", "resume", "progress", "dispFreq", "saveFreq", "data_path", "download", "valid_test",
            "train_err_size", "denormals", "word_attack", "word_attack_size", "word_attack_seed",
            "word_attack_max_change"} == set(config.FIELDS) - set(config.IDENTITY_KEYS)
    # A derived run directory is named by every identity key but the path reload_model; the word
    # attacks are left out of it too, so that a finished run rerun with one finds its folder.
    word_attack = {k for k in config.FIELDS if k.startswith("word_attack")}
    assert set(config.RUN_DIR_NAME_SKIP) - {"reload_model"} - word_attack <= set(config.NEUTRAL_KEYS)
    assert word_attack <= set(config.RUN_DIR_NAME_SKIP)


def _other_value(name):
    """A valid value of key ``name`` other than the toy default."""
    base = config.defaults_for("toy")
    f = config.FIELDS[name]
    if f.metadata["choices"]:
        return next(c for c in f.metadata["choices"] if c != getattr(base, name))
    special = {"attack_eps": "0.2", "saveto": "elsewhere", "runs_dir": "other", "data_path": "/data/x.tar.gz",
               "w2v_path": "/v.bin", "reload_model": "/p.npz", "test_size": 7, "attack_size": 9, "data": "imdb",
               "text_col": "review", "label_col": "stars", "synonyms": "/subs.tsv", "word_attack": "pwws"}
    if name in special:
        return special[name]
    return getattr(base, name) + (1 if f.type in (int, "int") else 0.125)


@pytest.mark.parametrize("name", list(config.FIELDS))
def test_resume_refuses_a_change_of_an_identity_key_only(tmp_path, name):
    old = dataclasses.replace(config.defaults_for("toy"), seed=1)
    make_run(tmp_path / "r", cfg=old.to_dict())
    new = dataclasses.replace(old, **{name: _other_value(name)})   # unvalidated: only the comparison matters
    if name in config.IDENTITY_KEYS:
        with pytest.raises(UserError, match=f"holds a run with {name}="):
            RunDir(tmp_path / "r").check_same_run(new)
    else:
        RunDir(tmp_path / "r").check_same_run(new)


def test_resume_accepts_a_run_directory_of_an_older_version(tmp_path):
    # A config.json written before some keys existed, with mode=C: today's run with mode=auto fits.
    cfg = config.defaults_for("toy")
    saved = {k: v for k, v in cfg.to_dict().items() if k not in ("emb_norm", "vat", "unlabelled")}
    make_run(tmp_path / "r", cfg={**saved, "mode": "C"})
    RunDir(tmp_path / "r").check_same_run(cfg)
    (tmp_path / "r" / "config.json").write_text("{")
    with pytest.raises(UserError, match="config.json is unreadable .*resume=0"):
        RunDir(tmp_path / "r").check_same_run(cfg)


def test_results_table_groups_by_the_same_keys(tmp_path):
    # mode (a backend key) does not split a setting; hdim (an identity key) does.
    for seed, mode in ((1, "C"), (2, "NUMBA")):
        make_run(tmp_path / "runs" / f"s{seed}", cfg={"eps": 0.5, "alpha": 0.5, "seed": seed, "mode": mode},
                 metrics={"status": "ok", "valid_err": 0.1, "test_err": 0.2})
    s = summary.summarise(tmp_path / "runs")
    assert not s["mixed"] and "mode" not in s["shared"]
    make_run(tmp_path / "runs" / "s3", cfg={"eps": 0.5, "alpha": 0.5, "seed": 3, "hdim": 64},
             metrics={"status": "ok", "valid_err": 0.1, "test_err": 0.2})
    assert list(summary.summarise(tmp_path / "runs")["mixed"]) == ["hdim"]


def test_table1_constants_agree():
    assert config.Config().alpha == paper.TABLE1_ALPHA
    assert set(paper.TABLE1_EPS) == set(paper.PAPER)


def test_a_start_up_refused_before_keep_leaves_nothing_behind(tmp_path):
    """`RunDir.lock` to `RunDir.keep` is provisional: `discard` removes what it made, and only that."""
    run = RunDir(tmp_path / "a" / "b" / "run")
    run.lock()
    run.log("held until keep")
    assert run.provisional and not run.log_path.exists()
    run.discard()
    assert list(tmp_path.iterdir()) == [] and not run.provisional

    old = tmp_path / "old"
    old.mkdir()
    (old / "train.log").write_text("an earlier attempt\n")
    mtime = old.stat().st_mtime_ns
    run = RunDir(old)
    run.lock()
    run.log("refused")
    run.discard()
    assert [p.name for p in old.iterdir()] == ["train.log"] and old.stat().st_mtime_ns == mtime
    assert (old / "train.log").read_text() == "an earlier attempt\n"

    run.lock()
    run.log("kept")
    run.keep()
    run.log("written at once")
    run.unlock()
    assert (old / "train.log").read_text() == "an earlier attempt\nkept\nwritten at once\n"
    assert (old / ".lock").exists() and not run.provisional


def test_a_lock_removed_by_a_refused_start_up_is_taken_afresh(tmp_path):
    first, second = RunDir(tmp_path / "run"), RunDir(tmp_path / "run")
    first.lock()
    with pytest.raises(UserError, match="in use by pid"):
        second.lock()
    first.discard()
    second.lock()   # the folder and its .lock made again, not the removed file's inode
    assert (tmp_path / "run" / ".lock").read_text() == str(os.getpid())
    second.unlock()

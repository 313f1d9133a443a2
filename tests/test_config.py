"""The key=value command line: parsing, --help, and one-line errors with exit status 2."""

import dataclasses

import pytest

from conftest import assert_one_line_error, run_cli
from lstm_adv.config import FIELDS, Config, from_dict, help_text, parse_args
from lstm_adv.common.errors import UserError


def test_defaults_follow_the_paper():
    cfg = parse_args([])
    assert (cfg.wdim, cfg.hdim, cfg.clip, cfg.alpha, cfg.eps, cfg.reg) == (128, 128, 5.0, 0.5, 0.0, 0.0)
    assert not cfg.adversarial


def test_eps_alone_is_the_table1_setting():
    cfg = parse_args(["eps=0.5"])
    assert cfg.adversarial and cfg.alpha == 0.5 and cfg.adv_norm == "sign"
    assert str(cfg.run_dir()).endswith("eps=0.5")
    assert not parse_args(["eps=0.5", "adv=0"]).adversarial
    assert parse_args(["adv=1"]).adversarial


def test_types_and_a_key_given_twice_is_refused():
    cfg = parse_args(["hdim=32", "eps=0.25", "encoder=rnn"])
    assert cfg.hdim == 32 and isinstance(cfg.hdim, int) and cfg.eps == 0.25 and cfg.encoder == "rnn"
    with pytest.raises(UserError, match="hdim is given twice"):
        parse_args(["hdim=64", "eps=0.25", "hdim=32"])


def test_config_is_frozen_and_round_trips():
    cfg = parse_args(["eps=0.5", "seed=7"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.eps = 1.0
    assert from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("key, value", [("adv_norm", "linf"), ("use_dropout", 2), ("mode", "XLA")])
def test_a_saved_configuration_outside_a_keys_choices_is_refused(key, value):
    d = parse_args([]).to_dict()
    d[key] = value
    with pytest.raises(UserError, match=f"saved configuration has {key}={value!r}, not one of"):
        from_dict(d)


@pytest.mark.parametrize("argv, fragment", [
    (["hdmi=3"], "did you mean hdim"),
    (["hdim=3.5"], "hdim='3.5' is not an int"),
    (["alpha=1.5"], "alpha=1.5 must be in [0, 1]"),
    (["eps=-1"], "eps=-1.0 must be >= 0"),
    (["encoder=lstmm"], "did you mean encoder=lstm"),
    (["w2v_std=-1", "data=toy"], "w2v_std=-1.0 must be >= 0"),
    (["eps"], "not key=value"),
    (["attack_eps=a,b"], "comma-separated numbers"),
    (["device=gpu", "floatX=float64"], "float32"),
    (["train_err_size=0"], "train_err_size=0 must be -1 (all) or positive"),
])
def test_bad_input_is_refused_with_the_fix(argv, fragment):
    with pytest.raises(UserError, match=None) as err:
        parse_args(argv)
    assert fragment in str(err.value)


def test_help_lists_every_key():
    text = help_text("prog")
    for name in FIELDS:
        assert f"  {name}=" in text, name


def test_cli_help_and_errors(tmp_path):
    proc = run_cli("lstm_adv.train", ["--help"], tmp_path)
    assert proc.returncode == 0 and "adv_emb_grad" in proc.stdout and "did" not in proc.stderr
    assert_one_line_error(run_cli("lstm_adv.train", ["epss=0.5"], tmp_path), "unknown key 'epss'", "did you mean eps")
    assert_one_line_error(run_cli("lstm_adv.train", ["alpha=2"], tmp_path), "alpha=2.0")
    assert not (tmp_path / "runs").exists()  # nothing written for a refused command

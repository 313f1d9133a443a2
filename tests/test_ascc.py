"""ASCC (Dong et al. 2021, ``ascc=1``) and synonym augmentation (``synonym_aug=p``) as training keys.

Small float64 models as tests/test_vat.py; the objective is built with `build_objective` directly
where the inner maximisation's result must be held at a given value.
"""

from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from conftest import TINY, assert_gradients_match_finite_differences, load_npz, merge, read_json, run_cli
from lstm_adv.config import parse_args, unused_keys
from lstm_adv.core.adversarial import build_objective
from lstm_adv.core.backend import get_mode
from lstm_adv.core.compiled import Model
from lstm_adv.core.model import emb_norm_weights, init_params, to_shared
from lstm_adv.common.utils import make_rng
from lstm_adv.data import prepare_data

N_WORDS, M = 12, 3
BASE = ["mode=C", "floatX=float64", "wdim=5", "hdim=4", f"n_words={N_WORDS}"]
COUNTS = [0, 0] + list(range(30, 10, -2)) + [3, 2, 1]


def _sets(with_substitutes=True):
    """Padded substitution sets (ids, member), shape (N_WORDS, M): word 3 has two substitutes, 6 one."""
    ids = np.repeat(np.arange(N_WORDS)[:, None], M, axis=1)
    member = np.zeros((N_WORDS, M), dtype=np.float32)
    member[:, 0] = 1
    if with_substitutes:
        ids[3, 1:], member[3, 1:] = (4, 5), 1
        ids[6, 1], member[6, 1] = 7, 1
    return ids, member


def _batch():
    seqs = [[3, 2, 6, 3], [6, 8, 3, 9, 10], [3, 11]]   # ragged: padding present; words with and without sets
    return prepare_data(seqs, [0, 1, 1], "float64")


def test_without_substitutes_ascc_is_the_clean_objective():
    # Dropout on: ASCC's passes share the clean branch's mask, so KL(p(x) || p(x)) is 0 and every
    # gradient is the clean one.
    clean = Model(parse_args(BASE + ["adv=0"]), N_WORDS)
    ascc = Model(parse_args(BASE + ["ascc=1", f"ascc_max_subs={M}", "adv_emb_grad=1"]), N_WORDS,
                 params=clean.get_params(), substitutions=_sets(with_substitutes=False))
    x, mask, y = _batch()
    a, c = ascc.inspect(x, mask, y, dropout=True), clean.inspect(x, mask, y, dropout=True)
    assert a["cost_clean"] == pytest.approx(c["cost_clean"], abs=1e-14) and abs(a["cost_adv"]) < 1e-15
    assert a["cost"] == pytest.approx(c["cost"], abs=1e-14) and not a["delta"].any()
    for name in c["grads"]:
        np.testing.assert_allclose(a["grads"][name], c["grads"][name], rtol=1e-10, atol=1e-14, err_msg=name)
    assert (a["weights"][..., 0] == 1).all()


def test_the_weights_stay_on_the_simplex_of_the_real_members():
    ids, member = _sets()
    model = Model(parse_args(BASE + ["ascc=1", f"ascc_max_subs={M}"]), N_WORDS, substitutions=(ids, member))
    x, mask, y = _batch()
    out = model.inspect(x, mask, y, dropout=True)
    w = out["weights"]
    assert w.shape == x.shape + (M,) and (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-12)
    assert not w[member[x] == 0].any()                # padding members weigh exactly 0
    alone = member[x].sum(axis=-1) == 1
    assert (w[alone][:, 0] == 1).all()                 # a word without substitutes: exactly itself
    assert not out["delta"][alone].any() and out["delta"][~alone].any()
    assert out["cost_adv"] > 0 and out["cost"] == pytest.approx(out["cost_clean"] + 4 * out["cost_adv"])


def _objective(cfg, **fixed):
    """The objective of ``cfg`` on jittered parameters, symbolic inputs; ``fixed``: ASCC's weights."""
    p = init_params(cfg, N_WORDS)
    rng = np.random.default_rng(1)
    tparams = to_shared(OrderedDict((k, v + 0.3 * rng.standard_normal(v.shape)) for k, v in p.items()))
    rngs = {k: pytensor.shared(make_rng(0, k)) for k in ("clean", "adv")}
    x, mask, y = pt.matrix("x", dtype="int64"), pt.matrix("mask", dtype="float64"), pt.vector("y", dtype="int64")
    ids, member = _sets()
    subs = (pt.constant(ids), pt.constant(member.astype("float64")))
    freqs = pt.constant(emb_norm_weights(COUNTS, N_WORDS)) if cfg.emb_norm else None
    obj = build_objective(tparams, x, mask, y, cfg, rngs, use_noise=False, freqs=freqs, subs=subs, ascc_fixed=fixed)
    return tparams, [x, mask, y], obj


def test_ascc_gradient_matches_finite_differences():
    # clip=0, adv_emb_grad=1, emb_norm=1: with the weights held at the inner maximisation's result
    # (as the graph holds them), the training gradient is the true gradient of CE + beta * KL,
    # through both sides of the KL, the substitutes' embeddings and the normalisation.
    cfg = parse_args(BASE + ["ascc=1", f"ascc_max_subs={M}", "clip=0", "adv_emb_grad=1", "emb_norm=1",
                             "ascc_beta=2", "reg=0.01", "ascc_k=4"])
    mode = get_mode(cfg)
    tparams, ins, obj = _objective(cfg)
    f1 = pytensor.function(ins, [obj.cost, obj.cost_adv, obj.weights] + list(obj.grads.values()), mode=mode)
    w_in = pt.tensor3("w", dtype="float64")
    tparams2, ins2, obj2 = _objective(cfg, weights=w_in)
    f2 = pytensor.function(ins2 + [w_in], [obj2.cost, obj2.cost_adv], mode=mode)
    for k, v in tparams.items():
        tparams2[k].set_value(v.get_value())

    x, mask, y = _batch()
    cost, kl, w, *grads = f1(x, mask, y)
    assert f2(x, mask, y, w)[0] == pytest.approx(cost, rel=1e-12)
    # The inner steps did their job: the KL at their weights exceeds the KL at the uniform ones.
    _, member = _sets()
    uniform = member[x] / member[x].sum(axis=-1, keepdims=True)
    assert kl > f2(x, mask, y, uniform)[1] > 0
    # Wemb: the rows of words with sets and of their substitutes (4, 5, 7 are in no review)
    E = cfg.wdim
    rows = {"Wemb": [i for i in range(N_WORDS * E) if i // E in (3, 4, 5, 7)]}
    assert_gradients_match_finite_differences(tparams2, grads, lambda: f2(x, mask, y, w)[0], rows)


def test_the_row_wise_update_covers_the_substitutes_rows():
    # adv_emb_grad=1: the gradient reaches the rows of substitutes absent from the batch (4, 5, 7);
    # the lazy update over the union equals the dense update of every row.
    cfg = parse_args(BASE + ["ascc=1", f"ascc_max_subs={M}", "adv_emb_grad=1", "ascc_k=2"])
    lazy, dense = (Model(cfg, N_WORDS, substitutions=_sets(), wemb_update=u) for u in ("lazy", "dense"))
    assert (lazy.wemb_update, dense.wemb_update) == ("lazy", "dense")
    rng = np.random.default_rng(0)
    words = [2, 3, 6, 8, 9, 10, 11]
    start = dense.get_params()["Wemb"]
    for t in range(20):
        seqs = [list(rng.choice(words, size=rng.integers(2, 6))) for _ in range(3)]
        x, mask, y = prepare_data(seqs, rng.integers(0, 2, size=3), "float64")
        assert lazy.train_step(x, mask, y)[0] == pytest.approx(dense.train_step(x, mask, y)[0], rel=1e-10), t
    end = dense.get_params()["Wemb"]
    assert not np.array_equal(end[[4, 5, 7]], start[[4, 5, 7]]) and np.array_equal(end[[0, 1]], start[[0, 1]])
    for k, v in dense.get_params().items():
        np.testing.assert_allclose(lazy.get_params()[k], v, rtol=1e-10, atol=1e-14, err_msg=k)


def _shared_inputs(f):
    return {v.name for v in f.maker.fgraph.inputs if hasattr(v, "get_value")}


@pytest.mark.slow
def test_ascc_branch_adds_no_parameters_and_trains():
    clean = Model(parse_args(BASE + ["adv=0"]), N_WORDS)
    ascc = Model(parse_args(BASE + ["ascc=1", f"ascc_max_subs={M}", "adv_emb_grad=1"]), N_WORDS,
                 substitutions=_sets())
    assert list(clean.tparams) == list(ascc.tparams) == ["Wemb", "lstm_W", "lstm_U", "lstm_b", "U", "b"]
    # Not even a dropout stream: every ASCC pass reuses the clean branch's mask.
    assert _shared_inputs(ascc.f_train) == _shared_inputs(clean.f_train)
    assert ascc.wemb_update == "lazy"   # over the batch's words and their substitutes
    x, mask, y = _batch()
    before = ascc.get_params()
    assert np.isfinite(ascc.train_step(x, mask, y)[0])
    after = ascc.get_params()
    assert all(np.isfinite(v).all() for v in after.values())
    assert not np.array_equal(before["Wemb"][5], after["Wemb"][5])   # a substitute absent from the batch


def test_a_trained_ascc_model_read_back_without_its_sets_predicts_and_refuses_to_train():
    """Prediction, attacks and the visualiser rebuild a run's Model without substitution sets: the
    clean graphs are the trained model's; training or inspecting it says what is missing."""
    cfg = parse_args(BASE + ["ascc=1", f"ascc_max_subs={M}"])
    params = init_params(cfg, N_WORDS)
    full, read_back = Model(cfg, N_WORDS, params, substitutions=_sets()), Model(cfg, N_WORDS, params)
    x, mask, y = _batch()
    np.testing.assert_array_equal(read_back.f_pred_prob(x, mask), full.f_pred_prob(x, mask))
    np.testing.assert_array_equal(read_back.f_grad_emb(x, mask, y)[0], full.f_grad_emb(x, mask, y)[0])
    for call in (lambda: read_back.train_step(x, mask, y), lambda: read_back.inspect(x, mask, y)):
        with pytest.raises(ValueError, match="built without its substitution sets"):
            call()


def test_ascc_keys_replace_the_papers_step():
    cfg = parse_args(["data=toy", "ascc=1"])
    assert cfg.adversarial and not parse_args(["data=toy"]).adversarial
    assert {"alpha", "eps", "adv_norm"} <= unused_keys(cfg.to_dict())
    assert "adv_emb_grad" not in unused_keys(cfg.to_dict())


@pytest.mark.slow
def test_ascc_and_augmentation_train_on_toy_end_to_end(tmp_path):
    for name, keys in (("ascc", ["ascc=1", "adv_emb_grad=1"]), ("aug", ["synonym_aug=0.5"])):
        run = tmp_path / name
        proc = run_cli("lstm_adv.train", merge(TINY, ["max_epochs=1"] + keys + [f"saveto={run}"]), tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        subs = read_json(run / "config.json")["substitutions"]
        assert subs["synonyms"] == "wordnet" and subs["words_with_substitutes"] > 0
        assert read_json(run / "metrics.json")["status"] == "ok"
    assert "objective ASCC (ascc_beta=4.0, ascc_k=10" in (tmp_path / "ascc" / "train.log").read_text()
    # The trained ASCC model predicts from text, is attacked by the command and, rerun with a word
    # attack it lacks, by training's finished-run path (each rebuilt its Model without the sets).
    from lstm_adv import load_run

    run = tmp_path / "ascc"
    assert load_run(run).predict_proba(["a good film", "bad"]).shape == (2, 2)
    proc = run_cli("lstm_adv.attack", [f"model={run}", "n=4", f"out={tmp_path / 'attack'}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    keys = merge(TINY, ["max_epochs=1", "ascc=1", "adv_emb_grad=1", "word_attack=pwws", "word_attack_size=4",
                        f"saveto={run}"])
    proc = run_cli("lstm_adv.train", keys, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_json(run / "metrics.json")["word_attack"]["pwws"]["n"] == 4


@pytest.mark.slow
def test_a_killed_run_with_augmentation_resumes_bit_for_bit(tmp_path):
    args = merge(TINY, ["max_epochs=3", "saveFreq=7", "validFreq=10", "synonym_aug=0.5"])
    ref = run_cli("lstm_adv.train", args + [f"saveto={tmp_path / 'ref'}"], tmp_path)
    assert ref.returncode == 0, ref.stderr[-3000:]
    run = tmp_path / "run"
    # SIGKILL at the end of update 17 (lstm_adv.common.faults), three updates after the checkpoint
    # at 14: the rerun redoes 15-17, whose replacements must be drawn again exactly.
    kill = run_cli("lstm_adv.train", args + [f"saveto={run}"], tmp_path, env={"LSTM_ADV_FAULT": "kill@update=17"})
    assert kill.returncode == -9, kill.stderr[-3000:]
    proc = run_cli("lstm_adv.train", args + [f"saveto={run}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed from the checkpoint at update 14 " in proc.stdout
    a, b = load_npz(tmp_path / "ref" / "params.npz"), load_npz(run / "params.npz")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # and the augmentation did change the training (else this test could not fail)
    plain = run_cli("lstm_adv.train", merge(args, ["synonym_aug=0"]) + [f"saveto={tmp_path / 'plain'}"], tmp_path)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert not np.array_equal(load_npz(tmp_path / "plain" / "params.npz")["U"], a["U"])

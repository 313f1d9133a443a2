"""Virtual adversarial training and the embedding normalisation (Miyato, Dai & Goodfellow 2017).

Small float64 models as tests/test_model.py; the VAT objective is built with `build_objective`
directly where its random direction must be fixed.
"""

import re
from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import disconnected_grad

from conftest import TINY, assert_gradients_match_finite_differences, load_npz, merge, read_json, run_cli
from lstm_adv.core.adversarial import build_objective, kl_divergence, power_iteration
from lstm_adv.config import parse_args
from lstm_adv.data import BatchStream, finalize_unlabelled, prepare_data
from lstm_adv.common.errors import UserError
from lstm_adv.core.backend import get_mode
from lstm_adv.core.compiled import Model
from lstm_adv.core.model import embed, emb_norm_weights, init_params, normalize_embeddings, to_shared
from lstm_adv.common.utils import make_rng

N_WORDS = 12
BASE = ["mode=C", "floatX=float64", "wdim=5", "hdim=4", f"n_words={N_WORDS}", "use_dropout=0"]
COUNTS = [0, 0] + list(range(30, 10, -2)) + [3, 2, 1]  # beyond n_words: UNK's mass


def _batch(rng):
    seqs = [list(rng.integers(2, N_WORDS, size=n)) for n in (3, 5, 2)]  # ragged: padding present
    return prepare_data(seqs, [0, 1, 1], "float64")


def _objective(cfg, **fixed):
    """The objective of ``cfg`` on jittered parameters, symbolic inputs and fixed VAT pieces."""
    p = init_params(cfg, N_WORDS)
    rng = np.random.default_rng(1)
    tparams = to_shared(OrderedDict((k, v + 0.3 * rng.standard_normal(v.shape)) for k, v in p.items()))
    rngs = {k: pytensor.shared(make_rng(0, k)) for k in ("clean", "adv", "vat")}
    x, mask, y = pt.matrix("x", dtype="int64"), pt.matrix("mask", dtype="float64"), pt.vector("y", dtype="int64")
    freqs = pt.constant(emb_norm_weights(COUNTS, N_WORDS)) if cfg.emb_norm else None
    obj = build_objective(tparams, x, mask, y, cfg, rngs, use_noise=bool(cfg.use_dropout), freqs=freqs,
                          vat_fixed=fixed)
    return tparams, [x, mask, y], obj


def test_vat_gradient_matches_finite_differences():
    # clip=0, adv_emb_grad=1, emb_norm=1: with p(e) and r_vadv held at their values, the training
    # gradient is the true gradient of L(e) + w * KL(p || p(e + r)), normalisation included.
    cfg = parse_args(BASE + ["vat=1", "eps=0.3", "clip=0", "adv_emb_grad=1", "emb_norm=1", "vat_weight=2",
                             "reg=0.01"])
    mode = get_mode(cfg)
    d0 = pt.tensor3("d0", dtype="float64")
    tparams, ins, obj = _objective(cfg, d0=d0)
    f1 = pytensor.function(ins + [d0], [obj.cost, obj.cost_adv, obj.delta, obj.vat_target] + list(obj.grads.values()),
                           mode=mode)
    delta, target = pt.tensor3("delta", dtype="float64"), pt.matrix("target_logits", dtype="float64")
    tparams2, ins2, obj2 = _objective(cfg, delta=delta, target=target)
    f2 = pytensor.function(ins2 + [delta, target], obj2.cost, mode=mode)
    for k, v in tparams.items():
        tparams2[k].set_value(v.get_value())

    x, mask, y = _batch(np.random.default_rng(0))
    d_start = np.random.default_rng(3).standard_normal(x.shape + (5,))
    cost, kl, r, p, *grads = f1(x, mask, y, d_start)
    assert kl > 0 and f2(x, mask, y, r, p) == pytest.approx(cost, rel=1e-12)
    np.testing.assert_allclose(np.sqrt((r ** 2).sum(axis=(0, 2))), 0.3)
    assert not r[mask == 0].any()
    assert_gradients_match_finite_differences(tparams2, grads, lambda: f2(x, mask, y, r, p))


def test_eps_zero_gives_zero_kl_and_no_vat_gradient():
    # Dropout on: the VAT passes share one mask, so KL(p(e) || p(e + 0)) is exactly 0.
    cfg = parse_args(BASE[:-1] + ["use_dropout=1", "adv=1", "eps=0", "vat=1", "adv_emb_grad=1", "clip=0"])
    tparams, ins, obj = _objective(cfg)
    clean = pytensor.grad(obj.cost_clean, list(tparams.values()))
    f = pytensor.function(ins, [obj.cost_adv, obj.delta] + list(obj.grads.values()) + clean, mode=get_mode(cfg))
    x, mask, y = _batch(np.random.default_rng(0))
    kl, delta, *rest = f(x, mask, y)
    n = len(tparams)
    assert abs(kl) < 1e-14 and not delta.any()
    for name, g, g_clean in zip(tparams, rest[:n], rest[n:]):
        np.testing.assert_allclose(g, g_clean, rtol=1e-10, atol=1e-14, err_msg=name)


def test_one_power_iteration_finds_the_direction_of_largest_kl():
    # A linear classifier on the mean embedding: logits depend on r only through a . r, with
    # a[t, b] = mask[t, b] * (W[:, 1] - W[:, 0]) / length_b, so KL grows fastest along +-a.
    rng = np.random.default_rng(0)
    T, B, E = 6, 4, 3
    W, b = rng.standard_normal((E, 2)), rng.standard_normal(2)
    e, m, r_in = pt.tensor3("e"), pt.matrix("m"), pt.tensor3("r")

    def logits(v):
        pooled = (v * m[:, :, None]).sum(axis=0) / m.sum(axis=0)[:, None]
        return pt.dot(pooled, W) + b

    target = disconnected_grad(logits(e))
    d0 = pt.tensor3("d0")
    direction = power_iteration(lambda r: kl_divergence(target, logits(e + r)), d0, m, 0.1, 1)
    f_dir = pytensor.function([e, m, d0], direction)
    f_kl = pytensor.function([e, m, r_in], kl_divergence(target, logits(e + r_in)))

    mask = np.ones((T, B))
    mask[4:, 1] = mask[2:, 3] = 0
    emb = rng.standard_normal((T, B, E))
    d = f_dir(emb, mask, rng.standard_normal((T, B, E)))
    a = mask[:, :, None] * (W[:, 1] - W[:, 0])[None, None, :] / mask.sum(axis=0)[None, :, None]
    cos = (d * a).sum(axis=(0, 2)) / np.sqrt((a ** 2).sum(axis=(0, 2)))
    np.testing.assert_allclose(np.abs(cos), 1.0, rtol=1e-9)
    np.testing.assert_allclose(np.sqrt((d ** 2).sum(axis=(0, 2))), 1.0)
    eps = 0.5
    best = f_kl(emb, mask, eps * d)
    for _ in range(20):
        u = rng.standard_normal((T, B, E)) * mask[:, :, None]
        u /= np.sqrt((u ** 2).sum(axis=(0, 2)))[None, :, None]
        assert f_kl(emb, mask, eps * u) < best


def _shared_inputs(f):
    return {v.name for v in f.maker.fgraph.inputs if hasattr(v, "get_value")}


@pytest.mark.slow
def test_vat_branch_adds_no_parameters():
    clean = Model(parse_args(BASE[:-1] + ["adv=0"]), N_WORDS)
    vat = Model(parse_args(BASE[:-1] + ["vat=1", "eps=0.5", "unlabelled=4", "emb_norm=1"]), N_WORDS,
                word_counts=COUNTS)
    assert list(clean.tparams) == list(vat.tparams) == ["Wemb", "lstm_W", "lstm_U", "lstm_b", "U", "b"]
    # Only the VAT branch's dropout draw and its random direction; the normalisation is a constant.
    assert _shared_inputs(vat.f_train) - _shared_inputs(clean.f_train) == {"rng_adv", "rng_vat"}
    x, mask, y = _batch(np.random.default_rng(0))
    xu, mu, _ = prepare_data([[2, 3, 4, 5, 6, 7, 8], [9]], [], "float64")  # longer than the labelled batch
    before = vat.get_params()
    assert np.isfinite(vat.train_step(x, mask, y, xu, mu)[0])
    after = vat.get_params()
    assert all(np.isfinite(v).all() for v in after.values()) and not np.array_equal(before["U"], after["U"])


def test_embedding_normalisation_and_its_weights():
    w = emb_norm_weights(COUNTS, N_WORDS)
    assert w[0] == 0 and w[1] == pytest.approx(6 / sum(COUNTS)) and w.sum() == pytest.approx(1)
    W = np.random.default_rng(0).random((N_WORDS, 5)) + 3.0
    Z = normalize_embeddings(W, w)
    np.testing.assert_allclose((w[:, None] * Z).sum(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose((w[:, None] * Z ** 2).sum(axis=0), 1, rtol=1e-3)  # var / (var + 1e-6)
    np.testing.assert_allclose(normalize_embeddings(7 * W, w), Z, rtol=1e-3)  # the scale is gone
    with pytest.raises(UserError, match="word_counts"):
        Model(parse_args(BASE + ["emb_norm=1"]), N_WORDS)


def test_embed_normalises_the_gathered_rows_as_the_whole_table():
    # embed() normalises only the rows a batch uses; values and Wemb's gradient (which reaches every
    # row through the mean and variance) must be those of normalising the whole table first.
    rng = np.random.default_rng(2)
    W = pytensor.shared(rng.normal(size=(N_WORDS, 5)) * 3 + 1, name="Wemb")
    w = pt.constant(emb_norm_weights(COUNTS, N_WORDS))
    x = pt.matrix("x", dtype="int64")
    G = pt.constant(rng.normal(size=(4, 3, 5)))
    xs = rng.integers(0, N_WORDS, size=(4, 3))
    mine = embed({"Wemb": W}, x, w)
    whole = normalize_embeddings(W, w)[x]
    f = pytensor.function([x], [mine, whole, pytensor.grad((mine * G).sum(), W), pytensor.grad((whole * G).sum(), W)],
                          mode=get_mode(parse_args(BASE)))
    e_mine, e_whole, g_mine, g_whole = f(xs)
    np.testing.assert_allclose(e_mine, e_whole, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g_mine, g_whole, rtol=1e-10, atol=1e-12)
    assert np.count_nonzero(np.abs(g_mine).sum(axis=1)) == N_WORDS   # every row, used or not


def test_unlabelled_keys_and_stream():
    with pytest.raises(UserError, match="vat=1"):
        parse_args(["unlabelled=10"])
    cfg = parse_args(["vat=1", "eps=1", "unlabelled=2", "maxlen=4", "n_words=5"])
    assert finalize_unlabelled([[2, 3, 4, 5], [2, 7], [], [3], [4]], cfg) == [[2, 1], [3]]
    a = BatchStream(5, 2, make_rng(0, "u"))
    seen = [a.next() for _ in range(4)]
    assert sorted(np.concatenate(seen[:3])) == list(range(5)) and len(seen[2]) == 1
    arrays, state = a.state()
    b = BatchStream(5, 2, make_rng(1, "other"))
    b.restore(arrays, state)
    for _ in range(7):
        np.testing.assert_array_equal(a.next(), b.next())


@pytest.mark.slow
def test_sigterm_and_resume_with_unlabelled_batches_is_bit_exact(tmp_path):
    import signal

    args = merge(TINY, ["max_epochs=3", "saveFreq=7", "validFreq=10", "vat=1", "eps=0.5", "unlabelled=50",
                        "emb_norm=1"])
    ref = run_cli("lstm_adv.train", args + [f"saveto={tmp_path / 'ref'}"], tmp_path)
    assert ref.returncode == 0, ref.stderr[-3000:]
    assert "unlabelled: 50 reviews in the VAT term" in ref.stdout
    run = tmp_path / "run"
    # SIGTERM at update 17 (lstm_adv.common.faults: at a chosen update, not after a sleep), between the
    # checkpoints at 14 and 21: the loop finishes the update and checkpoints there, mid-way through the
    # unlabelled stream.
    term = run_cli("lstm_adv.train", args + [f"saveto={run}"], tmp_path, env={"LSTM_ADV_FAULT": "term@update=17"})
    assert term.returncode == 128 + signal.SIGTERM, term.stderr[-3000:]
    proc = run_cli("lstm_adv.train", args + [f"saveto={run}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed from the checkpoint at update 17 " in proc.stdout
    a, b = load_npz(tmp_path / "ref" / "params.npz"), load_npz(run / "params.npz")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert read_json(run / "metrics.json")["valid_err"] == read_json(tmp_path / "ref" / "metrics.json")["valid_err"]
    assert len(read_json(run / "config.json")["word_counts"]) == read_json(run / "config.json")["n_words"] + 1


@pytest.mark.slow
def test_inspect_takes_the_unlabelled_batch_training_uses():
    # vat=1 unlabelled=N: the training gradient has the unlabelled batch's KL term; inspect gives
    # that gradient (its unlabelled batch changes it) and refuses to leave the batch out.
    vat = Model(parse_args(BASE[:-1] + ["vat=1", "eps=0.5", "unlabelled=4"]), N_WORDS)
    x, mask, y = _batch(np.random.default_rng(0))
    xu, mu, _ = prepare_data([[2, 3, 4, 5, 6, 7, 8], [9]], [], "float64")
    xu2, mu2, _ = prepare_data([[9, 8, 7], [6, 5, 4, 3]], [], "float64")
    with pytest.raises(ValueError, match="pass xu and mu"):
        vat.inspect(x, mask, y)
    a, b = vat.inspect(x, mask, y, xu=xu, mu=mu), vat.inspect(x, mask, y, xu=xu2, mu=mu2)
    assert a["cost_clean"] == b["cost_clean"] and a["cost"] != b["cost"]
    assert not np.array_equal(a["grads"]["lstm_U"], b["grads"]["lstm_U"])

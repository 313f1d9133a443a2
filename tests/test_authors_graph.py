"""The training gradients equal the authors' graph's, with gradient clipping active.

windweller/AdversarialNN (rnn.py, ``build_model``) built ONE cost,
``alpha * L_clean + (1 - alpha) * L_adv``, took ONE ``theano.grad`` of it, and put ``grad_clip``
on the embedded input (once, before both branches), on h and c at every LSTM step and on the
clean branch's LSTM outputs. The reference below is that graph, differentiated by PyTensor
(autodiff through the scans); `lstm_adv.core.adversarial.build_objective` must give the same numbers.
"""

import itertools

import numpy as np
import pytensor
import pytest
from pytensor.gradient import disconnected_grad, grad_clip

from lstm_adv.core.adversarial import perturbation
from lstm_adv.config import parse_args
from lstm_adv.core.compiled import Model
from lstm_adv.core.model import classify, embed, nll

from test_model import N_WORDS, batch

BASE = ["mode=C", "floatX=float64", "wdim=5", "hdim=4", f"n_words={N_WORDS}", "use_dropout=0", "eps=0.3"]


def model_for(args, scale=1.5):
    m = Model(parse_args(BASE + list(args)), N_WORDS)
    rng = np.random.default_rng(3)
    # Parameters well away from the tiny init, so gradients are large enough to be clipped.
    m.set_params({k: v + scale * rng.standard_normal(v.shape) for k, v in m.get_params().items()})
    return m


def authors_gradients(m, x, mask, y, direction_from="L_clean"):
    """The authors' graph; the perturbation follows dL_clean/de (or d(alpha L_clean)/de)."""
    cfg, tp = m.cfg, m.tparams
    with pytensor.config.change_flags(floatX=cfg.floatX):
        xs, ms, ys = m.x, m.mask, m.y
        emb = embed(tp, xs)
        if cfg.clip > 0:
            emb = grad_clip(emb, -cfg.clip, cfg.clip)
        probs, _ = classify(tp, emb, ms, cfg, clip_output=True, backward="autodiff")
        cost_clean = nll(probs, ys)
        scale = 1.0 if direction_from == "L_clean" else cfg.alpha
        g = pytensor.grad(scale * cost_clean, emb)
        delta = perturbation(g, ms, float(cfg.eps), cfg.adv_norm)
        adv = disconnected_grad(emb + delta) if cfg.adv_emb_grad == 0 else emb + disconnected_grad(delta)
        probs_adv, _ = classify(tp, adv, ms, cfg, backward="autodiff")
        cost = cfg.alpha * cost_clean + (1 - cfg.alpha) * nll(probs_adv, ys)
        grads = pytensor.grad(cost, list(tp.values()))
        f = pytensor.function([xs, ms, ys], [cost, delta] + grads, mode=m.mode, on_unused_input="ignore")
    out = f(x, mask, y)
    return out[0], out[1], dict(zip(tp, out[2:]))


def assert_same_as_reference(ours, cost, delta, ref):
    """Our objective (`Model.inspect`) equals the reference graph's cost, step and gradients to 1e-10."""
    assert ours["cost"] == pytest.approx(float(cost), rel=1e-12)
    np.testing.assert_allclose(ours["delta"], delta, rtol=1e-10, atol=1e-12)
    for name, g in ref.items():
        np.testing.assert_allclose(ours["grads"][name], g, rtol=1e-10, atol=1e-12, err_msg=name)


# The fast tier (-m "not slow") keeps the paper's setting and the one that differs from it on
# every axis; each case compiles two models, so the other six are slow.
@pytest.mark.parametrize("encoder, norm, emb_grad", [
    c if c in {("lstm", "sign", 0), ("rnn", "l2", 1)} else pytest.param(*c, marks=pytest.mark.slow)
    for c in itertools.product(["lstm", "rnn"], ["sign", "l2"], [0, 1])])
def test_training_gradients_equal_the_authors_joint_cost_with_clipping(encoder, norm, emb_grad):
    m = model_for([f"encoder={encoder}", f"adv_norm={norm}", f"adv_emb_grad={emb_grad}", "clip=0.01",
                   "alpha=0.5"])
    x, mask, y = batch(np.random.default_rng(0))
    ours = m.inspect(x, mask, y)
    cost, delta, ref = authors_gradients(m, x, mask, y, direction_from="alpha*L_clean")
    assert_same_as_reference(ours, cost, delta, ref)
    # The clip is really active: without it the reference's gradients are different.
    m_free = Model(parse_args(BASE + [f"encoder={encoder}", f"adv_norm={norm}", f"adv_emb_grad={emb_grad}",
                                      "clip=0", "alpha=0.5"]), N_WORDS)
    m_free.set_params(m.get_params())
    free = m_free.inspect(x, mask, y)["grads"]
    clipped = sum(not np.allclose(free[k], ref[k], rtol=1e-6) for k in ref)
    assert clipped >= 2


def test_with_clip_0_the_training_gradients_are_grad_of_the_paper_cost():
    """`build_objective` is the paper's cost and `training_grads` plain ``pytensor.grad`` of it: with
    clip=0 (no clip in either graph) they equal the reference's gradients, and no clip is left in
    the compiled update (the LSTM backward's clip is 0)."""
    from lstm_adv.core.sequence_ops import LSTMSeqGrad

    m = model_for(["clip=0", "alpha=0.5"])
    x, mask, y = batch(np.random.default_rng(0))
    cost, delta, ref = authors_gradients(m, x, mask, y, direction_from="alpha*L_clean")
    assert_same_as_reference(m.inspect(x, mask, y), cost, delta, ref)
    seq_grads = [n.op for n in m.f_train.maker.fgraph.toposort() if isinstance(n.op, LSTMSeqGrad)]
    assert len(seq_grads) == 2 and all(op.clip == 0 for op in seq_grads)


@pytest.mark.parametrize("encoder, norm, emb_grad", [
    c if c in {("lstm", "l2", 0), ("rnn", "sign", 1)} else pytest.param(*c, marks=pytest.mark.slow)
    for c in itertools.product(["lstm", "rnn"], ["sign", "l2"], [0, 1])])
def test_adv_grad_separate_is_the_authors_graph_exactly_with_clipping(encoder, norm, emb_grad):
    """adv_grad=separate: the step from L_clean's own clipped gradient, as the authors' code, to 1e-10."""
    keys = [f"encoder={encoder}", f"adv_norm={norm}", f"adv_emb_grad={emb_grad}", "clip=0.01", "alpha=0.5"]
    m = model_for(keys + ["adv_grad=separate"])
    x, mask, y = batch(np.random.default_rng(0))
    ours = m.inspect(x, mask, y)
    cost, delta, ref = authors_gradients(m, x, mask, y, direction_from="L_clean")
    assert_same_as_reference(ours, cost, delta, ref)
    # The clip is really active: unclipped, the gradients differ; and the L2 step of the default
    # (adv_grad=joint, clipped in effect at clip / alpha) is another one. (The sign step of these
    # small cases happens to be the same under both.)
    free = model_for([k for k in keys if not k.startswith("clip=")] + ["clip=0", "adv_grad=separate"])
    free.set_params(m.get_params())
    assert sum(not np.allclose(free.inspect(x, mask, y)["grads"][k], ref[k], rtol=1e-6) for k in ref) >= 2
    if norm == "l2":
        joint = model_for(keys)
        joint.set_params(m.get_params())
        assert not np.allclose(joint.inspect(x, mask, y)["delta"], delta, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("norm", ["sign", pytest.param("l2", marks=pytest.mark.slow)])
def test_perturbation_direction_from_weighted_clean_cost(norm):
    # Our one backward pass takes the perturbation's direction from alpha * L_clean; the authors
    # took it from L_clean. Without clipping the two are the same step exactly.
    m = model_for(["clip=0", f"adv_norm={norm}", "alpha=0.3"])
    x, mask, y = batch(np.random.default_rng(0))
    _, delta_authors, ref = authors_gradients(m, x, mask, y, direction_from="L_clean")
    ours = m.inspect(x, mask, y)
    # l2: the 1e-12 that guards g / ||g|| weighs more against the smaller norm of alpha * g.
    rtol = 1e-10 if norm == "sign" else 1e-8
    np.testing.assert_allclose(ours["delta"], delta_authors, rtol=rtol, atol=1e-12)
    for name, g in ref.items():
        np.testing.assert_allclose(ours["grads"][name], g, rtol=rtol, atol=1e-12, err_msg=name)


@pytest.mark.slow
def test_alpha_zero_still_perturbs():
    # alpha=0 gives the clean term no weight, but the step still follows dL_clean/de.
    m = model_for(["clip=0", "alpha=0"])
    x, mask, y = batch(np.random.default_rng(0))
    _, delta, ref = authors_gradients(m, x, mask, y, direction_from="L_clean")
    ours = m.inspect(x, mask, y)
    assert np.abs(ours["delta"]).max() == pytest.approx(0.3)
    np.testing.assert_allclose(ours["delta"], delta, rtol=1e-10, atol=1e-12)
    for name, g in ref.items():
        np.testing.assert_allclose(ours["grads"][name], g, rtol=1e-10, atol=1e-12, err_msg=name)

"""The model and the adversarial objective on tiny synthetic batches (float64, dropout off)."""

import numpy as np
import pytest

from lstm_adv.core.adversarial import perturbation
from lstm_adv.config import parse_args
from lstm_adv.data import prepare_data
from lstm_adv.core.compiled import Model

N_WORDS = 12
BASE = ["mode=C", "floatX=float64", "wdim=5", "hdim=4", f"n_words={N_WORDS}", "use_dropout=0"]


def batch(rng):
    seqs = [list(rng.integers(2, N_WORDS, size=n)) for n in (3, 5, 2)]  # ragged: padding present
    return prepare_data(seqs, [0, 1, 1], "float64")


def model_for(*args, jitter=0.3):
    """A model whose parameters are moved away from the tiny init so gradients are not ~0."""
    m = Model(parse_args(BASE + list(args)), N_WORDS)
    rng = np.random.default_rng(1)
    m.set_params({k: v + jitter * rng.standard_normal(v.shape) for k, v in m.get_params().items()})
    return m


def numeric_grad(m, x, mask, y, name, n_entries=6, h=1e-6):
    """Central differences of the objective for a few random entries of one parameter."""
    p = m.get_params()
    rng = np.random.default_rng(2)
    flat = rng.choice(p[name].size, size=min(n_entries, p[name].size), replace=False)
    out = {}
    for f in flat:
        i = np.unravel_index(f, p[name].shape)
        vals = []
        for s in (h, -h):
            q = {k: v.copy() for k, v in p.items()}
            q[name][i] += s
            m.set_params(q)
            vals.append(m.inspect(x, mask, y)["cost"])
        out[i] = (vals[0] - vals[1]) / (2 * h)
    m.set_params(p)
    return out


@pytest.mark.parametrize("encoder", ["lstm", "rnn"])
@pytest.mark.parametrize("adv", ["adv=0", "adv=1"])
def test_gradient_matches_finite_differences(encoder, adv):
    # clip=0: grad_clip deliberately changes gradients. adv_emb_grad=1 makes every parameter's
    # gradient the true one (sign(g) is locally constant, so holding delta fixed is exact).
    m = model_for(f"encoder={encoder}", adv, "eps=0.3", "clip=0", "adv_emb_grad=1", "reg=0.01")
    x, mask, y = batch(np.random.default_rng(0))
    grads = m.inspect(x, mask, y)["grads"]
    for name in m.tparams:
        for i, num in numeric_grad(m, x, mask, y, name).items():
            assert grads[name][i] == pytest.approx(num, rel=1e-4, abs=1e-8), (name, i)


def test_perturbation_is_eps_sign_and_zero_on_padding():
    m = model_for("adv=1", "eps=0.3")
    x, mask, y = batch(np.random.default_rng(0))
    out = m.inspect(x, mask, y)
    grad, _ = m.f_grad_emb(x, mask, y)  # same clean cost, dropout off
    delta = out["delta"]
    assert delta.shape == grad.shape == (x.shape[0], x.shape[1], 5)
    np.testing.assert_allclose(delta, 0.3 * np.sign(grad) * mask[:, :, None])
    assert np.all(delta[mask == 0] == 0) and (mask == 0).any()
    assert set(np.unique(np.abs(delta[mask == 1]))) <= {0.0, 0.3}


def test_predicted_label_perturbation_flips_where_the_prediction_is_wrong():
    # Two classes: the loss of the other class has the opposite input gradient, so adv_label=predicted
    # gives the paper's delta on reviews the model gets right and minus it on the others.
    x, mask, y = batch(np.random.default_rng(0))
    true = model_for("adv=1", "eps=0.3", "clip=0").inspect(x, mask, y)
    m = model_for("adv=1", "eps=0.3", "clip=0", "adv_label=predicted")
    out = m.inspect(x, mask, y)
    pred = m.f_prob_emb(m.f_embed(x), mask).argmax(axis=1)
    agree = np.where(pred == y, 1.0, -1.0)
    assert (agree == 1).any() and (agree == -1).any()  # both cases occur in this batch
    np.testing.assert_array_equal(out["delta"], true["delta"] * agree[None, :, None])
    assert out["cost_clean"] == true["cost_clean"]
    # No label in the perturbation: other labels, same delta.
    np.testing.assert_array_equal(m.inspect(x, mask, 1 - y)["delta"], out["delta"])


def test_eps_zero_makes_adversarial_cost_equal_clean():
    m = model_for("adv=1", "eps=0")
    x, mask, y = batch(np.random.default_rng(0))
    out = m.inspect(x, mask, y)
    assert out["cost_adv"] == pytest.approx(out["cost_clean"], rel=1e-12)
    assert out["cost"] == pytest.approx(out["cost_clean"], rel=1e-12)
    assert not out["delta"].any()


def test_adv_emb_grad_controls_what_reaches_wemb():
    x, mask, y = batch(np.random.default_rng(0))
    clean = model_for("adv=0").inspect(x, mask, y)
    paper = model_for("adv=1", "eps=0.3", "alpha=0.4", "adv_emb_grad=0").inspect(x, mask, y)
    both = model_for("adv=1", "eps=0.3", "alpha=0.4", "adv_emb_grad=1").inspect(x, mask, y)
    np.testing.assert_allclose(paper["grads"]["Wemb"], 0.4 * clean["grads"]["Wemb"], rtol=1e-10, atol=1e-14)
    assert not np.allclose(both["grads"]["Wemb"], 0.4 * clean["grads"]["Wemb"])
    # Other parameters learn from both terms either way.
    assert not np.allclose(paper["grads"]["lstm_U"], 0.4 * clean["grads"]["lstm_U"])


def _shared_inputs(f):
    return {v.name for v in f.maker.fgraph.inputs if hasattr(v, "get_value")}


@pytest.mark.slow
def test_adversarial_branch_adds_no_parameters():
    clean = Model(parse_args(BASE[:-1] + ["adv=0"]), N_WORDS)
    adv = Model(parse_args(BASE[:-1] + ["adv=1", "eps=0.5"]), N_WORDS)
    assert list(clean.tparams) == list(adv.tparams) == ["Wemb", "lstm_W", "lstm_U", "lstm_b", "U", "b"]
    extra = _shared_inputs(adv.f_train) - _shared_inputs(clean.f_train)
    assert extra == {"rng_adv"}  # only the adversarial branch's own dropout draw


@pytest.mark.slow
def test_each_branch_draws_its_own_dropout_mask():
    m = Model(parse_args(BASE[:-1] + ["adv=1", "eps=0", "use_dropout=1"]), N_WORDS)
    x, mask, y = batch(np.random.default_rng(0))
    out = m.inspect(x, mask, y, dropout=True)
    # eps=0: the branches differ only by their dropout masks.
    assert out["cost_adv"] != pytest.approx(out["cost_clean"], rel=1e-9)
    off = m.inspect(x, mask, y, dropout=False)
    assert off["cost_adv"] == pytest.approx(off["cost_clean"], rel=1e-12)


def test_perturbation_function_validates_eagerly():
    g = np.random.default_rng(0).standard_normal((4, 3, 2))
    mask = np.ones((4, 3))
    mask[2:, 0] = 0
    with pytest.raises(ValueError):
        perturbation(g, mask, -0.1)
    with pytest.raises(ValueError):
        perturbation(g, mask, 0.1, norm="l1")
    with pytest.raises(ValueError):
        perturbation(g[0], mask, 0.1)
    d = perturbation(g, mask, 0.7, norm="l2")
    np.testing.assert_allclose(np.sqrt((d ** 2).sum(axis=(0, 2))), 0.7)  # per review
    assert not d[2:, 0].any()
    np.testing.assert_allclose(perturbation(g, mask, 0.7), 0.7 * np.sign(g) * mask[:, :, None])


def test_softmax_is_row_wise():
    m = model_for("adv=0")
    x, mask, _ = batch(np.random.default_rng(0))
    probs = m.f_pred_prob(x, mask)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)

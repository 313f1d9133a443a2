"""Attack evaluation (`lstm_adv.evaluate`): no label leaking, and the old true-label figures kept."""

import numpy as np
import pytest

from lstm_adv.core.adversarial import perturbation
from lstm_adv.data import Split, minibatches, prepare_data
from lstm_adv.evaluate import ATTACKS, attack_errors, attack_report, pred_error

from test_model import N_WORDS, model_for

STRENGTHS = (0.01, 0.1, 1.0, 10.0)


def random_split(n=40, seed=0):
    rng = np.random.default_rng(seed)
    seqs = [list(rng.integers(2, N_WORDS, size=int(rng.integers(2, 9)))) for _ in range(n)]
    return Split(seqs, rng.integers(0, 2, size=n).astype(np.int64))


def test_constant_model_has_robust_error_equal_to_clean_error_under_every_attack():
    m = model_for("adv=0")
    p = m.get_params()
    p["U"][:] = 0.0          # logits = b whatever the input: the model predicts class 0 always
    p["b"][:] = [2.0, 0.0]
    m.set_params(p)
    split = random_split()
    rep = attack_report(m, split, 16, STRENGTHS, "sign", k=3)
    clean = pred_error(m, split, 16)
    assert rep["clean_err"] == clean == pytest.approx(np.mean(split.labels != 0))
    for name in ATTACKS:
        for s in map(str, STRENGTHS):
            assert rep[name][s]["robust_err"] == clean, (name, s)
            assert rep[name][s]["adv_err"] == clean, (name, s)


def test_predicted_label_attack_does_not_use_the_true_label():
    m = model_for("adv=0")
    split = random_split()
    flipped = Split(split.seqs, 1 - split.labels)
    a = attack_report(m, split, 16, STRENGTHS, "sign", k=2)
    b = attack_report(m, flipped, 16, STRENGTHS, "sign", k=2)
    for name in ("onestep_pred", "iter_sign_pred", "iter_l2_pred"):
        for s in map(str, STRENGTHS):
            # Same perturbations whatever the labels: each review's perturbed prediction is the
            # same, so its adversarial error under the flipped labels is 1 - that under the true ones.
            assert a[name][s]["adv_err"] == pytest.approx(1 - b[name][s]["adv_err"]), (name, s)


def test_true_label_attack_reproduces_the_previous_figures():
    m = model_for("adv=0")
    split = random_split()
    wrong, robust = np.zeros(len(STRENGTHS)), np.zeros(len(STRENGTHS))
    for idx in minibatches(len(split), 16):   # the previous implementation, written out
        x, mask, y = prepare_data([split.seqs[i] for i in idx], split.labels[idx], "float64")
        grad, emb = m.f_grad_emb(x, mask, y)
        clean_wrong = m.f_prob_emb(emb, mask).argmax(axis=1) != y
        for k, s in enumerate(STRENGTHS):
            adv_wrong = m.f_prob_emb(emb + perturbation(grad, mask, s, "sign"), mask).argmax(axis=1) != y
            wrong[k] += adv_wrong.sum()
            robust[k] += (adv_wrong | clean_wrong).sum()   # the module docstring's robust error
    old = {str(s): w / len(split) for s, w in zip(STRENGTHS, wrong)}
    assert attack_errors(m, split, 16, STRENGTHS, "sign") == old
    assert attack_report(m, split, 16, STRENGTHS, "sign", k=0)["onestep_true"] == {
        str(s): {"adv_err": old[str(s)], "robust_err": r / len(split)} for s, r in zip(STRENGTHS, robust)}
    assert (robust > pred_error(m, split, 16) * len(split)).any()   # the attack breaks some right reviews


def test_robust_error_counts_reviews_wrong_before_or_after_the_attack():
    # onestep_pred pushes each review away from the model's own prediction, so a review the model
    # gets wrong can come out right: its adversarial error falls below the robust error, which
    # still counts it (clean or perturbed prediction wrong). jitter=1: a model whose predictions
    # move under these strengths (at 0.3 they hardly do).
    m = model_for("adv=0", jitter=1.0)
    split = random_split()
    adv, robust = np.zeros(len(STRENGTHS)), np.zeros(len(STRENGTHS))
    for idx in minibatches(len(split), 16):
        x, mask, y = prepare_data([split.seqs[i] for i in idx], split.labels[idx], "float64")
        emb = m.f_embed(x)
        pred = m.f_prob_emb(emb, mask).argmax(axis=1)
        grad = m.f_grad_prob_emb(emb, mask, pred)[0]
        for k, s in enumerate(STRENGTHS):
            adv_wrong = m.f_prob_emb(emb + perturbation(grad, mask, s, "sign"), mask).argmax(axis=1) != y
            adv[k] += adv_wrong.sum()
            robust[k] += (adv_wrong | (pred != y)).sum()
    rep = attack_report(m, split, 16, STRENGTHS, "sign", k=0)
    assert rep["onestep_pred"] == {str(s): {"adv_err": a / len(split), "robust_err": r / len(split)}
                                   for s, a, r in zip(STRENGTHS, adv, robust)}
    assert (robust > adv).any(), (adv, robust)   # the case arises here: the comparison above tells them apart


def test_iterative_attack_stays_in_its_ball():
    from lstm_adv.evaluate import _project
    rng = np.random.default_rng(0)
    d = rng.standard_normal((5, 3, 4))
    mask = np.ones((5, 3))
    mask[3:, 1] = 0
    assert np.abs(_project(d, mask, 0.2, "sign")).max() == pytest.approx(0.2)
    norms = np.sqrt((_project(d, mask, 0.2, "l2") ** 2).sum(axis=(0, 2)))
    np.testing.assert_allclose(norms, 0.2)
    assert not _project(d, mask, 0.2, "l2")[3:, 1].any()


def test_iterative_attack_equals_the_previous_implementation():
    # The probabilities at each iterate now come with its gradient (one forward pass saved per
    # step); the broken reviews must be exactly those of the version with a separate forward pass.
    from lstm_adv.evaluate import _project, iterative_attack

    def previous(model, emb, mask, labels, s, k, norm):
        delta = np.zeros_like(emb)
        broken = np.zeros(len(labels), dtype=bool)
        for _ in range(k):
            grad, _ = model.f_grad_prob_emb((emb + delta).astype(emb.dtype), mask, labels)
            delta = _project(delta + perturbation(grad, mask, s / k, norm), mask, s, norm)
            broken |= model.f_prob_emb((emb + delta).astype(emb.dtype), mask).argmax(axis=1) != labels
            if broken.all():
                break
        return broken

    m = model_for("adv=0")
    split = random_split(n=48, seed=3)
    n_broken = 0
    for idx in minibatches(len(split), 16):
        x, mask, y = prepare_data([split.seqs[i] for i in idx], split.labels[idx], "float64")
        emb = m.f_embed(x)
        pred = m.f_prob_emb(emb, mask).argmax(axis=1)
        for s in (0.03, 0.3, 3.0):
            for norm in ("sign", "l2"):
                new = iterative_attack(m, emb, mask, pred, s, 4, norm)
                assert np.array_equal(new, previous(m, emb, mask, pred, s, 4, norm)), (s, norm)
                n_broken += int(new.sum())
    assert n_broken > 0


def test_relative_strengths_are_multiples_of_the_embedded_scale():
    m = model_for("adv=0")
    split = random_split()
    rel = attack_report(m, split, 16, (0.5, 2.0), "sign", k=2, relative=True)
    scale = rel["emb_median_abs"]
    # The scale of what the attack moves: the embedded tokens, each as often as it occurs.
    tokens = np.concatenate([np.asarray(s) for s in split.seqs])
    assert scale == pytest.approx(np.median(np.abs(m.tparams["Wemb"].get_value()[tokens])))
    assert rel["strength_units"] == "x emb_median_abs"
    assert rel["radius"] == {"0.5": pytest.approx(0.5 * scale), "2.0": pytest.approx(2 * scale)}
    absolute = attack_report(m, split, 16, (0.5 * scale, 2 * scale), "sign", k=2)
    assert absolute["strength_units"] == "absolute" and absolute["emb_median_abs"] == scale
    for name in ATTACKS:
        assert list(rel[name].values()) == list(absolute[name].values()), name
    # Scaling the embeddings up scales the relative radii with them: the same relative attack.
    p = m.get_params()
    p["Wemb"] *= 10
    m.set_params(p)
    assert attack_report(m, split, 16, (0.5,), "sign", k=0, relative=True)["radius"]["0.5"] == pytest.approx(5 * scale)

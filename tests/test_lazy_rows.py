"""adadelta's lazy row update of Wemb (`lstm_adv.core.optimizers.LazyRows`) against the dense update.

Two models from the same start and seed (same dropout draws) take the same few hundred toy
updates, in float64, one updating Wemb by rows (decays of untouched rows applied later as
rho**k), the other every row every update (the tutorial). Parameters, the optimizer state with
the pending decays applied (`Model.dense_opt_state`) and the costs agree to 1e-10.
Checkpoint/resume: reading the state changes nothing, and a model rebuilt from a mid-run
`get_params`/`get_opt_state` continues bit for bit as the original (`tests/test_resume_identity.py`
compares whole runs with and without checkpoints on a vocabulary whose rows wait).
"""

import copy

import numpy as np
import pytest

from conftest import merge
from lstm_adv.config import parse_args
from lstm_adv.data import prepare_data
from lstm_adv.core.compiled import Model

N_WORDS = 200
BASE = ["wdim=8", "hdim=8", f"n_words={N_WORDS}", "mode=C", "floatX=float64", "clip=0.05"]


def _batches(n, seed=0):
    """Ragged batches over a Zipf-like vocabulary: frequent rows every update, rare ones after long gaps."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, N_WORDS - 1)
    p /= p.sum()
    out = []
    for _ in range(n):
        seqs = [list(rng.choice(np.arange(2, N_WORDS), size=rng.integers(3, 9), p=p)) for _ in range(4)]
        out.append(prepare_data(seqs, rng.integers(0, 2, size=4), "float64"))
    return out


def _pair(*extra):
    cfg = parse_args(merge(BASE, list(extra)))
    lazy, dense = Model(cfg, N_WORDS, wemb_update="lazy"), Model(cfg, N_WORDS, wemb_update="dense")
    assert (lazy.wemb_update, dense.wemb_update) == ("lazy", "dense")
    return lazy, dense


@pytest.mark.parametrize("extra", [("eps=0.3",)] + [pytest.param(e, marks=pytest.mark.slow) for e in
                                                    (("eps=0",), ("eps=0.3", "adv_emb_grad=1", "adv_norm=l2"))])
def test_lazy_equals_dense(extra):
    lazy, dense = _pair(*extra)
    batches = _batches(300)
    seen_gap = 0
    last = {}
    for t, (x, mask, y) in enumerate(batches):
        for w in np.unique(x):
            seen_gap = max(seen_gap, t - last.get(w, 0))
            last[w] = t
        c_lazy, c_dense = float(lazy.f_train(x, mask, y)), float(dense.f_train(x, mask, y))
        assert c_lazy == pytest.approx(c_dense, rel=1e-10, abs=1e-12), t
        if t == 150:  # a mid-run read (a checkpoint) changes nothing
            lazy.get_opt_state()
    assert seen_gap > 50  # some rows really waited many updates
    for k, v in dense.get_params().items():
        np.testing.assert_allclose(lazy.get_params()[k], v, rtol=1e-10, atol=1e-14, err_msg=k)
    for k, v in dense.get_opt_state().items():
        np.testing.assert_allclose(lazy.dense_opt_state()[k], v, rtol=1e-10, atol=1e-20, err_msg=k)


def test_untouched_rows_do_not_move_and_reading_the_state_changes_nothing():
    lazy, _ = _pair("eps=0.3")
    x, mask, y = _batches(1)[0]
    w0 = lazy.get_params()["Wemb"]
    for _ in range(3):
        lazy.f_train(x, mask, y)
    w = lazy.get_params()["Wemb"]
    untouched = np.setdiff1d(np.arange(N_WORDS), np.unique(x))
    assert np.array_equal(w[untouched], w0[untouched])
    assert not np.array_equal(w[np.unique(x)], w0[np.unique(x)])
    a = lazy.get_opt_state()
    assert {"Wemb_lazy_count", "Wemb_lazy_last"} <= set(a) and int(a["Wemb_lazy_count"]) == 3
    lazy.dense_opt_state(), lazy.get_params()
    b = lazy.get_opt_state()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_resume_from_a_saved_state_is_bit_exact():
    cfg = parse_args(merge(BASE, ["eps=0.3"]))
    batches = _batches(80, seed=1)
    ref = Model(cfg, N_WORDS, wemb_update="lazy")
    for x, mask, y in batches[:40]:
        ref.f_train(x, mask, y)
    params, opt = ref.get_params(), ref.get_opt_state()  # what a checkpoint saves
    rngs = {k: v.get_value().bit_generator.state for k, v in ref.rngs.items()}
    for x, mask, y in batches[40:]:
        ref.f_train(x, mask, y)

    resumed = Model(cfg, N_WORDS, wemb_update="lazy")
    resumed.set_params(params)
    resumed.set_opt_state(opt)
    for k, v in resumed.rngs.items():
        g = np.random.default_rng()
        g.bit_generator.state = rngs[k]
        v.set_value(g)
    for x, mask, y in batches[40:]:
        resumed.f_train(x, mask, y)
    for k, v in ref.get_params().items():
        assert np.array_equal(resumed.get_params()[k], v), k
    for k, v in ref.get_opt_state().items():
        assert np.array_equal(resumed.get_opt_state()[k], v), k


def test_other_optimizers_stay_dense():
    m = Model(parse_args(merge(BASE, ["optimizer=rmsprop"])), N_WORDS, wemb_update="lazy")
    assert m.wemb_update == "dense" and not m.opt_state.lazy


def test_jax_stays_dense():
    # adadelta (lazy on mode C, `test_untouched_rows_do_not_move_and_reading_the_state_changes_nothing`) under
    # JAX: its functions need static shapes, so Wemb is updated densely even when lazy is asked.
    # Built, not run: compiling a JAX model after this process trained a FAST_COMPILE one fails
    # (tests/conftest.py, JAX_FIRST); tests/test_jax.py trains under JAX.
    pytest.importorskip("jax", reason="mode=JAX needs jax")
    m = Model(parse_args(merge(BASE, ["mode=JAX"])), N_WORDS, wemb_update="lazy")
    assert m.mode_name == "JAX" and m.cfg.optimizer == "adadelta"
    assert m.wemb_update == "dense" and not m.opt_state.lazy
    # No lazy-row state among the variables f_train updates (LazyRows' counters, Wemb_lazy_*).
    _, _, updates = m._train_spec
    assert not [k.name for k, _ in updates if "lazy" in (k.name or "")]


@pytest.mark.slow
def test_rows_used_at_every_update_get_the_dense_bits():
    # The same batch again and again: no row ever waits (decay 1), so lazy is dense bit for bit.
    lazy, dense = _pair("eps=0.3")
    x, mask, y = _batches(1, seed=2)[0]
    for _ in range(5):
        assert float(lazy.f_train(x, mask, y)) == float(dense.f_train(x, mask, y))
    for k, v in dense.get_params().items():
        assert np.array_equal(lazy.get_params()[k], v), k
    for k, v in dense.get_opt_state().items():
        assert np.array_equal(lazy.dense_opt_state()[k], v), k


def test_a_lazy_state_loaded_into_a_dense_model_gets_its_pending_decays():
    # A checkpoint of a lazy run resumed on a backend that updates Wemb densely (mode=JAX): the
    # counters it holds are applied to the accumulators on loading, never dropped.
    lazy, dense = _pair("eps=0.3")
    batches = _batches(60, seed=3)
    for x, mask, y in batches[:30]:
        lazy.f_train(x, mask, y)
    saved = lazy.get_opt_state()
    assert (saved["Wemb_lazy_last"] < saved["Wemb_lazy_count"]).any()   # some rows wait
    dense.set_params(lazy.get_params())
    dense.set_opt_state(saved)
    for k, v in dense.rngs.items():   # the same dropout draws from here on
        v.set_value(copy.deepcopy(lazy.rngs[k].get_value()))
    for k, v in lazy.dense_opt_state().items():
        assert np.array_equal(dense.get_opt_state()[k], v), k
    for x, mask, y in batches[30:]:
        assert float(lazy.f_train(x, mask, y)) == pytest.approx(float(dense.f_train(x, mask, y)), rel=1e-10)


def test_one_rule_decides_lazy_rows():
    from lstm_adv.core.compiled import lazy_wemb_rows

    def lazy(*extra, mode="C"):
        return lazy_wemb_rows(parse_args(merge(BASE, list(extra))), mode)

    assert lazy() and lazy(mode="NUMBA") and lazy("eps=0.5", "adv_emb_grad=1")
    assert not lazy(mode="JAX") and not lazy("optimizer=rmsprop") and not lazy("optimizer=sgd")
    assert not lazy("vat=1", "eps=0.5") and not lazy("vat=1", "eps=0") and not lazy("emb_norm=1")

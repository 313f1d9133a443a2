"""mode=JAX (the GPU path, here on the CPU) trains like mode=C: same costs, same parameters.

Float64 both ways (the Model switches on JAX's 64-bit types), dropout on: the JAX backend draws
its dropout masks on the host from the same generators mode C uses, so both runs see the same
masks and must agree to float rounding. Tiny sizes keep each compile short (JAX compiles once
per padded shape, `lstm_adv.core.jax_backend`).
"""

from collections import OrderedDict

import numpy as np
import pytest

pytest.importorskip("jax", reason="mode=JAX needs jax (pip install -e '.[test,jax]'; .ci/run installs it)")

from lstm_adv.config import parse_args  # noqa: E402
from lstm_adv.data import load_dataset, minibatches, prepare_data  # noqa: E402
from lstm_adv.core.compiled import Model  # noqa: E402
from lstm_adv.core.jax_backend import bucket_length  # noqa: E402
from lstm_adv.core.model import init_params  # noqa: E402
from lstm_adv.common.utils import make_rng  # noqa: E402

BASE = ["data=toy", "wdim=8", "hdim=8", "floatX=float64", "clip=0.05"]
RTOL = 1e-9


def _params(cfg, n_words):
    """The toy init moved away from its tiny values (so clipping and dropout matter), same for both modes."""
    rng = np.random.default_rng(1)
    return OrderedDict((k, v + 0.3 * rng.standard_normal(v.shape)) for k, v in init_params(cfg, n_words).items())


def _close(a, b, what):
    scale = max(float(np.abs(b).max()), 1e-12)
    assert np.abs(np.asarray(a) - np.asarray(b)).max() <= RTOL * scale + 1e-14, (what, np.abs(a - b).max(), scale)


def test_bucket_lengths():
    assert [bucket_length(n) for n in (1, 8, 9, 12, 13, 17, 25, 33, 99, 100, 129, 2500)] == \
        [8, 8, 12, 12, 16, 24, 32, 48, 128, 128, 192, 3072]


@pytest.mark.slow
def test_jax_trains_like_c_from_the_same_seed():
    # A few updates of the paper's objective (eps=0.5, sign) on shuffled toy minibatches of
    # several lengths, hence padded to buckets, and a last batch of another size.
    cfgs = {m: parse_args(BASE + ["eps=0.5", f"mode={m}"]) for m in ("C", "JAX")}
    data = load_dataset(cfgs["C"])
    n_words = min(cfgs["C"].n_words, len(data.words))
    p0 = _params(cfgs["C"], n_words)
    batches = minibatches(len(data.train), 16, make_rng(1, "shuffle"))[:4]
    batches.append(batches[-1][:5])
    prepared = [prepare_data([data.train.seqs[i] for i in idx], data.train.labels[idx], "float64") for idx in batches]
    assert any(bucket_length(x.shape[0]) != x.shape[0] for x, _, _ in prepared)  # padding happens
    runs = {}
    for mode, cfg in cfgs.items():
        m = Model(cfg, n_words, p0)
        costs = [m.train_step(x, mask, y)[0] for x, mask, y in prepared]
        probs = m.f_pred_prob(*prepared[0][:2])
        grad, emb = m.f_grad_emb(*prepared[0])
        # dense_opt_state: mode C's lazy Wemb rows caught up (what JAX's dense update holds)
        runs[mode] = (costs, m.get_params(), {k: v for k, v in m.dense_opt_state().items() if "_lazy_" not in k},
                      {k: v.get_value().bit_generator.state for k, v in m.rngs.items()}, probs, grad, emb, m)
    (c_costs, c_p, c_opt, c_rng, c_probs, c_grad, c_emb, _), (j_costs, j_p, j_opt, j_rng, j_probs, j_grad, j_emb, jm) = \
        runs["C"], runs["JAX"]
    assert j_costs == pytest.approx(c_costs, rel=RTOL), (j_costs, c_costs)
    for k in c_p:
        _close(j_p[k], c_p[k], k)
        assert not np.array_equal(c_p[k], p0[k]), k  # every parameter moved
    for k in c_opt:
        _close(j_opt[k], c_opt[k], k)
    assert j_rng == c_rng  # the same dropout draws, from the model's own generators
    _close(j_probs, c_probs, "f_pred_prob")
    assert j_grad.shape == c_grad.shape and j_emb.shape == c_emb.shape  # cut back from the bucket
    _close(j_grad, c_grad, "f_grad_emb")
    _close(j_emb, c_emb, "emb")
    stats = jm.compile_stats()
    assert set(stats) >= {"f_train", "f_pred_prob", "f_embed", "f_grad_prob_emb"}
    assert {b for _, b, _ in stats["f_train"]} == {16, 5}  # one compile per (bucket, batch size)
    assert "compilations" in jm.compile_summary()


# With the test above (sign, adv_emb_grad=0, lstm) every objective, both adv_emb_grad and both
# encoders are covered, in three more compiles per backend instead of ten.
OBJECTIVES = {
    "clean": ["eps=0"],
    "l2-emb-grad": ["eps=0.5", "adv_norm=l2", "adv_emb_grad=1"],
    "rnn-sign-emb-grad": ["eps=0.5", "encoder=rnn", "adv_emb_grad=1"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_one_update_of_each_objective_under_jax(name):
    seqs = [[5, 6, 7, 8, 9, 10, 11, 12, 13], [14, 15, 16], [17, 18, 19, 20, 21]]  # T=9: padded to 12
    x, mask, y = prepare_data(seqs, [1, 0, 1], "float64")
    out = {}
    for mode in ("C", "JAX"):
        cfg = parse_args(BASE + OBJECTIVES[name] + [f"mode={mode}", "n_words=30"])
        m = Model(cfg, 30, _params(cfg, 30))
        cost = m.train_step(x, mask, y)[0]
        out[mode] = cost, m.get_params()
    assert np.isfinite(out["JAX"][0])
    assert out["JAX"][0] == pytest.approx(out["C"][0], rel=RTOL), name
    for k, v in out["C"][1].items():
        _close(out["JAX"][1][k], v, (name, k))

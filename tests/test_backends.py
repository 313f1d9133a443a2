"""The same objective and gradients in every available backend (mode=C, NUMBA, FAST_COMPILE; JAX: test_jax.py).

Tiny sizes (wdim=hdim=8, n_words=30, T <= 6) keep each compile short, and each Model is built
once and shared by the tests (about a minute in all with warm caches, a few cold). Numba is
tested on the clean objective only (see `SMALL`). Tolerances: NUMBA in float64, relative 1e-9 on
costs and gradients (the backends differ only in the order of floating-point operations and in
libm); FAST_COMPILE in float32 (the training default) against mode C in float32, relative 1e-4
(`_floatx`). Training under JAX against C: tests/test_jax.py.
"""

from collections import OrderedDict

import numpy as np
import pytest

import lstm_adv.core.model as model_mod
from conftest import merge
from lstm_adv.config import parse_args
from lstm_adv.data import prepare_data
from lstm_adv.common.errors import UserError
from lstm_adv.core.backend import get_mode
from lstm_adv.core.compiled import Model

N_WORDS = 30
BASE = ["wdim=8", "hdim=8", f"n_words={N_WORDS}", "eps=0.3", "alpha=0.5", "clip=0.05"]
RTOL64, RTOL32 = 1e-9, 1e-4


def _jax_available():
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


# JAX is tested against C in tests/test_jax.py (training updates, dropout draws, f_grad_emb). Not
# here: a JAX Model compiled in a process that has trained a FAST_COMPILE one fails with "No JAX
# conversion for Gemm" (PyTensor 3.0.7; experiments/benchmarks.md, "JAX"), so tests/conftest.py runs
# tests/test_jax.py before this file, in the same process.
MODES = ["C", "NUMBA", "FAST_COMPILE"]


def _floatx(mode):
    """FAST_COMPILE in float32, the training default, against mode C in float32 (`RTOL32`); the
    others in float64 (`RTOL64`). FAST_COMPILE compiles fastest, so the float32 graphs cost least there."""
    return "float32" if mode == "FAST_COMPILE" else "float64"


def _batch(floatX):
    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(2, N_WORDS, size=n)) for n in (4, 6, 3)]  # ragged: padding present
    return prepare_data(seqs, [0, 1, 1], floatX)


def _params(floatX):
    """Parameters moved away from the tiny init, the same for every backend."""
    m = model_mod.init_params(parse_args(BASE), N_WORDS, floatX="float64")
    rng = np.random.default_rng(1)
    return OrderedDict((k, (v + 0.5 * rng.standard_normal(v.shape)).astype(floatX)) for k, v in m.items())


class _InspectOnly(Model):
    """A Model that compiles only what `Model.inspect` needs (halves the compile time)."""

    def _build_train(self):
        pass

    def _build_eval(self):
        pass


_MODELS = {}


def _model(mode, *extra, cls=Model, floatX=None):
    """One Model per backend and settings (dropout on: `inspect` turns it off), built once."""
    floatX = floatX or _floatx(mode)
    key = (mode, cls, floatX) + extra
    if key not in _MODELS:
        cfg = parse_args(merge(BASE, [f"mode={mode}", f"floatX={floatX}", *extra]))
        _MODELS[key] = cls(cfg, N_WORDS, _params(floatX))
    return _MODELS[key]


def _inspect(mode, *extra, cls=Model, floatX=None):
    m = _model(mode, *extra, cls=cls, floatX=floatX)
    x, mask, y = _batch(m.cfg.floatX)
    return m.inspect(x, mask, y, dropout=False)


def _assert_close(a, b, rtol, what):
    for key in ("cost_clean", "cost_adv", "cost"):
        assert a[key] == pytest.approx(b[key], rel=rtol), (what, key)
    for name in a["grads"]:
        ga, gb = a["grads"][name], b["grads"][name]
        scale = max(np.abs(ga).max(), 1e-12)
        assert np.abs(ga - gb).max() <= rtol * scale, (what, name, np.abs(ga - gb).max(), scale)
    # The perturbation: eps * g / ||g|| to the same tolerance; eps * sign(g) equal wherever the
    # gradient is not ~0 (a sign may flip where it is).
    da, db = a["delta"], b["delta"]
    assert np.mean(np.abs(da - db) > rtol * max(np.abs(da).max(), 1e-12)) < 0.01, what


# Numba compiles slowly (cold, the adversarial objective's functions take minutes on 2 cores):
# there both tests use the clean objective (eps=0), the smallest graph, with the same ops
# (scans, the LSTM's custom backward, softmax, dropout RNG) minus the perturbation.
SMALL = {"NUMBA": ("eps=0",)}


@pytest.mark.slow
@pytest.mark.parametrize("mode", [m for m in MODES if m != "C"])
def test_objective_and_gradients_agree_across_backends(mode):
    floatX = _floatx(mode)
    extra = SMALL.get(mode, ())
    ref = _inspect("C", *extra) if floatX == "float64" else _inspect("C", *extra, cls=_InspectOnly, floatX=floatX)
    # The same Model (dropout on; inspect turns it off) serves the dropout test below.
    _assert_close(_inspect(mode, *extra), ref, RTOL64 if floatX == "float64" else RTOL32, mode)


# manual-graph: the backward pass in PyTensor ops is what NUMBA and JAX run, a second-backend check.
@pytest.mark.parametrize("backward,kernel", [("autodiff", "graph"), ("manual", "c"),
                                             pytest.param("manual", "graph", marks=pytest.mark.slow)])
def test_manual_backward_and_c_kernels_match_autodiff(backward, kernel):
    # The default (the whole-sequence C Ops) against PyTensor differentiating the tutorial's scan,
    # the manual backward scan with the per-step C kernels, and with PyTensor ops (what Numba and JAX run),
    # with gradient clipping active (clip=0.05 clips here) and Wemb learning through both terms.
    extra = ("adv_emb_grad=1",)
    ref = _inspect("C", *extra, cls=_InspectOnly)
    m = _InspectOnly(parse_args(merge(BASE, ["mode=C", "floatX=float64", *extra])), N_WORDS, _params("float64"),
                     lstm_backward=backward, lstm_kernel=kernel)
    x, mask, y = _batch("float64")
    _assert_close(m.inspect(x, mask, y, dropout=False), ref, RTOL64, (backward, kernel, extra))


# Every objective on mode C's two LSTM paths: the whole-sequence Ops (default) and the scans with the
# per-step C kernels; both encoders (the RNN has no sequence Op: its scan is the same on both).
OBJECTIVES = [("eps=0",), (), ("adv_norm=l2",), ("adv_label=predicted",), ("vat=1", "eps=0.5"),
              ("emb_norm=1",), ("encoder=rnn",)]


@pytest.mark.parametrize("extra", [o if o in {(), ("vat=1", "eps=0.5")} else pytest.param(o, marks=pytest.mark.slow)
                                   for o in OBJECTIVES], ids=lambda o: ",".join(o) or "sign")
def test_every_objective_is_the_same_on_the_sequence_ops_and_the_scans(extra):
    # clip=0.002: the per-step clip inside the LSTM's backward acts too (at BASE's 0.05 only the
    # embedding's does on this batch).
    cfg = parse_args(merge(BASE, ["mode=C", "floatX=float64", "clip=0.002", *extra]))
    counts = list(range(2, N_WORDS + 2))   # emb_norm=1 needs the training word frequencies
    x, mask, y = _batch("float64")
    rng = np.random.default_rng(1)
    params = OrderedDict((k, v + 0.5 * rng.standard_normal(v.shape))
                         for k, v in model_mod.init_params(cfg, N_WORDS, floatX="float64").items())
    seq, scan = (_InspectOnly(cfg, N_WORDS, params, lstm_kernel=k, word_counts=counts)
                 .inspect(x, mask, y, dropout=False) for k in ("seq", "c"))
    _assert_close(seq, scan, RTOL64, extra)


def test_one_backward_pass_per_branch():
    """Mode C's default runs each branch's LSTM as one `LSTMSeq` and its backward as one
    `LSTMSeqGrad`, no scan; with lstm_kernel="c", one forward and one backward scan per branch."""
    from pytensor.scan.op import Scan

    from lstm_adv.core.sequence_ops import LSTMSeq, LSTMSeqGrad

    for extra, branches in ((("eps=0",), 1), ((), 2)):
        ops = [node.op for node in _model("C", *extra).f_train.maker.fgraph.toposort()]
        assert not any(isinstance(op, Scan) for op in ops)
        assert sum(type(op) is LSTMSeq for op in ops) == branches
        assert sum(type(op) is LSTMSeqGrad for op in ops) == branches
        cfg = parse_args(merge(BASE, ["mode=C", "floatX=float64", *extra]))
        scans = Model(cfg, N_WORDS, _params("float64"), lstm_kernel="c").f_train.maker.fgraph.toposort()
        names = sorted(node.op.name for node in scans if isinstance(node.op, Scan))
        assert len(names) == 2 * branches and names.count("lstm_backward") == branches, names


@pytest.mark.parametrize("mode", [m if m == "C" else pytest.param(m, marks=pytest.mark.slow) for m in MODES])
def test_dropout_masks_differ_between_updates(mode):
    m = _model(mode, *SMALL.get(mode, ()))  # use_dropout=1 (the default)
    x, mask, y = _batch(m.cfg.floatX)
    p0 = m.get_params()
    opt0 = {k: v.get_value() for k, v in m.opt_state.items()}
    rng0 = {k: v.get_value().bit_generator.state for k, v in m.rngs.items()}
    costs = []
    for _ in range(2):
        m.set_params(p0)
        for k, v in m.opt_state.items():
            v.set_value(opt0[k])
        costs.append(float(m.f_train(x, mask, y)))
    # Same parameters and batch: only the dropout draws differ (JAX copies RNG state; the
    # shared RNG must still advance).
    assert costs[0] != costs[1], (mode, costs)
    for k, v in m.rngs.items():
        if k == "clean" or m.cfg.adversarial:  # the adversarial branch's RNG only when it exists
            assert v.get_value().bit_generator.state != rng0[k], (mode, k)


def test_device_gpu_is_a_clear_error_without_a_gpu_backend():
    try:
        import jax

        has_gpu = bool(jax.devices("gpu"))
    except Exception:  # jax missing, or no GPU platform
        has_gpu = False
    if has_gpu:
        pytest.skip("this machine has a JAX GPU backend")
    cfg = parse_args(["device=gpu"])
    with pytest.raises(UserError, match="device=gpu"):
        get_mode(cfg)


def test_mode_jax_without_jax_is_one_message_from_the_entry_check_and_from_get_mode(monkeypatch):
    import importlib.util

    from lstm_adv.common import checks

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a))
    cfg = parse_args(["mode=JAX"])
    with pytest.raises(UserError) as at_entry:
        checks.backend(cfg)
    with pytest.raises(UserError) as at_compile:
        get_mode(cfg)
    assert str(at_entry.value) == str(at_compile.value) and "mode=JAX needs jax" in str(at_entry.value)
    assert checks.mode_name(parse_args(["device=gpu"])) == "JAX" and checks.mode_name(parse_args([])) == "C"

"""`LSTMSeqGrad(want_dU=False)` and the rewrite that puts it where dU is unused (ASCC's inner steps).

The variant skips the (H x (T-1)B) x ((T-1)B x 4H) product of dU after the backward loop; the loop
itself, and so d_state_below, is the full Op's: equal bit for bit, not to a tolerance.
"""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode
from pytensor.scan.op import Scan

from lstm_adv.config import parse_args
from lstm_adv.core import compiled
from lstm_adv.core.backend import blas_ldflags, get_mode
from lstm_adv.core.sequence_ops import LSTMSeq, LSTMSeqGrad, _seq_backward_numpy, _seq_forward_numpy
from test_ascc import BASE, M, N_WORDS, _batch, _sets   # the tiny ASCC model and its batch
from test_kernels import _f, _sequence_case

REWRITE = "lstm_adv_seq_grad_without_dU"
blas_ldflags()   # PyTensor reads its BLAS flags here, silently


def _seq_grads(fgraph):
    return [node.op for node in fgraph.toposort() if isinstance(node.op, LSTMSeqGrad)]


def test_the_variant_is_another_op_with_one_output():
    """``want_dU`` is a property: equality and hash (PyTensor's cache keys) tell the two apart."""
    full, variant = LSTMSeqGrad(clip=0.3), LSTMSeqGrad(clip=0.3, want_dU=False)
    assert full != variant and hash(full) != hash(variant) and full == LSTMSeqGrad(clip=0.3, want_dU=True)
    ins = [_f(2), _f(2)] + [_f(3)] * 5
    assert len(full.make_node(*ins).outputs) == 2 and len(variant.make_node(*ins).outputs) == 1


@pytest.mark.parametrize("linker", ["c", "py"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("B,H,Tn", [(5, 3, 7), (11, 32, 7), (11, 32, 1)])
def test_the_variant_gives_the_full_ops_d_state_below_bit_for_bit(linker, dtype, B, H, Tn):
    """C (the kernel with a NULL dU) and NumPy `perform`, with masked tails and a clip that acts."""
    sb, m, U, dho = _sequence_case(dtype, B, H, Tn=Tn, seed=3)
    h, c, act, tc = _seq_forward_numpy(sb, m, U)
    ins = [_f(2, dtype), _f(2, dtype)] + [_f(3, dtype) for _ in range(5)]
    mode = Mode(linker=linker, optimizer=None)   # no rewrite: each Op as built
    full = pytensor.function(ins, LSTMSeqGrad(clip=0.3)(*ins), mode=mode)(m, U, h, c, act, tc, dho)
    (dsb,) = pytensor.function(ins, [LSTMSeqGrad(clip=0.3, want_dU=False)(*ins)], mode=mode)(m, U, h, c, act, tc, dho)
    assert dsb.dtype == np.dtype(dtype) and dsb.shape == (Tn, B, 4 * H) and dsb.any()
    np.testing.assert_array_equal(dsb, full[0])
    assert len(_seq_backward_numpy(m, U, h, c, act, tc, dho, 0.3, want_dU=False)) == 1


def _lstm_cost(dtype="float64"):
    SB, Mk, UU = _f(3, dtype), _f(2, dtype), _f(2, dtype)
    h = LSTMSeq(clip=0.3)(SB, Mk, UU)[0]
    w = pt.constant(np.linspace(-1, 1, 32 * 7 * 11).reshape(7, 11, 32).astype(dtype))
    return [SB, Mk, UU], (h * w).sum()


def test_the_rewrite_fires_where_dU_is_unused_and_only_there():
    """Gradient to the input alone: the variant; to the input and U (a training graph): the full Op,
    with dU as without the rewrite. d_state_below is the same in all three functions."""
    ins, cost = _lstm_cost()
    SB, _, UU = ins
    sb, m, U, _ = _sequence_case("float64", 11, 32)
    mode = Mode("cvm", "fast_run")
    g_in = pytensor.grad(cost, SB)
    assert [op.want_dU for op in _seq_grads(pytensor.graph.fg.FunctionGraph(ins, [g_in], clone=True))] == [True]
    f_in = pytensor.function(ins, g_in, mode=mode)
    f_both = pytensor.function(ins, pytensor.grad(cost, [SB, UU]), mode=mode)
    f_off = pytensor.function(ins, pytensor.grad(cost, [SB, UU]), mode=mode.excluding(REWRITE))
    assert [op.want_dU for op in _seq_grads(f_in.maker.fgraph)] == [False]
    assert [op.want_dU for op in _seq_grads(f_both.maker.fgraph)] == [True]
    dsb, (dsb2, dU), (dsb3, dU3) = f_in(sb, m, U), f_both(sb, m, U), f_off(sb, m, U)
    np.testing.assert_array_equal(dsb, dsb2)
    np.testing.assert_array_equal(dsb, dsb3)
    np.testing.assert_array_equal(dU, dU3)
    assert dU.any()


def _inner_seq_grads(model):
    """The `LSTMSeqGrad` Ops of the compiled inner function of the training step's ASCC scan."""
    (scan,) = [n.op for n in model.f_train.maker.fgraph.toposort() if isinstance(n.op, Scan)]
    assert scan.name == "ascc_inner"
    return _seq_grads(scan.fn.maker.fgraph)


def test_ascc_inner_steps_skip_dU_and_train_bit_for_bit_as_with_it(monkeypatch):
    """The rewrite reaches the scan's inner function (compiled in the model's mode); three updates of
    a tiny ASCC model give the parameters of the model compiled without the rewrite, bit for bit."""
    cfg = parse_args(BASE + ["ascc=1", f"ascc_max_subs={M}", "adv_emb_grad=1", "use_dropout=0"])
    fast = compiled.Model(cfg, N_WORDS, substitutions=_sets())
    monkeypatch.setattr(compiled, "get_mode", lambda c: get_mode(c).excluding(REWRITE))
    full = compiled.Model(cfg, N_WORDS, params=fast.get_params(), substitutions=_sets())
    assert [op.want_dU for op in _inner_seq_grads(fast)] == [False]
    assert [op.want_dU for op in _inner_seq_grads(full)] == [True]
    # The outer graph's two branches (clean, adversarial) train U: their dU stays.
    assert [op.want_dU for op in _seq_grads(fast.f_train.maker.fgraph)] == [True, True]
    x, mask, y = _batch()
    for _ in range(3):
        assert fast.train_step(x, mask, y)[0] == full.train_step(x, mask, y)[0]
    a, b = fast.get_params(), full.get_params()
    assert list(a) == list(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)

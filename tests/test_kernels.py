"""The C Ops of the LSTM step (lstm_adv.core.kernels): their compile-cache key and input checks."""

import sys
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode
from pytensor.utils import hash_from_code

from lstm_adv.core import kernels
from lstm_adv.core.backend import blas_ldflags
from lstm_adv.core.kernels import GatherRows, LSTMCell, LSTMCellGrad, ScatterRows
from lstm_adv.core.sequence_ops import LSTMSeq, LSTMSeqGrad
from lstm_adv.core.lstm import _lstm_backward, _lstm_forward


@pytest.mark.parametrize("op", [LSTMCell(), LSTMCellGrad(clip=5.0), LSTMSeq(clip=5.0), LSTMSeqGrad()])
def test_cache_key_covers_the_c_source_and_the_module_that_writes_the_rest(op):
    """An edit of lstm_kernel.c, of kernels.py or of the Op's module gives another key: no stale binary."""
    key = op.c_code_cache_version()
    c_source = (Path(kernels.__file__).parent / kernels.C_SOURCE).read_text()
    assert op.func_codes == [c_source] and hash_from_code(c_source) in key
    assert hash_from_code(Path(kernels.__file__).read_text()) in key
    assert hash_from_code(Path(sys.modules[type(op).__module__].__file__).read_text()) in key
    edited = type(op)(**{k: getattr(op, k) for k in op.__props__})
    edited.func_codes = [code + "\n/* edited */" for code in op.func_codes]
    assert edited.c_code_cache_version() != key


def _f(ndim, dtype="float32"):
    return pt.tensor(dtype=dtype, shape=(None,) * ndim)


def test_make_node_refuses_inputs_of_the_wrong_rank_or_dtype():
    ok = [_f(2), _f(2), _f(2), _f(2), _f(1)]
    assert len(LSTMCell().make_node(*ok).outputs) == 4
    with pytest.raises(TypeError, match="input 4 must be a 1-d float32 tensor, got 2-d float32"):
        LSTMCell().make_node(*ok[:4], _f(2))
    with pytest.raises(TypeError, match="input 1 must be a 2-d float32 tensor, got 2-d float64"):
        LSTMCell().make_node(ok[0], _f(2, "float64"), *ok[2:])
    with pytest.raises(TypeError, match="must be float32 or float64, got int64"):
        LSTMCell().make_node(pt.lmatrix(), *ok[1:])
    grad_ok = [_f(2)] * 6 + [_f(1)]
    assert len(LSTMCellGrad().make_node(*grad_ok).outputs) == 3
    with pytest.raises(TypeError, match="input 6 must be a 1-d float64 tensor, got 1-d float32"):
        LSTMCellGrad().make_node(*[_f(2, "float64")] * 6, _f(1))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", [LSTMCell(), LSTMCell(save=False), LSTMCellGrad(clip=0.3), LSTMCellGrad()])
def test_the_c_code_computes_what_perform_computes(op, dtype):
    """The Ops' numpy `perform` (the Python linker) against their C code (the C linker), on one step
    with a half-masked batch; the gradient Op with a clip that acts."""
    rng = np.random.default_rng(0)
    B, H = 5, 3
    if isinstance(op, LSTMCell):
        shapes, ndims = [(B, 4 * H), (B, 4 * H), (B, H), (B, H)], (2, 2, 2, 2, 1)
    else:
        shapes, ndims = [(B, 4 * H), (B, H), (B, H), (B, H), (B, H), (B, H)], (2,) * 6 + (1,)
    values = [rng.standard_normal(s).astype(dtype) for s in shapes] + [np.array([1, 1, 0, 1, 0], dtype=dtype)]
    if not isinstance(op, LSTMCell):
        values[0] = (1 / (1 + np.exp(-values[0]))).astype(dtype)   # activated gates, as the forward saves them
        values[1] = np.tanh(values[1]).astype(dtype)
    ins = [_f(nd, dtype) for nd in ndims]
    outs = op(*ins)
    outs = outs if isinstance(outs, list) else [outs]
    py = pytensor.function(ins, outs, mode=Mode(linker="py", optimizer=None))(*values)
    c = pytensor.function(ins, outs, mode=Mode(linker="c", optimizer=None))(*values)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for a, b in zip(py, c):
        assert a.dtype == b.dtype == np.dtype(dtype)
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol)


blas_ldflags()   # PyTensor reads its BLAS flags here, silently (`lstm_adv.core.backend.blas_ldflags`)


def _sequence_case(dtype, B, H, Tn=7, seed=0):
    """Inputs of a (T, B, H) LSTM whose reviews end at different steps (masked tails)."""
    rng = np.random.default_rng(seed)
    sb = rng.standard_normal((Tn, B, 4 * H)).astype(dtype)
    U = (rng.standard_normal((H, 4 * H)) / np.sqrt(H)).astype(dtype)
    m = np.ones((Tn, B), dtype)
    for b in range(B):
        m[max(1, Tn - b % 4 - b // 4):, b] = 0   # some reviews shorter, every review at least one step
    dho = rng.standard_normal((Tn, B, H)).astype(dtype)
    return sb, m, U, dho


# (B, H): (5, 3) no tile fits (BLAS for every product); (11, 8) the forward tiled, 11 rows = a full
# block + single rows; (11, 32) and (16, 128) every per-step product tiled.
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("B,H", [(5, 3), (11, 8), (11, 32), (16, 128)])
@pytest.mark.parametrize("clip", [0.0, 0.3])
def test_the_sequence_ops_compute_what_the_scans_compute(dtype, B, H, clip):
    """`LSTMSeq` / `LSTMSeqGrad` (C) against the scan path's forward and backward in PyTensor ops
    (`_lstm_forward`, `_lstm_backward`: what NUMBA and JAX run) and against their NumPy `perform`,
    with masked tails and a clip that acts (0.3)."""
    sb, m, U, dho = _sequence_case(dtype, B, H)
    with pytensor.config.change_flags(floatX=dtype):
        SB, M, UU, DH = _f(3, dtype), _f(2, dtype), _f(2, dtype), _f(3, dtype)
        outs = LSTMSeq(clip=clip)(SB, M, UU)
        grads = LSTMSeqGrad(clip=clip)(M, UU, *outs, DH)
        ref = _lstm_forward(SB, M, UU, H, "graph", save=True)
        ref_grads = _lstm_backward(M, UU, *ref, DH, H, clip, "graph")
        ins = [SB, M, UU, DH]
        c = pytensor.function(ins, [*outs, *grads], mode=Mode("cvm", "fast_run"))(sb, m, U, dho)
        py = pytensor.function(ins, [*outs, *grads], mode=Mode("py", "fast_run"))(sb, m, U, dho)
        scan = pytensor.function(ins, [*ref, *ref_grads], mode=Mode("cvm", "fast_run"))(sb, m, U, dho)
    if clip:   # the clip acted (else this case would not test it)
        assert not np.allclose(py[4], _seq_grad_numpy(sb, m, U, dho, 0.0)[0])
    rtol = 2e-5 if dtype == "float32" else 1e-11
    for name, a, b, r in zip(("h", "c", "act", "tc", "d_state_below", "dU"), c, py, scan):
        assert a.dtype == np.dtype(dtype) and a.shape == r.shape, name
        scale = np.abs(r).max()
        np.testing.assert_allclose(a, r, rtol=0, atol=rtol * scale, err_msg=f"C vs scan: {name}")
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale, err_msg=f"C vs perform: {name}")


def _seq_grad_numpy(sb, m, U, dho, clip):
    from lstm_adv.core.sequence_ops import _seq_backward_numpy, _seq_forward_numpy

    return _seq_backward_numpy(m, U, *_seq_forward_numpy(sb, m, U), dho, clip)


@pytest.mark.parametrize("Tn", [1, 2])
def test_the_sequence_ops_on_short_reviews_and_without_saving(Tn):
    """One step (no product, dU = 0) and two; evaluation's save=False gives the same h."""
    sb, m, U, dho = _sequence_case("float64", 11, 32, Tn=Tn)
    SB, M, UU, DH = _f(3, "float64"), _f(2, "float64"), _f(2, "float64"), _f(3, "float64")
    outs = LSTMSeq()(SB, M, UU)
    mode = Mode("cvm", "fast_run")
    res = pytensor.function([SB, M, UU, DH], [*outs, *LSTMSeqGrad()(M, UU, *outs, DH)], mode=mode)(sb, m, U, dho)
    h_eval = pytensor.function([SB, M, UU], LSTMSeq(save=False)(SB, M, UU), mode=mode)(sb, m, U)
    np.testing.assert_array_equal(h_eval, res[0])
    dsb, dU = _seq_grad_numpy(sb, m, U, dho, 0.0)
    np.testing.assert_allclose(res[4], dsb, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(res[5], dU, rtol=1e-12, atol=1e-14)
    if Tn == 1:
        assert not res[5].any()


def test_the_sequence_ops_refuse_inputs_of_the_wrong_rank_or_dtype():
    with pytest.raises(TypeError, match="input 1 must be a 2-d float32 tensor, got 3-d float32"):
        LSTMSeq().make_node(_f(3), _f(3), _f(2))
    with pytest.raises(TypeError, match="input 6 must be a 3-d float64 tensor, got 3-d float32"):
        LSTMSeqGrad().make_node(*[_f(2, "float64")] * 2, *[_f(3, "float64")] * 4, _f(3))
    sb = _f(3)
    with pytest.raises(NotImplementedError, match="not differentiated"):
        pytensor.grad(LSTMSeq(save=False)(sb, _f(2), _f(2)).sum(), wrt=sb)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_embedding_row_ops_give_the_element_wise_gather_and_scatter_bit_for_bit(dtype):
    """`GatherRows` and its gradient (`ScatterRows` into V rows), and the lazy rows' `ScatterRows`
    (`embedding_row_grad`), against the flat element-wise versions the other backends use: the
    same values and the same sums in the same order, so equal bit for bit (repeated ids included)."""
    from lstm_adv.core.model import embed, embedding_row_grad

    rng = np.random.default_rng(1)
    V, E = 13, 5
    W = rng.standard_normal((V, E)).astype(dtype)
    x = rng.integers(0, V, size=(6, 4))
    x[0, :] = 3   # a repeated id: its rows are summed
    g = rng.standard_normal((6, 4, E)).astype(dtype)
    Wv = pytensor.shared(W, name="Wemb")
    X, G = pt.lmatrix("x"), pt.tensor3(dtype=dtype)
    mode = Mode("cvm", "fast_run")
    res = {}
    for c_ops in (False, True):
        emb = embed({"Wemb": Wv}, X, c_ops=c_ops)
        dW = pytensor.grad((emb * G).sum(), Wv)
        ids, rows = embedding_row_grad(X, G, E, c_ops=c_ops)
        res[c_ops] = pytensor.function([X, G], [emb, dW, ids, rows], mode=mode)(x, g)
    assert any(isinstance(n.op, GatherRows) for n in pytensor.function([X], embed({"Wemb": Wv}, X, c_ops=True),
                                                                      mode=mode).maker.fgraph.toposort())
    for a, b in zip(res[False], res[True]):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(res[True][0], W[x])


def test_the_embedding_row_ops_refuse_ids_outside_the_table():
    W, ids, g = pt.matrix(), pt.lvector(), pt.matrix()
    for linker in ("c", "py"):
        gather = pytensor.function([W, ids], GatherRows()(W, ids), mode=Mode(linker=linker, optimizer=None))
        with pytest.raises(IndexError, match="outside 0..2"):
            gather(np.zeros((3, 2), "float32"), np.array([0, 3]))
        scatter = pytensor.function([ids, g], ScatterRows()(3, ids, g), mode=Mode(linker=linker, optimizer=None))
        with pytest.raises(IndexError, match="outside 0..2"):
            scatter(np.array([-1, 0]), np.zeros((2, 2), "float32"))
        out = scatter(np.array([2, 0, 2]), np.array([[1, 2], [3, 4], [5, 6]], "float32"))
        np.testing.assert_array_equal(out, [[3, 4], [0, 0], [6, 8]])
    with pytest.raises(TypeError, match="int64 vector"):
        GatherRows().make_node(W, pt.ivector())


def test_the_numpy_cell_backward_is_the_gradient_of_its_forward():
    # The one NumPy cell (every NumPy perform uses it; the C is tested against the perform above):
    # its backward against central differences of its forward, masked and unmasked rows, float64.
    from lstm_adv.core.kernels import cell_backward, cell_forward

    rng = np.random.default_rng(5)
    B, H = 3, 4
    p, c_, h_ = rng.normal(size=(B, 4 * H)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    m = np.array([1.0, 0.0, 1.0])
    wh, wc = rng.normal(size=(B, H)), rng.normal(size=(B, H))   # the loss: sum(wh * h + wc * c)

    def loss(p, c_, h_):
        h, c, _, _ = cell_forward(p, c_, h_, m)
        return float((wh * h).sum() + (wc * c).sum())

    h, c, act, tc = cell_forward(p, c_, h_, m)
    dpre, dh_carry, dc_prev = cell_backward(act, tc, c_, wh, wc, m)
    for value, grad in ((p, dpre), (c_, dc_prev), (h_, dh_carry)):
        num = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            old = value[idx]
            value[idx] = old + 1e-6
            up = loss(p, c_, h_)
            value[idx] = old - 1e-6
            down = loss(p, c_, h_)
            value[idx] = old
            num[idx] = (up - down) / 2e-6
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)

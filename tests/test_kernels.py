"""The C Ops of the LSTM step (lstm_adv.core.kernels): their compile-cache key and input checks."""

from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode
from pytensor.utils import hash_from_code

from lstm_adv.core import kernels
from lstm_adv.core.kernels import LSTMCell, LSTMCellGrad


@pytest.mark.parametrize("op", [LSTMCell(), LSTMCellGrad(clip=5.0)])
def test_cache_key_covers_the_c_source_and_the_module_that_writes_the_rest(op):
    """An edit of lstm_kernel.c or of kernels.py gives another key, so a stale binary is never reused."""
    key = op.c_code_cache_version()
    c_source = (Path(kernels.__file__).parent / kernels.C_SOURCE).read_text()
    assert op.func_codes == [c_source] and hash_from_code(c_source) in key
    assert hash_from_code(Path(kernels.__file__).read_text()) in key
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

"""The LSTM over a whole sequence as two C Ops (mode C's default): `LSTMSeq` and `LSTMSeqGrad`.

The recurrence and its backward are each one C loop over time (``lstm_kernel.c``: each step's
product a register-tiled kernel, BLAS where the shape does not tile), instead of a scan around
`lstm_adv.core.kernels.LSTMCell` / `LSTMCellGrad`; same formulas (`lstm_adv.core.lstm`), tested
against the scan path in ``tests/test_kernels.py``. The NumPy versions below are their `perform`.
"""

import numpy as np
import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.rewriting.basic import WalkingGraphRewriter, node_rewriter

from .kernels import CellOp, c_types, cell_backward, cell_forward


def _seq_forward_numpy(sb, m, U, save=True):
    """`LSTMSeq`'s formulas in NumPy, step by step (its Python-linker `perform`): `cell_forward` over time."""
    Tn, B, H4 = sb.shape
    H = H4 // 4
    h, c = np.zeros((Tn, B, H), sb.dtype), np.zeros((Tn, B, H), sb.dtype)
    act, tc = np.zeros_like(sb), np.zeros((Tn, B, H), sb.dtype)
    hp = cp = np.zeros((B, H), sb.dtype)
    for t in range(Tn):
        h[t], c[t], act[t], tc[t] = cell_forward(sb[t] + (hp @ U if t > 0 else 0), cp, hp, m[t])
        hp, cp = h[t], c[t]
    return (h, c, act, tc) if save else (h,)


def _seq_backward_numpy(m, U, h, c, act, tc, dho, clip, want_dU=True):
    """`LSTMSeqGrad`'s formulas in NumPy: `cell_backward` over time, back to front; ``(dpre, dU)``,
    or ``(dpre,)`` where ``want_dU`` is False."""
    Tn, B, H = h.shape
    dpre = np.zeros_like(act)
    dh = dc = np.zeros((B, H), h.dtype)
    for t in range(Tn - 1, -1, -1):
        cp = c[t - 1] if t > 0 else np.zeros_like(dh)
        dpre[t], dh_carry, dc = cell_backward(act[t], tc[t], cp, dho[t] + dh, dc, m[t], clip)
        dh = dh_carry + dpre[t] @ U.T
    if not want_dU:
        return (dpre,)
    h_prev = np.concatenate([np.zeros_like(h[:1]), h[:-1]])
    dU = h_prev.reshape(-1, H).T @ dpre.reshape(-1, 4 * H)
    return dpre, dU.astype(h.dtype)


class LSTMSeq(CellOp):
    """The LSTM over all time steps in one C loop: ``(state_below, mask, U) -> h[, c, act, tc]``.

    Each step is one BLAS product ``dot(h_{t-1}, U)`` (SciPy's sgemm/dgemm, called from C) added to
    the step's input projection in place, then `LSTMCell`'s formulas; the scan's per-step
    machinery (inner-function calls, output buffers, slicing) is gone and the step's gates stay
    in cache. Shapes: state_below (T, B, 4H), mask (T, B), U (H, 4H); h, c, tc (T, B, H), act
    (T, B, 4H). ``save=False`` (evaluation) returns only h and keeps one step of the rest.
    Its gradient is `LSTMSeqGrad` with the same ``clip``.
    """

    def make_node(self, sb, m, U):
        ins = self._inputs((sb, m, U), (3, 2, 2))
        seq = pt.TensorType(ins[0].dtype, shape=(None, None, None))   # h, c, tc: (T, B, H)
        outs = [seq(), seq(), ins[0].type(), seq()] if self.save else [seq()]
        return Apply(self, ins, outs)

    def perform(self, node, inputs, outputs):
        for out, v in zip(outputs, _seq_forward_numpy(*inputs, save=self.save)):
            out[0] = v

    def pullback(self, inputs, outputs, cotangents):
        if not self.save:
            raise NotImplementedError("LSTMSeq(save=False) is for graphs that are not differentiated")
        sb, m, U = inputs
        h, c, act, tc = outputs
        dh = cotangents[0]
        if isinstance(dh.type, DisconnectedType):
            return [pt.zeros_like(sb), pt.zeros_like(m), pt.zeros_like(U)]
        dsb, dU = LSTMSeqGrad(clip=self.clip)(m, U, h, c, act, tc, dh)
        # The mask is data: its gradient is never asked for (zeros keep the pattern connected).
        return [dsb, pt.zeros_like(m), dU]

    def connection_pattern(self, node):
        # Only h is a model output; c, the gates and tanh(c) exist for the gradient.
        return [[True] + [False] * (len(node.outputs) - 1) for _ in node.inputs]

    def c_code(self, node, name, inp, out, sub):
        sb, m, U = inp
        fail, (T, typenum) = sub["fail"], c_types(node.inputs[0].dtype)
        h = out[0]
        save = int(self.save)
        if self.save:
            c, act, tc = out[1:]
            alloc = (f"err = lstm_adv_prepare_out(&{c}, 3, d3, {typenum}) || lstm_adv_prepare_out(&{act}, 3, d4, {typenum})"
                     f" || lstm_adv_prepare_out(&{tc}, 3, d3, {typenum});\n"
                     f"if (!err) {{ Cp = ({T}*)PyArray_DATA({c}); Ap = ({T}*)PyArray_DATA({act}); "
                     f"TCp = ({T}*)PyArray_DATA({tc}); }}")
        else:
            alloc = (f"scratch = ({T}*)malloc(sizeof({T}) * (6 * B * H + 1));\n"
                     "if (!scratch) { PyErr_NoMemory(); err = 1; }\n"
                     "else { Cp = scratch; TCp = scratch + B * H; Ap = scratch + 2 * B * H; }")
        return f"""
        {{
        PyArrayObject *SB = lstm_adv_contig({sb}), *M = lstm_adv_contig({m}), *U = lstm_adv_contig({U});
        int err = !(SB && M && U);
        npy_intp Tn = 0, B = 0, H = 0;
        {T} *Cp = NULL, *Ap = NULL, *TCp = NULL, *scratch = NULL, *zero = NULL;
        if (!err) {{
            Tn = PyArray_DIMS(SB)[0]; B = PyArray_DIMS(SB)[1]; H = PyArray_DIMS(U)[0];
            if (PyArray_DIMS(SB)[2] != 4 * H || PyArray_DIMS(U)[1] != 4 * H || PyArray_DIMS(M)[0] != Tn ||
                PyArray_DIMS(M)[1] != B) {{
                PyErr_SetString(PyExc_ValueError, "LSTMSeq: inconsistent shapes"); err = 1;
            }}
        }}
        npy_intp d3[3] = {{Tn, B, H}}, d4[3] = {{Tn, B, 4 * H}};
        if (!err) err = lstm_adv_prepare_out(&{h}, 3, d3, {typenum});
        if (!err) {{ {alloc} }}
        if (!err) {{ zero = ({T}*)calloc(B * H + 1, sizeof({T})); if (!zero) {{ PyErr_NoMemory(); err = 1; }} }}
        if (!err && Tn > 0)
            err = lstm_adv_seq_fwd<{T}>(Tn, B, H, ({T}*)PyArray_DATA(SB), ({T}*)PyArray_DATA(M), ({T}*)PyArray_DATA(U),
                                        zero, ({T}*)PyArray_DATA({h}), Cp, {save} * B * H, Ap, {save} * B * 4 * H,
                                        TCp, {save} * B * H);
        free(scratch); free(zero);
        Py_XDECREF(SB); Py_XDECREF(M); Py_XDECREF(U);
        if (err) {{ {fail} }}
        }}
        """


class LSTMSeqGrad(CellOp):
    """`LSTMSeq`'s backward in one C loop: ``(mask, U, h, c, act, tc, dh) -> d_state_below, dU``.

    ``dh`` (T, B, H) is the gradient reaching h from above; per step the formulas of
    `LSTMCellGrad` (with the original code's clipping at ``clip``) and one product
    ``dot(dpre_t, U.T)``; ``dU`` (H, 4H) is one product over all steps at the end.
    ``want_dU=False``: d_state_below only, without that product (ASCC's inner steps differentiate
    with respect to the input alone); the rewrite `_seq_grad_without_dU` puts it where dU is unused.
    """

    __props__ = ("clip", "save", "want_dU")

    def __init__(self, clip=0.0, save=True, want_dU=True):
        self.want_dU = bool(want_dU)
        super().__init__(clip, save)

    def make_node(self, m, U, h, c, act, tc, dh):
        ins = self._inputs((m, U, h, c, act, tc, dh), (2, 2, 3, 3, 3, 3, 3))
        outs = [ins[4].type(), ins[1].type()] if self.want_dU else [ins[4].type()]
        return Apply(self, ins, outs)   # like act (T, B, 4H) and U (H, 4H)

    def perform(self, node, inputs, outputs):
        m, U, h, c, act, tc, dh = inputs
        for out, v in zip(outputs, _seq_backward_numpy(m, U, h, c, act, tc, dh, self.clip, self.want_dU)):
            out[0] = v

    def c_code(self, node, name, inp, out, sub):
        m, U, h, c, act, tc, dh = inp
        dsb = out[0]
        fail, (T, typenum) = sub["fail"], c_types(node.inputs[0].dtype)
        # The C of dU (the default's text as it was before want_dU existed); without it the kernel
        # gets NULL for dU and skips its product.
        du_dims, du_alloc, du_ptr, du_empty = "", "", "NULL", ""
        if self.want_dU:
            dU = out[1]
            du_dims, du_alloc = ", du[2] = {H, 4 * H}", f" || lstm_adv_prepare_out(&{dU}, 2, du, {typenum})"
            du_ptr = f"({T}*)PyArray_DATA({dU})"
            du_empty = f"\n            else memset(PyArray_DATA({dU}), 0, sizeof({T}) * H * 4 * H);"
        return f"""
        {{
        PyArrayObject *M = lstm_adv_contig({m}), *U = lstm_adv_contig({U}), *Hs = lstm_adv_contig({h}),
                      *Cs = lstm_adv_contig({c}), *A = lstm_adv_contig({act}), *TC = lstm_adv_contig({tc}),
                      *DH = lstm_adv_contig({dh});
        int err = !(M && U && Hs && Cs && A && TC && DH);
        npy_intp Tn = 0, B = 0, H = 0;
        {T} *work = NULL;
        if (!err) {{
            Tn = PyArray_DIMS(Hs)[0]; B = PyArray_DIMS(Hs)[1]; H = PyArray_DIMS(Hs)[2];
            npy_intp n3 = Tn * B * H;
            if (PyArray_DIMS(U)[0] != H || PyArray_DIMS(U)[1] != 4 * H || PyArray_DIMS(M)[0] != Tn ||
                PyArray_DIMS(M)[1] != B || PyArray_SIZE(Cs) != n3 || PyArray_SIZE(TC) != n3 ||
                PyArray_SIZE(DH) != n3 || PyArray_SIZE(A) != 4 * n3) {{
                PyErr_SetString(PyExc_ValueError, "LSTMSeqGrad: inconsistent shapes"); err = 1;
            }}
        }}
        npy_intp d4[3] = {{Tn, B, 4 * H}}{du_dims};
        if (!err) err = lstm_adv_prepare_out(&{dsb}, 3, d4, {typenum}){du_alloc};
        if (!err) {{ work = ({T}*)calloc(5 * B * H + 4 * H * H + 1, sizeof({T})); if (!work) {{ PyErr_NoMemory(); err = 1; }} }}
        if (!err) {{
            if (Tn > 0)
                err = lstm_adv_seq_bwd<{T}>(Tn, B, H, {self.clip!r}, ({T}*)PyArray_DATA(M), ({T}*)PyArray_DATA(U),
                                            ({T}*)PyArray_DATA(Hs), ({T}*)PyArray_DATA(Cs), ({T}*)PyArray_DATA(A),
                                            ({T}*)PyArray_DATA(TC), ({T}*)PyArray_DATA(DH), work + 4 * B * H, work,
                                            work + 5 * B * H, ({T}*)PyArray_DATA({dsb}), {du_ptr});{du_empty}
        }}
        free(work);
        Py_XDECREF(M); Py_XDECREF(U); Py_XDECREF(Hs); Py_XDECREF(Cs); Py_XDECREF(A); Py_XDECREF(TC); Py_XDECREF(DH);
        if (err) {{ {fail} }}
        }}
        """


@node_rewriter([LSTMSeqGrad])
def _seq_grad_without_dU(fgraph, node):
    """`LSTMSeqGrad` whose dU has no clients -> its ``want_dU=False`` variant (one product fewer).

    ``pytensor.grad`` builds the full Op wherever it differentiates through `LSTMSeq`; a gradient
    with respect to the input alone (ASCC's K inner steps, in a scan) leaves dU unused.
    """
    if not node.op.want_dU or fgraph.clients[node.outputs[1]]:
        return False
    op = LSTMSeqGrad(clip=node.op.clip, save=node.op.save, want_dU=False)
    return {node.outputs[0]: op(*node.inputs)}


# Not in-place; after the graph's canonical forms, before the destroy handler. PyTensor compiles a
# scan's inner function with the scan's mode (mode C: the model's), so "fast_run" reaches it there.
optdb.register("lstm_adv_seq_grad_without_dU", WalkingGraphRewriter(_seq_grad_without_dU), "fast_run",
               position=48.5)

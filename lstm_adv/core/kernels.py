"""Mode C's C Ops on ``lstm_kernel.c``: the LSTM step's elementwise part (`LSTMCell`, `LSTMCellGrad`,
for the scan path) and the embedding rows (`GatherRows`, `ScatterRows`); their base `KernelOp`.
The whole-sequence LSTM Ops, mode C's default, are in `lstm_adv.core.sequence_ops`.

PyTensor's C backend compiles a fused elementwise graph with several inputs of unknown shape
as a strided scalar loop: every sigmoid and tanh is a scalar libm call (tanhf ~15 ns here), and
the step's gates cost 2-3x its matrix product. These two Ops compute exactly the step's
formulas (`lstm_adv.core.lstm._lstm_step_values`, `_lstm_backward`) in plain loops over
contiguous rows, which GCC vectorises; with glibc's vector math library (libmvec, used when
``__FAST_MATH__`` is defined, without -ffast-math's other effects) the exp and tanh run 8 at a
time. Results differ from the graph version by float rounding only (libmvec's exp/tanh are
within 4 ulp).

The C helpers live in ``lstm_kernel.c`` beside this module, read by PyTensor's `ExternalCOp`
(its ``#section support_code``), the way PyTensor's own C Ops load their ``.c`` files; each
Op's ``c_code`` (which depends on its ``save`` and ``clip`` properties) stays here.
"""

import platform
import sys
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.link.c.cmodule import GCC_compiler
from pytensor.link.c.op import ExternalCOp
from pytensor.utils import hash_from_code

#: Beside this module; `ExternalCOp` resolves it relative to the Op's source file.
C_SOURCE = "lstm_kernel.c"


def _vector_math_flags():
    """``-D__FAST_MATH__`` where it makes GCC call glibc's libmvec (Linux x86-64, g++), else []."""
    global _VMATH
    if _VMATH is None:
        _VMATH = []
        cxx = pytensor.config.cxx
        if sys.platform.startswith("linux") and platform.machine() == "x86_64" and cxx and "g++" in cxx:
            code = ("#include <cmath>\nfloat a[64], b[64];\nint main() {\n"
                    "  for (int i = 0; i < 64; i++) a[i] = i * 0.01f;\n"
                    "  for (int i = 0; i < 64; i++) b[i] = std::tanh(a[i]) + std::exp(-a[i]);\n"
                    "  return b[3] > 2.0f;\n}\n")
            try:
                ok = GCC_compiler.try_compile_tmp(code, tmp_prefix="lstm_adv_vmath_",
                                                  flags=["-O3", "-fno-math-errno", "-D__FAST_MATH__"],
                                                  try_run=True)
                ok = all(ok) if isinstance(ok, tuple) else bool(ok)  # (compiled, ran with status 0)
            except Exception:  # a compiler problem: go without
                ok = False
            if ok:
                _VMATH = ["-D__FAST_MATH__"]
    return list(_VMATH)


_VMATH = None
#: Hashes of the modules whose c_code methods write part of an Op's C (`KernelOp.c_code_cache_version`).
_MODULE_HASHES = {}


def module_hash(module_file):
    """``hash_from_code`` of a module's source, read once per process."""
    if module_file not in _MODULE_HASHES:
        _MODULE_HASHES[module_file] = hash_from_code(Path(module_file).read_text())
    return _MODULE_HASHES[module_file]


# ---- the LSTM cell in NumPy: the one copy every NumPy `perform` uses (the C is lstm_kernel.c) ----
def cell_forward(p, c_, h_, m):
    """One LSTM step after its matrix product (`lstm_adv.core.lstm`'s formulas), in NumPy.

    Parameters
    ----------
    p : ndarray, shape (B, 4H)
        Pre-activations ``x_t W + b + h_{t-1} U``, gates i, f, o, c~ in that order.
    c_, h_ : ndarray, shape (B, H)
        The previous cell and hidden state.
    m : ndarray, shape (B,)
        The step's mask: where 0, h and c carry over unchanged.

    Returns
    -------
    h, c : ndarray, shape (B, H)
    act : ndarray, shape (B, 4H)
        The activated gates (sigmoid for i, f, o; tanh for c~), as the backward needs them.
    tc : ndarray, shape (B, H)
        tanh(c).
    """
    H = c_.shape[1]
    one = p.dtype.type(1)
    a = np.empty_like(p)
    a[:, :3 * H] = one / (one + np.exp(-p[:, :3 * H]))
    a[:, 3 * H:] = np.tanh(p[:, 3 * H:])
    i, f, o, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    mm, nm = m[:, None], (one - m)[:, None]
    c = mm * (f * c_ + i * g) + nm * c_
    tc = np.tanh(c)
    h = mm * (o * tc) + nm * h_
    return h, c, a, tc


def cell_backward(act, tc, cp, dh, dc, m, clip=0.0):
    """The backward of `cell_forward` (`lstm_adv.core.lstm._lstm_backward`'s formulas), in NumPy.

    Parameters
    ----------
    act, tc : ndarray, shapes (B, 4H), (B, H)
        `cell_forward`'s saved gates and tanh(c).
    cp : ndarray, shape (B, H)
        The previous cell state.
    dh, dc : ndarray, shape (B, H)
        The gradient reaching this step's h (from the output and the next step) and c.
    m : ndarray, shape (B,)
    clip : float
        Elementwise clip of ``dh`` and ``dc`` (the original's ``grad_clip`` on h and c); 0 = off.

    Returns
    -------
    dpre : ndarray, shape (B, 4H)
        The gradient of the pre-activations (the caller multiplies by U^T for h_{t-1}'s share).
    dh_carry, dc_prev : ndarray, shape (B, H)
        The masked steps' carried-over part of dh_{t-1}, and dc_{t-1}.
    """
    H = tc.shape[1]
    one = act.dtype.type(1)
    i, f, o, g = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
    mm, nm = m[:, None], (one - m)[:, None]
    gh, gc = (np.clip(dh, -clip, clip), np.clip(dc, -clip, clip)) if clip > 0 else (dh, dc)
    dcv = gc + mm * gh * o * (one - tc ** 2)
    dcm = mm * dcv
    dpre = np.concatenate([dcm * g * i * (one - i), dcm * cp * f * (one - f),
                           mm * gh * tc * o * (one - o), dcm * i * (one - g ** 2)], axis=1)
    return dpre, nm * gh, nm * dcv + dcm * f


def c_types(dtype):
    """The C type and the NumPy type number of a float dtype: ``("npy_float32", "NPY_FLOAT32")`` for
    "float32", the same for "float64" (every C Op of the package writes its C with these)."""
    return {"float32": ("npy_float32", "NPY_FLOAT32"), "float64": ("npy_float64", "NPY_FLOAT64")}[str(dtype)]


class KernelOp(ExternalCOp):
    """The Ops of ``lstm_kernel.c``: one support code for all (PyTensor includes it once per module)."""

    __props__ = ()

    def __init__(self):
        super().__init__([C_SOURCE])

    def c_compile_args(self, **kwargs):
        return _vector_math_flags()

    def c_code_cache_version(self):
        # Keyed on the C source (ExternalCOp's own key), on this module and on the module of the Op's
        # class, whose c_code methods write the rest of the C: an edit of any compiles anew, never a
        # hand-bumped number.
        return (*super().c_code_cache_version(), module_hash(__file__),
                module_hash(sys.modules[type(self).__module__].__file__), tuple(_vector_math_flags()))



class CellOp(KernelOp):
    __props__ = ("clip", "save")

    def __init__(self, clip=0.0, save=True):
        self.clip = float(clip)
        self.save = bool(save)
        super().__init__()

    def _inputs(self, values, ndims):
        """The inputs as tensors, refused unless each has its ndim and input 0's dtype (the C code
        casts every input by input 0's dtype)."""
        ins = [pt.as_tensor_variable(v) for v in values]
        dtype = ins[0].dtype
        if dtype not in ("float32", "float64"):
            raise TypeError(f"{type(self).__name__}: inputs must be float32 or float64, got {dtype}")
        for k, (v, nd) in enumerate(zip(ins, ndims)):
            if v.ndim != nd or v.dtype != dtype:
                raise TypeError(f"{type(self).__name__}: input {k} must be a {nd}-d {dtype} tensor, "
                                f"got {v.ndim}-d {v.dtype}")
        return ins



class LSTMCell(CellOp):
    """One LSTM step after its matrix product: ``(dot(h_, U), x_, c_, h_, m_) -> h, c[, act, tc]``.

    ``act`` (B, 4H) holds the activated gates i, f, o, c~ and ``tc`` = tanh(c), for
    `LSTMCellGrad`; ``save=False`` (evaluation) returns only h and c. ``clip`` is unused here.
    """

    def make_node(self, d, x, c_, h_, m):
        ins = self._inputs((d, x, c_, h_, m), (2, 2, 2, 2, 1))
        outs = [ins[2].type(), ins[2].type()] + ([ins[0].type(), ins[2].type()] if self.save else [])
        return Apply(self, ins, outs)

    def perform(self, node, inputs, outputs):
        d, x, c_, h_, m = inputs
        h, c, a, tc = cell_forward(d + x, c_, h_, m)
        vals = [h, c] + ([a, tc] if self.save else [])
        for out, v in zip(outputs, vals):
            out[0] = v.astype(node.outputs[0].dtype, copy=False)

    def c_code(self, node, name, inp, out, sub):
        d, x, c_, h_, m = inp
        fail, (T, typenum) = sub["fail"], c_types(node.inputs[0].dtype)
        h, c = out[0], out[1]
        act, tc = (out[2], out[3]) if self.save else ("lstm_adv_act_" + name, "lstm_adv_tc_" + name)
        decl = "" if self.save else f"PyArrayObject* {act} = NULL; PyArrayObject* {tc} = NULL;"
        free = "" if self.save else f"Py_XDECREF({act}); Py_XDECREF({tc});"
        return f"""
        {{
        {decl}
        PyArrayObject *D = lstm_adv_contig({d}), *X = lstm_adv_contig({x}), *CP = lstm_adv_contig({c_}),
                      *HP = lstm_adv_contig({h_}), *M = lstm_adv_contig({m});
        int err = !(D && X && CP && HP && M);
        npy_intp B = 0, H = 0;
        if (!err) {{
            B = PyArray_DIMS(CP)[0]; H = PyArray_DIMS(CP)[1];
            if (PyArray_DIMS(D)[0] != B || PyArray_DIMS(D)[1] != 4 * H || PyArray_DIMS(X)[0] != B ||
                PyArray_DIMS(X)[1] != 4 * H || PyArray_DIMS(HP)[0] != B || PyArray_DIMS(HP)[1] != H ||
                PyArray_DIMS(M)[0] != B) {{
                PyErr_SetString(PyExc_ValueError, "LSTMCell: inconsistent shapes"); err = 1;
            }}
        }}
        npy_intp d2[2] = {{B, H}}, d4[2] = {{B, 4 * H}};
        if (!err) err = lstm_adv_prepare_out(&{h}, 2, d2, {typenum}) || lstm_adv_prepare_out(&{c}, 2, d2, {typenum})
                        || lstm_adv_prepare_out(&{act}, 2, d4, {typenum}) || lstm_adv_prepare_out(&{tc}, 2, d2, {typenum});
        if (!err) lstm_adv_cell_fwd<{T}>(B, H, ({T}*)PyArray_DATA(D), ({T}*)PyArray_DATA(X), ({T}*)PyArray_DATA(CP),
                                         ({T}*)PyArray_DATA(HP), ({T}*)PyArray_DATA(M), ({T}*)PyArray_DATA({act}),
                                         ({T}*)PyArray_DATA({c}), ({T}*)PyArray_DATA({tc}), ({T}*)PyArray_DATA({h}));
        Py_XDECREF(D); Py_XDECREF(X); Py_XDECREF(CP); Py_XDECREF(HP); Py_XDECREF(M);
        {free}
        if (err) {{ {fail} }}
        }}
        """


class LSTMCellGrad(CellOp):
    """The backward of one step, ``(act, tc, c_, dh_out, dh, dc, m_) -> dpre, (1 - m) * gh, dc_prev``.

    ``gh = clip(dh_out + dh)`` is the gradient reaching h_t and ``clip(dc)`` the one reaching c_t
    from the next step (the original code's ``grad_clip``); the caller adds ``dot(dpre, U.T)``
    to the second output to get the gradient of h_{t-1}. See `_lstm_backward` for the formulas.
    """

    def make_node(self, act, tc, c_, dho, dh, dc, m):
        ins = self._inputs((act, tc, c_, dho, dh, dc, m), (2, 2, 2, 2, 2, 2, 1))
        return Apply(self, ins, [ins[0].type(), ins[1].type(), ins[1].type()])

    def perform(self, node, inputs, outputs):
        act, tc, cp, dho, dh, dc, m = inputs
        for out, v in zip(outputs, cell_backward(act, tc, cp, dho + dh, dc, m, self.clip)):
            out[0] = v.astype(node.outputs[0].dtype, copy=False)

    def c_code(self, node, name, inp, out, sub):
        act, tc, c_, dho, dh, dc, m = inp
        dpre, dhp, dcp = out
        fail, (T, typenum) = sub["fail"], c_types(node.inputs[0].dtype)
        clip = repr(self.clip)
        return f"""
        {{
        PyArrayObject *A = lstm_adv_contig({act}), *TC = lstm_adv_contig({tc}), *CP = lstm_adv_contig({c_}),
                      *DHO = lstm_adv_contig({dho}), *DH = lstm_adv_contig({dh}), *DC = lstm_adv_contig({dc}),
                      *M = lstm_adv_contig({m});
        int err = !(A && TC && CP && DHO && DH && DC && M);
        npy_intp B = 0, H = 0;
        if (!err) {{
            B = PyArray_DIMS(TC)[0]; H = PyArray_DIMS(TC)[1];
            if (PyArray_DIMS(A)[0] != B || PyArray_DIMS(A)[1] != 4 * H || PyArray_SIZE(CP) != B * H ||
                PyArray_SIZE(DHO) != B * H || PyArray_SIZE(DH) != B * H || PyArray_SIZE(DC) != B * H ||
                PyArray_DIMS(M)[0] != B) {{
                PyErr_SetString(PyExc_ValueError, "LSTMCellGrad: inconsistent shapes"); err = 1;
            }}
        }}
        npy_intp d2[2] = {{B, H}}, d4[2] = {{B, 4 * H}};
        if (!err) err = lstm_adv_prepare_out(&{dpre}, 2, d4, {typenum}) || lstm_adv_prepare_out(&{dhp}, 2, d2, {typenum})
                        || lstm_adv_prepare_out(&{dcp}, 2, d2, {typenum});
        if (!err) lstm_adv_cell_bwd<{T}>(B, H, {clip}, ({T}*)PyArray_DATA(A), ({T}*)PyArray_DATA(TC),
                                         ({T}*)PyArray_DATA(CP), ({T}*)PyArray_DATA(DHO), ({T}*)PyArray_DATA(DH),
                                         ({T}*)PyArray_DATA(DC), ({T}*)PyArray_DATA(M), ({T}*)PyArray_DATA({dpre}),
                                         ({T}*)PyArray_DATA({dhp}), ({T}*)PyArray_DATA({dcp}));
        Py_XDECREF(A); Py_XDECREF(TC); Py_XDECREF(CP); Py_XDECREF(DHO); Py_XDECREF(DH); Py_XDECREF(DC); Py_XDECREF(M);
        if (err) {{ {fail} }}
        }}
        """




class GatherRows(KernelOp):
    """The embedding lookup on mode C: ``(W, ids) -> W[ids]``, rows copied whole.

    Shapes: W (V, E), ids (N,) int64 -> (N, E). PyTensor's row-wise gather has C code but its
    gradient (a row-wise scatter-add) falls back to ``numpy.add.at``, and the flat element-wise
    gather `lstm_adv.core.model.embed` uses elsewhere builds an index per element; this pair does
    one ``memcpy`` / one row sum per id. Its gradient is `ScatterRows` into V rows.
    """

    def make_node(self, W, ids):
        W, ids = pt.as_tensor_variable(W), pt.as_tensor_variable(ids)
        if W.ndim != 2 or W.dtype not in ("float32", "float64") or ids.ndim != 1 or ids.dtype != "int64":
            raise TypeError(f"GatherRows: needs a float matrix and an int64 vector, got {W.type} and {ids.type}")
        return Apply(self, [W, ids], [pt.matrix(dtype=W.dtype, shape=(None, W.type.shape[1]))])

    def perform(self, node, inputs, outputs):
        W, ids = inputs
        if ids.size and (ids.min() < 0 or ids.max() >= W.shape[0]):
            raise IndexError(f"GatherRows: a word id outside 0..{W.shape[0] - 1}")
        outputs[0][0] = W[ids]

    def pullback(self, inputs, outputs, cotangents):
        W, ids = inputs
        return [ScatterRows()(W.shape[0], ids, cotangents[0]), DisconnectedType()()]

    def connection_pattern(self, node):
        return [[True], [False]]

    def c_code(self, node, name, inp, out, sub):
        W, ids = inp
        (o,) = out
        T, typenum = c_types(node.inputs[0].dtype)
        return f"""
        {{
        PyArrayObject *Wc = lstm_adv_contig({W}), *I = lstm_adv_ids({ids});
        int err = !(Wc && I);
        npy_intp d[2] = {{err ? 0 : PyArray_DIMS(I)[0], err ? 0 : PyArray_DIMS(Wc)[1]}};
        if (!err) err = lstm_adv_prepare_out(&{o}, 2, d, {typenum});
        if (!err) err = lstm_adv_gather_rows<{T}>(PyArray_DIMS(Wc)[0], d[1], d[0], ({T}*)PyArray_DATA(Wc),
                                                 (npy_int64*)PyArray_DATA(I), ({T}*)PyArray_DATA({o}));
        Py_XDECREF(Wc); Py_XDECREF(I);
        if (err) {{ {sub["fail"]} }}
        }}
        """


class ScatterRows(KernelOp):
    """``(n, ids, g) -> out``: zeros (n, E) with each row ``g[i]`` added to ``out[ids[i]]``, in order.

    The gradient of `GatherRows` (n = V), and the rows of the batch's distinct words in
    `lstm_adv.core.model.embedding_row_grad` (ids = the inverse of `unique`). Rows are summed in
    the order of ``ids``, the order of the element-wise scatter it replaces: bit-identical.
    """

    def make_node(self, n, ids, g):
        n, ids, g = pt.as_tensor_variable(n), pt.as_tensor_variable(ids), pt.as_tensor_variable(g)
        if (n.ndim != 0 or "int" not in n.dtype or ids.ndim != 1 or ids.dtype != "int64" or g.ndim != 2
                or g.dtype not in ("float32", "float64")):
            raise TypeError(f"ScatterRows: needs an integer scalar, an int64 vector and a float matrix, "
                            f"got {n.type}, {ids.type} and {g.type}")
        return Apply(self, [pt.cast(n, "int64"), ids, g], [pt.matrix(dtype=g.dtype, shape=(None, g.type.shape[1]))])

    def perform(self, node, inputs, outputs):
        n, ids, g = inputs
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            raise IndexError(f"ScatterRows: a row index outside 0..{int(n) - 1}")
        out = np.zeros((int(n), g.shape[1]), dtype=g.dtype)
        for i, row in enumerate(ids):
            out[row] += g[i]
        outputs[0][0] = out

    def c_code(self, node, name, inp, out, sub):
        n, ids, g = inp
        (o,) = out
        T, typenum = c_types(node.inputs[2].dtype)
        return f"""
        {{
        PyArrayObject *G = lstm_adv_contig({g}), *I = lstm_adv_ids({ids});
        int err = !(G && I);
        npy_intp N = err ? 0 : PyArray_DIMS(I)[0], rows = ((npy_int64*)PyArray_DATA({n}))[0];
        if (!err && (PyArray_DIMS(G)[0] != N || rows < 0)) {{
            PyErr_SetString(PyExc_ValueError, "ScatterRows: inconsistent shapes"); err = 1;
        }}
        npy_intp d[2] = {{rows, err ? 0 : PyArray_DIMS(G)[1]}};
        if (!err) err = lstm_adv_prepare_out(&{o}, 2, d, {typenum});
        if (!err) err = lstm_adv_scatter_rows<{T}>(rows, d[1], N, (npy_int64*)PyArray_DATA(I), ({T}*)PyArray_DATA(G),
                                                  ({T}*)PyArray_DATA({o}));
        Py_XDECREF(G); Py_XDECREF(I);
        if (err) {{ {sub["fail"]} }}
        }}
        """

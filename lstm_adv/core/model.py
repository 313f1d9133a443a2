"""The Theano LSTM sentiment tutorial's model, rebuilt in PyTensor.

Parameters live in ONE ordered dict with the tutorial's names (``Wemb``, ``lstm_W``, ``lstm_U``,
``lstm_b``, ``U``, ``b``; ``rnn_*`` for the vanilla RNN encoder), created once by `init_params`
and turned into shared variables by `to_shared`; the clean and the adversarial branch of the
objective (`lstm_adv.adversarial`) both read that same dict.

The builders here take and return symbolic variables; nothing is compiled in this module
(see `lstm_adv.graph`). Shapes: ``T`` time steps, ``B`` reviews, ``E`` = wdim, ``H`` = hdim.
"""

from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.builders import OpFromGraph
from pytensor.graph.basic import Apply
from pytensor.link.c.op import COp
from pytensor.gradient import DisconnectedType, grad_clip

from .errors import UserError
from .utils import make_rng

ENCODER_PARAMS = {"lstm": ("lstm_W", "lstm_U", "lstm_b"), "rnn": ("rnn_W", "rnn_U", "rnn_b")}


def ortho_weight(rng, rows, cols):
    """A (rows, cols) matrix with orthonormal rows or columns, from the SVD of a Gaussian.

    The tutorial's ``ortho_weight`` is square (it assumed wdim == hdim); for word2vec's
    wdim=300 with hdim=128 we take the semi-orthogonal factor of a rectangular Gaussian.
    """
    u, _, vt = np.linalg.svd(rng.standard_normal((rows, cols)), full_matrices=False)
    return u if u.shape == (rows, cols) else vt


def init_params(cfg, n_words, floatX=None):
    """Initial parameter values, as the tutorial's ``init_params`` and ``param_init_lstm``.

    Parameters
    ----------
    cfg : Config
        Uses wdim, hdim, encoder, seed.
    n_words : int
        Rows of ``Wemb`` (the vocabulary size, capped at ``cfg.n_words``).

    Returns
    -------
    OrderedDict of str -> ndarray
        ``Wemb`` (n_words, E) = wemb_scale * U[0, 1) (tutorial: 0.01); LSTM ``lstm_W`` (E, 4H) and ``lstm_U`` (H, 4H) as four
        orthogonal blocks in gate order i, f, o, c~, ``lstm_b`` (4H,) zeros (RNN: ``rnn_W`` (E, H),
        ``rnn_U`` (H, H), ``rnn_b`` (H,)); classifier ``U`` (H, 2) = 0.01 * randn, ``b`` (2,) zeros.
    """
    floatX = floatX or cfg.floatX
    rng = make_rng(cfg.seed, "init_params")
    E, H = cfg.wdim, cfg.hdim
    p = OrderedDict()
    p["Wemb"] = cfg.wemb_scale * rng.random((n_words, E))
    if cfg.encoder == "lstm":
        p["lstm_W"] = np.concatenate([ortho_weight(rng, E, H) for _ in range(4)], axis=1)
        p["lstm_U"] = np.concatenate([ortho_weight(rng, H, H) for _ in range(4)], axis=1)
        p["lstm_b"] = np.zeros(4 * H)
    else:
        p["rnn_W"] = ortho_weight(rng, E, H)
        p["rnn_U"] = ortho_weight(rng, H, H)
        p["rnn_b"] = np.zeros(H)
    p["U"] = 0.01 * rng.standard_normal((H, 2))
    p["b"] = np.zeros(2)
    return OrderedDict((k, v.astype(floatX)) for k, v in p.items())


def expected_shapes(cfg, n_words):
    """Parameter name -> shape for a configuration, to check a loaded ``.npz`` against."""
    E, H = cfg.wdim, cfg.hdim
    shapes = OrderedDict(Wemb=(n_words, E))
    if cfg.encoder == "lstm":
        shapes.update(lstm_W=(E, 4 * H), lstm_U=(H, 4 * H), lstm_b=(4 * H,))
    else:
        shapes.update(rnn_W=(E, H), rnn_U=(H, H), rnn_b=(H,))
    shapes.update(U=(H, 2), b=(2,))
    return shapes


def check_params(params, cfg, n_words, source):
    """Refuse parameters that do not fit the configuration, naming the first mismatch."""
    want = expected_shapes(cfg, n_words)
    missing = [k for k in want if k not in params]
    extra = [k for k in params if k not in want]
    if missing or extra:
        raise UserError(f"{source} does not fit this configuration (encoder={cfg.encoder}): "
                        f"missing {missing}, unexpected {extra}; use the keys it was trained with")
    for k, shape in want.items():
        if tuple(params[k].shape) != shape:
            raise UserError(f"{source}: parameter {k} has shape {tuple(params[k].shape)} but this configuration "
                            f"(wdim={cfg.wdim}, hdim={cfg.hdim}, n_words={n_words}) needs {shape}; "
                            "use the keys it was trained with")


def to_shared(params):
    """The one ordered dict of shared variables both branches use (the tutorial's ``tparams``).

    Each has its value's shape as its static shape, so shape computations fold at compile time
    (`set_params` and `check_params` keep values to those shapes).
    """
    return OrderedDict((k, pytensor.shared(v, name=k, shape=v.shape)) for k, v in params.items())


def emb_norm_weights(counts, n_words):
    """The word weights of `normalize_embeddings`: training frequency of each of ``n_words`` ids.

    ``counts[i]`` is the training-split count of dictionary id ``i`` (``data.info["word_counts"]``);
    the words beyond ``n_words``, which the data maps to UNK (id 1), give UNK their summed count;
    padding (id 0) weighs 0. Returns float64 weights of shape (n_words,) summing to 1.
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or len(c) < min(n_words, 2) or (c < 0).any():
        raise ValueError("counts must be a 1-d array of non-negative word counts covering the vocabulary")
    w = np.zeros(n_words)
    w[:min(n_words, len(c))] = c[:n_words]
    w[0] = 0.0
    w[1] += c[n_words:].sum()
    if w.sum() <= 0:
        raise ValueError("the word counts are all zero")
    return w / w.sum()


def normalize_embeddings(W, weights, eps=1e-6):
    """Miyato et al. (2017)'s embedding normalisation: (W - mean) / sqrt(var + eps), row by row.

    ``mean`` and ``var`` (shape (E,)) are the ``weights``-weighted mean and variance of the rows
    over the vocabulary (weights: the words' training frequencies, `emb_norm_weights`), so a
    frequent word's coordinates have mean 0 and variance 1. Numpy arrays or tensors; gradients
    flow through the mean and variance too (as in Miyato et al.'s code).
    """
    xp = np if isinstance(W, np.ndarray) else pt
    w = weights[:, None]
    mean = (w * W).sum(axis=0)
    var = (w * (W - mean[None, :]) ** 2).sum(axis=0)
    return (W - mean[None, :]) / xp.sqrt(var + eps)[None, :]


def embed(tparams, x, freqs=None):
    """Look up word embeddings (of the normalised table when ``freqs`` is given).

    The rows are gathered from the flattened ``Wemb`` with one index per element, so that the
    gradient (a scatter-add into a zero ``Wemb``, duplicates summed in order, as the tutorial's)
    is PyTensor's one-dimensional ``AdvancedIncSubtensor1``, which has C code; the row-wise
    version falls back to ``numpy.add.at``, about 7x slower here. Same values.

    Parameters
    ----------
    x : int64 tensor, shape (T, B)
    freqs : constant tensor, shape (n_words,), optional
        `emb_norm_weights`: embed the rows of `normalize_embeddings` (``emb_norm=1``); the
        parameter ``Wemb`` itself stays raw.

    Returns
    -------
    tensor, shape (T, B, E)
    """
    W = tparams["Wemb"]
    if freqs is not None:
        W = normalize_embeddings(W, freqs)
    E = W.shape[1]
    idx = (x.flatten()[:, None] * E + pt.arange(E, dtype=x.dtype)[None, :]).flatten()
    return W.flatten()[idx].reshape((x.shape[0], x.shape[1], E))


def embedding_row_grad(x, g_emb, E):
    """The gradient of ``Wemb`` restricted to the rows the batch uses.

    Parameters
    ----------
    x : int64 tensor, shape (T, B)
    g_emb : tensor, shape (T, B, E)
        Gradient with respect to the embedded input `embed` returned.
    E : int
        wdim.

    Returns
    -------
    ids : int64 vector
        The distinct word ids of ``x``, sorted.
    g_rows : tensor, shape (len(ids), E)
        Their rows of the dense gradient (the other rows' are zero), summed in the same order
        as the dense scatter-add, so the values are the same bit for bit.
    """
    ids, inv = pt.extra_ops.unique(x.flatten(), return_inverse=True)
    idx = (inv.flatten()[:, None] * E + pt.arange(E, dtype=inv.dtype)[None, :]).flatten()
    flat = pt.zeros((ids.shape[0] * E,), dtype=g_emb.dtype)
    return ids, pt.inc_subtensor(flat[idx], g_emb.flatten()).reshape((ids.shape[0], E))


def _clip(v, clip):
    # Elementwise gradient clipping, where the original AdversarialNN code put it.
    return grad_clip(v, -clip, clip) if clip > 0 else v


def clip_input(emb, cfg):
    """The embedded input with its gradient clipped elementwise to ``cfg.clip`` (0 = unchanged).

    The original code applied this once to ``Wemb[x]``, before both branches, so with
    ``adv_emb_grad=1`` the clip acts on the sum of what the two branches send back.
    """
    return _clip(emb, cfg.clip)


# ---- the LSTM step's elementwise part as C code (mode=C only) -------------------------------------
#
# PyTensor's C backend compiles a fused elementwise graph with several inputs of unknown shape
# as a strided scalar loop: every sigmoid and tanh is a scalar libm call (tanhf ~15 ns here), and
# the step's gates cost 2-3x its matrix product. These two Ops compute exactly the step's
# formulas (`_lstm_step_values`, `_lstm_backward`) in plain loops over contiguous rows, which
# GCC vectorises; with glibc's vector math library (libmvec, used when ``__FAST_MATH__`` is
# defined, without -ffast-math's other effects) the exp and tanh run 8 at a time. Results differ
# from the graph version by float rounding only (libmvec's exp/tanh are within 4 ulp).

_CELL_SUPPORT = r"""
// Out of line: inlined into PyTensor's large generated function, GCC leaves these loops scalar.
#if defined(__GNUC__)
#define LSTM_ADV_KERNEL __attribute__((noinline)) static
#else
#define LSTM_ADV_KERNEL static
#endif
template <typename T> static inline T lstm_adv_sigmoid(T x) { return T(1) / (T(1) + exp(-x)); }
template <typename T> static inline T lstm_adv_clip(T x, T c) { return c > 0 ? (x < -c ? -c : (x > c ? c : x)) : x; }
static PyArrayObject* lstm_adv_contig(PyArrayObject* a) {
    return (PyArrayObject*)PyArray_FromAny((PyObject*)a, NULL, 0, 0, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED, NULL);
}
template <typename T>
LSTM_ADV_KERNEL void lstm_adv_cell_fwd(npy_intp B, npy_intp H, const T* __restrict__ D, const T* __restrict__ X,
                              const T* __restrict__ CP, const T* __restrict__ HP, const T* __restrict__ M,
                              T* __restrict__ A, T* __restrict__ C, T* __restrict__ TC, T* __restrict__ Hout) {
    const npy_intp H4 = 4 * H;
    for (npy_intp b = 0; b < B; b++) {
        const T* __restrict__ dd = D + b * H4;
        const T* __restrict__ xx = X + b * H4;
        const T* __restrict__ cp = CP + b * H;
        const T* __restrict__ hp = HP + b * H;
        T* __restrict__ a = A + b * H4;
        T* __restrict__ cc = C + b * H;
        T* __restrict__ tt = TC + b * H;
        T* __restrict__ hh = Hout + b * H;
        const T mb = M[b], nb = T(1) - mb;
        for (npy_intp j = 0; j < 3 * H; j++) a[j] = lstm_adv_sigmoid<T>(dd[j] + xx[j]);
        for (npy_intp j = 3 * H; j < H4; j++) a[j] = tanh(dd[j] + xx[j]);
        for (npy_intp j = 0; j < H; j++) {
            T cj = a[H + j] * cp[j] + a[j] * a[3 * H + j];
            cc[j] = mb * cj + nb * cp[j];
        }
        for (npy_intp j = 0; j < H; j++) tt[j] = tanh(cc[j]);
        for (npy_intp j = 0; j < H; j++) hh[j] = mb * (a[2 * H + j] * tt[j]) + nb * hp[j];
    }
}
template <typename T>
LSTM_ADV_KERNEL void lstm_adv_cell_bwd(npy_intp B, npy_intp H, T clip, const T* __restrict__ A, const T* __restrict__ TC,
                              const T* __restrict__ CP, const T* __restrict__ GHO, const T* __restrict__ GHR,
                              const T* __restrict__ GCR, const T* __restrict__ M,
                              T* __restrict__ DP, T* __restrict__ OH, T* __restrict__ OC) {
    const npy_intp H4 = 4 * H;
    const T one = 1;
    for (npy_intp b = 0; b < B; b++) {
        const T* __restrict__ a = A + b * H4;
        const T* __restrict__ t = TC + b * H;
        const T* __restrict__ cp = CP + b * H;
        const T* __restrict__ gho = GHO + b * H;
        const T* __restrict__ ghr = GHR + b * H;
        const T* __restrict__ gcr = GCR + b * H;
        T* __restrict__ dp = DP + b * H4;
        T* __restrict__ oh = OH + b * H;
        T* __restrict__ oc = OC + b * H;
        const T mb = M[b], nb = one - mb;
        for (npy_intp j = 0; j < H; j++) {
            const T ai = a[j], af = a[H + j], ao = a[2 * H + j], ag = a[3 * H + j];
            const T gh = lstm_adv_clip<T>(gho[j] + ghr[j], clip);
            const T gc = lstm_adv_clip<T>(gcr[j], clip);
            const T dcv = gc + mb * gh * ao * (one - t[j] * t[j]);
            const T dcm = mb * dcv;
            dp[j] = dcm * ag * ai * (one - ai);
            dp[H + j] = dcm * cp[j] * af * (one - af);
            dp[2 * H + j] = mb * gh * t[j] * ao * (one - ao);
            dp[3 * H + j] = dcm * ai * (one - ag * ag);
            oh[j] = nb * gh;
            oc[j] = nb * dcv + dcm * af;
        }
    }
}
static int lstm_adv_prepare_out(PyArrayObject** out, int nd, npy_intp* dims, int typenum) {
    PyArrayObject* o = *out;
    if (o && PyArray_NDIM(o) == nd && PyArray_TYPE(o) == typenum && PyArray_IS_C_CONTIGUOUS(o)) {
        int same = 1;
        for (int k = 0; k < nd; k++) same &= (PyArray_DIMS(o)[k] == dims[k]);
        if (same) return 0;
    }
    Py_XDECREF(o);
    *out = (PyArrayObject*)PyArray_EMPTY(nd, dims, typenum, 0);
    return *out == NULL;
}
"""


def _vector_math_flags():
    """``-D__FAST_MATH__`` where it makes GCC call glibc's libmvec (Linux x86-64, g++), else []."""
    global _VMATH
    if _VMATH is None:
        _VMATH = []
        import platform
        import sys

        cxx = pytensor.config.cxx
        if sys.platform.startswith("linux") and platform.machine() == "x86_64" and cxx and "g++" in cxx:
            from pytensor.link.c.cmodule import GCC_compiler

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


class _CellOp(COp):
    __props__ = ("clip", "save")

    def __init__(self, clip=0.0, save=True):
        self.clip = float(clip)
        self.save = bool(save)
        super().__init__()

    def c_support_code(self, **kwargs):
        return _CELL_SUPPORT

    def c_compile_args(self, **kwargs):
        return _vector_math_flags()

    def c_code_cache_version(self):
        return (3, tuple(_vector_math_flags()))

    def _typenum(self, node):
        return {"float32": "NPY_FLOAT32", "float64": "NPY_FLOAT64"}[node.inputs[0].dtype]

    def _ctype(self, node):
        return {"float32": "npy_float32", "float64": "npy_float64"}[node.inputs[0].dtype]


class LSTMCell(_CellOp):
    """One LSTM step after its matrix product: ``(dot(h_, U), x_, c_, h_, m_) -> h, c[, act, tc]``.

    ``act`` (B, 4H) holds the activated gates i, f, o, c~ and ``tc`` = tanh(c), for
    `LSTMCellGrad`; ``save=False`` (evaluation) returns only h and c. ``clip`` is unused here.
    """

    def make_node(self, d, x, c_, h_, m):
        ins = [pt.as_tensor_variable(v) for v in (d, x, c_, h_, m)]
        outs = [ins[2].type(), ins[2].type()] + ([ins[0].type(), ins[2].type()] if self.save else [])
        return Apply(self, ins, outs)

    def perform(self, node, inputs, outputs):
        d, x, c_, h_, m = inputs
        H = c_.shape[1]
        p = d + x
        one = p.dtype.type(1)
        a = np.empty_like(p)
        a[:, :3 * H] = one / (one + np.exp(-p[:, :3 * H]))
        a[:, 3 * H:] = np.tanh(p[:, 3 * H:])
        i, f, o, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        mm, nm = m[:, None], (one - m)[:, None]
        c = mm * (f * c_ + i * g) + nm * c_
        tc = np.tanh(c)
        h = mm * (o * tc) + nm * h_
        vals = [h, c] + ([a, tc] if self.save else [])
        for out, v in zip(outputs, vals):
            out[0] = v.astype(node.outputs[0].dtype, copy=False)

    def c_code(self, node, name, inp, out, sub):
        d, x, c_, h_, m = inp
        fail, T, typenum = sub["fail"], self._ctype(node), self._typenum(node)
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


class LSTMCellGrad(_CellOp):
    """The backward of one step, ``(act, tc, c_, dh_out, dh, dc, m_) -> dpre, (1 - m) * gh, dc_prev``.

    ``gh = clip(dh_out + dh)`` is the gradient reaching h_t and ``clip(dc)`` the one reaching c_t
    from the next step (the original code's ``grad_clip``); the caller adds ``dot(dpre, U.T)``
    to the second output to get the gradient of h_{t-1}. See `_lstm_backward` for the formulas.
    """

    def make_node(self, act, tc, c_, dho, dh, dc, m):
        ins = [pt.as_tensor_variable(v) for v in (act, tc, c_, dho, dh, dc, m)]
        return Apply(self, ins, [ins[0].type(), ins[1].type(), ins[1].type()])

    def perform(self, node, inputs, outputs):
        act, tc, cp, dho, dh, dc, m = inputs
        H = tc.shape[1]
        one = act.dtype.type(1)
        i, f, o, g = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
        mm, nm = m[:, None], (one - m)[:, None]
        clip = (lambda v: np.clip(v, -self.clip, self.clip)) if self.clip > 0 else (lambda v: v)
        gh, gc = clip(dho + dh), clip(dc)
        dcv = gc + mm * gh * o * (one - tc ** 2)
        dcm = mm * dcv
        dpre = np.concatenate([dcm * g * i * (one - i), dcm * cp * f * (one - f),
                               mm * gh * tc * o * (one - o), dcm * i * (one - g ** 2)], axis=1)
        for out, v in zip(outputs, (dpre, nm * gh, nm * dcv + dcm * f)):
            out[0] = v.astype(node.outputs[0].dtype, copy=False)

    def c_code(self, node, name, inp, out, sub):
        act, tc, c_, dho, dh, dc, m = inp
        dpre, dhp, dcp = out
        fail, T, typenum = sub["fail"], self._ctype(node), self._typenum(node)
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


# How the LSTM's gradient is built (see `lstm_layer`): "manual" (default) or "autodiff".
LSTM_BACKWARD = "manual"


def _lstm_step_values(m_, x_, h_, c_, U, H):
    """One step of the tutorial's LSTM (gate order i, f, o, c~); returns h, c, the gates, tanh(c)."""
    preact = pt.dot(h_, U) + x_
    i = pt.sigmoid(preact[:, 0 * H:1 * H])
    f = pt.sigmoid(preact[:, 1 * H:2 * H])
    o = pt.sigmoid(preact[:, 2 * H:3 * H])
    g = pt.tanh(preact[:, 3 * H:4 * H])
    c = f * c_ + i * g
    c = m_[:, None] * c + (1.0 - m_)[:, None] * c_
    tc = pt.tanh(c)
    h = o * tc
    h = m_[:, None] * h + (1.0 - m_)[:, None] * h_
    return h, c, (i, f, o, g), tc


def _lstm_scan_autodiff(state_below, mask, U, H, clip, mode=None):
    # The tutorial's formulation: PyTensor differentiates this scan (its backward scan
    # recomputes every gate). The reference the manual backward is tested against.
    def step(m_, x_, h_, c_, U):
        h, c, _, _ = _lstm_step_values(m_, x_, h_, c_, U, H)
        return _clip(h, clip), _clip(c, clip)

    zeros = pt.zeros((state_below.shape[1], H), dtype=state_below.dtype)
    h, _ = pytensor.scan(step, sequences=[mask, state_below], outputs_info=[zeros, zeros],
                         non_sequences=[U], name="lstm_layer", strict=True, return_updates=False, mode=mode)
    return h


def _lstm_forward(state_below, mask, U, H, kernel, save=True, mode=None):
    """The forward scan; with ``save`` it also returns the gates (T, B, 4H), c and tanh(c) (T, B, H).

    ``kernel="c"`` computes each step's elementwise part with `LSTMCell` (C backend only);
    ``"graph"`` with PyTensor ops (`_lstm_step_values`). Same formulas.
    """
    if kernel == "c":
        cell = LSTMCell(save=save)

        def step(m_, x_, h_, c_, U):
            return cell(pt.dot(h_, U), x_, c_, h_, m_)
    else:
        def step(m_, x_, h_, c_, U):
            h, c, gates, tc = _lstm_step_values(m_, x_, h_, c_, U, H)
            return (h, c, pt.concatenate(gates, axis=1), tc) if save else (h, c)

    zeros = pt.zeros((state_below.shape[1], H), dtype=state_below.dtype)
    outs = pytensor.scan(step, sequences=[mask, state_below],
                         outputs_info=[zeros, zeros] + ([None, None] if save else []), non_sequences=[U],
                         name="lstm_forward", strict=True, return_updates=False, mode=mode)
    return outs if save else outs[0]


def _lstm_backward(mask, U, h, c, act, tc, dh_out, H, clip, kernel, mode=None):
    """The LSTM's backward pass written out, with the original code's clipping.

    Same gradient as PyTensor's differentiation of `_lstm_scan_autodiff`: ``grad_clip`` at every
    step clips the total gradient reaching h_t (from the output and from step t+1) and the one
    reaching c_t from step t+1. But it reuses the forward's gates instead of recomputing them,
    has one (B, 4H) x (4H, H) product per step, and leaves the sums over time (the gradient of
    ``lstm_U`` here; of ``lstm_W``, ``lstm_b`` and the input outside) to single large products.

    Returns
    -------
    d_state_below : (T, B, 4H)
    dU : (H, 4H)
    """
    zeros = pt.zeros_like(h[0])
    c_prev = pt.concatenate([zeros[None], c[:-1]], axis=0)
    h_prev = pt.concatenate([zeros[None], h[:-1]], axis=0)
    Ut = U.T

    if kernel == "c":
        cell_grad = LSTMCellGrad(clip=clip)

        def bstep(m_, act_, tc_, cp_, dho_, dh_, dc_, Ut):
            dpre, dh_carry, dc_prev = cell_grad(act_, tc_, cp_, dho_, dh_, dc_, m_)
            return dpre, dh_carry + pt.dot(dpre, Ut), dc_prev
    else:
        def bstep(m_, act_, tc_, cp_, dho_, dh_, dc_, Ut):
            i, f, o, g = act_[:, 0 * H:1 * H], act_[:, 1 * H:2 * H], act_[:, 2 * H:3 * H], act_[:, 3 * H:4 * H]
            mm, nm = m_[:, None], (1.0 - m_)[:, None]
            gh = _clip_value(dho_ + dh_, clip)   # total gradient reaching h_t, clipped
            gc = _clip_value(dc_, clip)          # gradient reaching c_t from step t+1, clipped
            dc = gc + mm * gh * o * (1.0 - tc_ ** 2)
            dcm = mm * dc
            dpre = pt.concatenate([dcm * g * i * (1.0 - i), dcm * cp_ * f * (1.0 - f),
                                   mm * gh * tc_ * o * (1.0 - o), dcm * i * (1.0 - g ** 2)], axis=1)
            return dpre, nm * gh + pt.dot(dpre, Ut), nm * dc + dcm * f

    dpre, _, _ = pytensor.scan(bstep, sequences=[mask, act, tc, c_prev, dh_out],
                               outputs_info=[None, zeros, zeros], non_sequences=[Ut],
                               go_backwards=True, name="lstm_backward", strict=True,
                               return_updates=False, mode=mode)
    dpre = dpre[::-1]
    n = dpre.shape[0] * dpre.shape[1]
    dU = pt.dot(h_prev.reshape((n, H)).T, dpre.reshape((n, 4 * H)))
    return dpre, dU


def _clip_value(g, clip):
    # The forward `grad_clip`'s effect on a gradient, applied where the manual backward meets it.
    return pt.clip(g, -clip, clip) if clip > 0 else g


def lstm_layer(tparams, emb, mask, clip=0.0, backward=None, kernel="graph", mode=None):
    """The tutorial's LSTM over time; on masked steps h and c carry over unchanged.

    Parameters
    ----------
    emb : tensor, shape (T, B, E)
    mask : tensor, shape (T, B)
    clip : float
        Gradient clipping bound on h and c at every step (0 = none).
    backward : {"manual", "autodiff", "none"}, optional
        How its gradient is built (default `LSTM_BACKWARD`). "manual": the forward scan is wrapped
        in an inlined `OpFromGraph` whose pullback is `_lstm_backward` (one backward scan that
        reuses the saved gates). "autodiff": PyTensor differentiates the tutorial's scan.
        "none": a forward scan that saves nothing, for graphs that are not differentiated.
    kernel : {"graph", "c"}
        The step's elementwise part as PyTensor ops, or as `LSTMCell` / `LSTMCellGrad` (C
        backend only). Ignored by "autodiff".
    mode : PyTensor Mode, optional
        Compilation mode of the scans' inner functions (the C backend compiles them with
        ``Mode("cvm", "fast_run")`` unless told; see `lstm_adv.graph.get_mode`).

    Returns
    -------
    tensor, shape (T, B, H)
    """
    H = int(tparams["lstm_U"].get_value(borrow=True).shape[0])
    # The input projection of every step at once, as the tutorial does, outside the scan.
    state_below = pt.dot(emb, tparams["lstm_W"]) + tparams["lstm_b"]
    U = tparams["lstm_U"]
    backward = backward or LSTM_BACKWARD
    if backward == "autodiff":
        return _lstm_scan_autodiff(state_below, mask, U, H, clip, mode)
    if backward == "none":
        return _lstm_forward(state_below, mask, U, H, kernel, save=False, mode=mode)
    if backward != "manual":
        raise ValueError(f"backward must be 'manual', 'autodiff' or 'none', got {backward!r}")

    sb_in, mask_in, U_in = state_below.type(), mask.type(), U.type()
    outs = list(_lstm_forward(sb_in, mask_in, U_in, H, kernel, save=True, mode=mode))

    # Deviation: the tutorial let Theano differentiate the scan; we give the LSTM a hand-written
    # backward scan (same arithmetic, equal to float rounding; tests/test_backends.py and the
    # finite-difference checks in tests/test_model.py hold it to that).
    def pullback(inputs, outputs, cotangents):
        _, m, u = inputs
        h, c, act, tc = outputs
        dh_out = cotangents[0]
        if isinstance(dh_out.type, DisconnectedType):
            return [pt.zeros_like(v) for v in inputs]
        dsb, dU = _lstm_backward(m, u, h, c, act, tc, dh_out, H, clip, kernel, mode)
        # The mask is data: its gradient is never asked for (zeros keep the pattern connected).
        return [dsb, pt.zeros_like(m), dU]

    op = OpFromGraph([sb_in, mask_in, U_in], outs, inline=True, pullback=pullback, name="lstm")
    return op(state_below, mask, U)[0]


def rnn_layer(tparams, emb, mask, clip=0.0, mode=None):
    """A vanilla tanh RNN (the original code's alternative encoder), masked like the LSTM.

    Parameters and return value as `lstm_layer`.
    """
    H = tparams["rnn_U"].shape[0]
    state_below = pt.dot(emb, tparams["rnn_W"]) + tparams["rnn_b"]
    U = tparams["rnn_U"]

    def step(m_, x_, h_, U):
        h = pt.tanh(pt.dot(h_, U) + x_)
        h = m_[:, None] * h + (1.0 - m_)[:, None] * h_
        return _clip(h, clip)

    zeros = pt.zeros((emb.shape[1], H), dtype=emb.dtype)
    h = pytensor.scan(step, sequences=[mask, state_below], outputs_info=[zeros], non_sequences=[U],
                      name="rnn_layer", strict=True, return_updates=False, mode=mode)
    return h


ENCODERS = {"lstm": lstm_layer, "rnn": rnn_layer}


def dropout(h, use_noise, rng):
    """The tutorial's dropout: keep 0.5 when training, scale by 0.5 at test time.

    Parameters
    ----------
    h : tensor, shape (B, H)
    use_noise : scalar tensor or bool
        True/1 draws a mask; False/0 multiplies by 0.5.
    rng : shared RandomGenerator variable, or None when ``use_noise`` is statically False

    Returns
    -------
    out : tensor, shape (B, H)
    next_rng : the RNG's next state (None when no mask was drawn), to be used as its update
    """
    if isinstance(use_noise, bool) and not use_noise:
        return h * 0.5, None
    draw = pt.random.uniform(0.0, 1.0, size=h.shape, rng=rng)
    next_rng = draw.owner.outputs[0]
    keep = pt.cast(draw < 0.5, h.dtype)
    if isinstance(use_noise, bool):
        return h * keep, next_rng
    return pt.switch(use_noise, h * keep, h * 0.5), next_rng


def dropout_keep(shape, dtype, rng):
    """A dropout keep mask (1 with probability 0.5) drawn once, for `classify`'s ``keep``.

    Returns ``(keep, next_rng)``; the VAT branch applies one mask to all its passes.
    """
    draw = pt.random.uniform(0.0, 1.0, size=shape, rng=rng)
    return pt.cast(draw < 0.5, dtype), draw.owner.outputs[0]


def classify(tparams, emb, mask, cfg, use_noise=False, rng=None, clip_output=False, backward=None, keep=None,
             logits=False):
    """Encoder, masked mean pooling, dropout and the softmax classifier.

    Parameters
    ----------
    emb : tensor, shape (T, B, E)
        Embedded (possibly perturbed, possibly `clip_input`-ed) input.
    mask : tensor, shape (T, B)
    use_noise, rng : see `dropout`; ignored when ``cfg.use_dropout`` is 0.
    keep : tensor, shape (B, H), optional
        A dropout mask drawn beforehand (`dropout_keep`), used instead of a draw from ``rng``.
    logits : bool
        Return the classifier's logits (B, 2) instead of the probabilities (VAT's KL uses them).
    clip_output : bool
        Clip the gradient of the encoder outputs (the original code did, on the clean branch).
    backward : {None, "manual", "autodiff", "none"}
        How the LSTM's gradient is built (see `lstm_layer`); "none" for graphs that are never
        differentiated (evaluation).

    Returns
    -------
    probs : tensor, shape (B, 2)
    next_rng : the dropout RNG's next state, or None
    """
    mode = _scan_mode(cfg)
    # The embedding clip is not here: the original code clipped the embedded input once, before
    # both branches (`lstm_adv.adversarial.build_objective`, `clip_input`).
    if cfg.encoder == "lstm":
        h = lstm_layer(tparams, emb, mask, cfg.clip, backward=backward, kernel=lstm_kernel(cfg), mode=mode)
    else:
        h = ENCODERS[cfg.encoder](tparams, emb, mask, cfg.clip, mode=mode)
    if clip_output:
        h = _clip(h, cfg.clip)
    pooled = (h * mask[:, :, None]).sum(axis=0) / mask.sum(axis=0)[:, None]
    next_rng = None
    if cfg.use_dropout and keep is not None:
        if isinstance(use_noise, bool):
            pooled = pooled * keep if use_noise else pooled * 0.5
        else:
            pooled = pt.switch(use_noise, pooled * keep, pooled * 0.5)
    elif cfg.use_dropout:
        pooled, next_rng = dropout(pooled, use_noise, rng)
    z = pt.dot(pooled, tparams["U"]) + tparams["b"]
    return (z if logits else softmax_rows(z)), next_rng


def softmax_rows(z):
    """Row-wise softmax, exp(z - max) / sum(exp(z - max)), written out.

    ``pt.special.softmax`` is an `OpFromGraph` that the C backend runs as a separate function
    compiled in PyTensor's *default* mode (Numba), costing milliseconds per call; written out
    it compiles with the rest of the graph (`lstm_adv.graph.get_mode` keeps PyTensor from
    folding it back). Normalising over the last axis only: ``pt.special.softmax`` without an
    axis normalises over all axes.
    """
    e = pt.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax_rows(z):
    """Row-wise log-softmax, z - max - log(sum(exp(z - max))): exact where the softmax underflows."""
    s = z - z.max(axis=-1, keepdims=True)
    return s - pt.log(pt.exp(s).sum(axis=-1, keepdims=True))


def lstm_kernel(cfg):
    """The LSTM step's elementwise implementation for a configuration: "c" on mode C, else "graph"."""
    from .graph import resolve_mode_name

    return LSTM_KERNEL if resolve_mode_name(cfg) == "C" else "graph"


# The C backend's default for the LSTM step (tests set "graph" to compare the two).
LSTM_KERNEL = "c"


def _scan_mode(cfg):
    # The C backend compiles a scan's inner function in its own default mode unless given one;
    # give it ours (with its exclusions). Numba and JAX compile the inner graph themselves.
    from .graph import get_mode, resolve_mode_name

    return get_mode(cfg) if resolve_mode_name(cfg) == "C" else None


def nll(probs, y):
    """Mean negative log-likelihood, with the tutorial's +1e-8 inside the log.

    Parameters
    ----------
    probs : tensor, shape (B, 2)
    y : int64 tensor, shape (B,)

    Returns
    -------
    scalar tensor
    """
    off = 1e-6 if probs.dtype == "float16" else 1e-8  # as the tutorial
    return -pt.log(probs[pt.arange(y.shape[0]), y] + off).mean()

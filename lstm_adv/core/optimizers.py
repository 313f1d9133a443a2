"""The tutorial's update rules (adadelta, rmsprop, sgd), as lists of shared-variable updates.

Deviation: the tutorial compiled each rule as two functions (``f_grad_shared`` storing the
gradients, then ``f_update``); we return the same arithmetic as one list of updates so the
training step is a single compiled call. The running averages are updated first and the step
uses the updated values, exactly as the two-call version did.

Each builder returns ``(updates, state)``: ``state`` is an ordered dict of the optimizer's
shared variables, named as the tutorial named them (``Wemb_rup2`` ...), for checkpoints.

Lazy rows (adadelta only): given ``rows={"Wemb": (ids, g_rows)}`` (the distinct rows the batch
uses and their gradient), adadelta updates only those rows of ``Wemb`` and of its accumulators.
A row without gradient does not move under adadelta (its step is ``-sqrt(..)/sqrt(..) * 0``);
only its two accumulators decay by rho. `LazyRows` counts the updates and, per row, the update
at which its accumulators were last made current; the missed ``k`` decays are applied as one
factor ``rho**k`` when the row is next used, and only then. The result equals the dense update to
float rounding (``rho**k`` rounded once instead of ``k`` products; bitwise where k <= 1).
Checkpoints save the lazy state as it is, the counters with the accumulators
(`lstm_adv.core.compiled.Model.get_opt_state`): bringing the rows up to date there would round
``rho**a * rho**b`` instead of ``rho**(a+b)``, so that saving would change the run (`caught_up`
gives the dense view without changing anything). rmsprop (with momentum, rows keep moving without
gradient) and sgd stay dense.
"""

from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.compile import optdb
from pytensor.graph.rewriting.basic import WalkingGraphRewriter, node_rewriter
from pytensor.link.c.op import COp
from pytensor.utils import hash_from_code

from .kernels import c_types, module_hash


def _zeros_like(p, suffix):
    v = p.get_value()
    return pytensor.shared(np.zeros_like(v), name=f"{p.name}_{suffix}", shape=v.shape)


# adadelta's constants, as the tutorial writes them; the graph, `AdadeltaRows.perform` and its C
# (formatted in: `_rows_support`) all take them from here.
RHO = 0.95            # the decay
RHO_NEW = 0.05        # the new term's weight, written as the tutorial writes it (1 - 0.95 is not 0.05 in doubles)
ADADELTA_EPS = 1e-6   # inside both square roots


def caught_up(acc, count, last):
    """An accumulator of a lazy parameter with its pending decays applied: ``acc * rho**(count - last)``
    per row, a new array (to float rounding what the dense update holds; `LazyRows`).

    Parameters
    ----------
    acc : ndarray, shape (n_rows, ...)
    count : int
        `LazyRows.count`'s value.
    last : ndarray of int, shape (n_rows,)
        `LazyRows.last`'s value.
    """
    acc = np.asarray(acc)
    k = (np.int64(count) - np.asarray(last, dtype=np.int64)).astype(acc.dtype)
    return acc * (acc.dtype.type(RHO) ** k).reshape((-1,) + (1,) * (acc.ndim - 1))


class OptState(OrderedDict):
    """The optimizer's checkpointed shared variables (tutorial names), plus ``lazy``: name ->
    `LazyRows` for parameters updated by rows (empty for dense updates)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = OrderedDict()


class LazyRows:
    """Bookkeeping of adadelta's lazy row update for one matrix parameter (see the module docstring).

    Attributes
    ----------
    count : shared int64 scalar
        Updates done.
    last : shared int64 vector, one per row
        The value of ``count`` when the row's accumulators were last made current.
    accumulators : list of shared variables
        Those decayed by ``RHO`` per update without gradient.
    """

    def __init__(self, name, n_rows, accumulators):
        self.count = pytensor.shared(np.int64(0), name=f"{name}_lazy_count")
        self.last = pytensor.shared(np.zeros(n_rows, dtype=np.int64), name=f"{name}_lazy_last", shape=(n_rows,))
        self.accumulators = list(accumulators)

    def decay(self, ids, dtype):
        """``rho ** k`` per row in ``ids`` (k: updates missed), shape (len(ids), 1)."""
        k = pt.cast(self.count - self.last[ids], dtype)
        return (pt.constant(np.asarray(RHO, dtype=dtype)) ** k)[:, None]

    def values(self):
        """The counters as a checkpoint saves them: ``{count.name: int64 (), last.name: int64 (n_rows,)}``."""
        return {v.name: np.array(v.get_value()) for v in (self.count, self.last)}

    def set_values(self, values):
        """Set the counters from `values`' names; a state without them (a dense run's, or one saved
        brought up to date by an older version) has every row current (`reset`)."""
        if self.count.name not in values:
            self.reset()
            return
        self.count.set_value(np.int64(values[self.count.name]))
        self.last.set_value(np.asarray(values[self.last.name], dtype=np.int64))

    def reset(self):
        """After the accumulators were set from outside (a checkpoint): every row is current."""
        self.count.set_value(np.int64(0))
        self.last.set_value(np.zeros_like(self.last.get_value(borrow=True)))



_ROWS_SUPPORT = r"""
// Statement for statement what PyTensor's fused elementwise code does for the dense update
// (double literals, each temporary rounded to T), so that a row updated at every step (k = 0,
// decay 1) gets the same bits as under the dense update.
template <typename T>
static void lstm_adv_adadelta_rows(npy_intp n, npy_intp E, const npy_int64* __restrict__ ids,
                                   const T* __restrict__ G, const T* __restrict__ D,
                                   T* __restrict__ P, T* __restrict__ RU, T* __restrict__ RG) {
    for (npy_intp r = 0; r < n; r++) {
        const npy_int64 i = ids[r];
        T* __restrict__ p = P + i * E;
        T* __restrict__ ru = RU + i * E;
        T* __restrict__ rg = RG + i * E;
        const T* __restrict__ g = G + r * E;
        const T d = D[r];
        for (npy_intp j = 0; j < E; j++) {
            const T rgj = rg[j] * d;
            const T ruj = ru[j] * d;
            const T gj = g[j];
            const T t1 = gj * gj;
            const T t2 = (@RHO_NEW@) * t1;
            const T t3 = (@RHO@) * rgj;
            const T t4 = (@EPS@) + t3 + t2;
            const T t5 = std::sqrt((T)t4);
            const T t6 = (@EPS@) + ruj;
            const T t7 = std::sqrt((T)t6);
            const T t8 = -t7;
            const T t9 = t8 / t5;
            const T st = t9 * gj;
            const T t11 = st * st;
            const T t12 = (@RHO_NEW@) * t11;
            const T t13 = (@RHO@) * ruj;
            ru[j] = t13 + t12;
            p[j] = p[j] + st;
            rg[j] = t3 + t2;
        }
    }
}
"""


def _rows_support():
    """`_ROWS_SUPPORT` with adadelta's constants formatted in (``repr``: the double literals the fused
    elementwise code writes)."""
    return (_ROWS_SUPPORT.replace("@RHO_NEW@", repr(RHO_NEW)).replace("@RHO@", repr(RHO))
            .replace("@EPS@", repr(ADADELTA_EPS)))


class AdadeltaRows(COp):
    """adadelta on the rows ``ids`` of a matrix, in place: ``(p, ru2, rg2, ids, g_rows, decay) -> p, ru2, rg2``.

    The C backend's fused version of the lazy row update in `adadelta` (one pass over the
    rows, vectorised, no gathered copies); the same arithmetic as the graph version, equal to
    float rounding. ``decay`` (len(ids),) is `LazyRows.decay` for the rows; ``ids`` distinct.
    """

    __props__ = ("inplace",)

    def __init__(self, inplace=False):
        self.inplace = bool(inplace)
        if self.inplace:  # set by the `_adadelta_rows_inplace` rewrite (PyTensor refuses it in a user graph)
            self.destroy_map = {0: [0], 1: [1], 2: [2]}
        super().__init__()

    def make_node(self, p, ru2, rg2, ids, g, decay):
        ins = [pt.as_tensor_variable(v) for v in (p, ru2, rg2, ids, g, decay)]
        return Apply(self, ins, [ins[0].type(), ins[1].type(), ins[2].type()])

    def perform(self, node, inputs, outputs):
        p, ru2, rg2, ids, g, d = inputs
        if not self.inplace:
            p, ru2, rg2 = p.copy(), ru2.copy(), rg2.copy()
        t = p.dtype.type
        dd = d[:, None]
        rg_r, ru_r = rg2[ids] * dd, ru2[ids] * dd
        rgn = t(RHO) * rg_r + t(RHO_NEW) * (g * g)
        st = -np.sqrt(ru_r + t(ADADELTA_EPS)) / np.sqrt(rgn + t(ADADELTA_EPS)) * g
        rg2[ids] = rgn
        ru2[ids] = t(RHO) * ru_r + t(RHO_NEW) * (st * st)
        p[ids] = p[ids] + st
        for out, v in zip(outputs, (p, ru2, rg2)):
            out[0] = v

    def c_support_code(self, **kwargs):
        return "#include <cmath>\n" + _rows_support()

    def c_code_cache_version(self):
        # Keyed on its C (the support code, constants formatted in) and on this module, whose
        # c_code writes the rest: an edit compiles anew, never a hand-bumped number.
        return (hash_from_code(self.c_support_code()), module_hash(__file__))

    def c_code(self, node, name, inp, out, sub):
        p, ru2, rg2, ids, g, d = inp
        po, ruo, rgo = out
        fail = sub["fail"]
        if self.inplace:
            take = f"""Py_XDECREF({po}); {po} = {p}; Py_INCREF({po});
            Py_XDECREF({ruo}); {ruo} = {ru2}; Py_INCREF({ruo});
            Py_XDECREF({rgo}); {rgo} = {rg2}; Py_INCREF({rgo});"""
        else:
            take = f"""Py_XDECREF({po}); {po} = (PyArrayObject*)PyArray_NewCopy({p}, NPY_CORDER);
            Py_XDECREF({ruo}); {ruo} = (PyArrayObject*)PyArray_NewCopy({ru2}, NPY_CORDER);
            Py_XDECREF({rgo}); {rgo} = (PyArrayObject*)PyArray_NewCopy({rg2}, NPY_CORDER);
            err = !({po} && {ruo} && {rgo});"""
        T, typenum = c_types(node.inputs[0].dtype)
        return f"""
        {{
        PyArrayObject *I = (PyArrayObject*)PyArray_FromAny((PyObject*){ids}, PyArray_DescrFromType(NPY_INT64), 1, 1,
                                                           NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED, NULL);
        PyArrayObject *G = (PyArrayObject*)PyArray_FromAny((PyObject*){g}, PyArray_DescrFromType({typenum}), 2, 2,
                                                           NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED, NULL);
        PyArrayObject *D = (PyArrayObject*)PyArray_FromAny((PyObject*){d}, PyArray_DescrFromType({typenum}), 1, 1,
                                                           NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED, NULL);
        int err = !(I && G && D);
        npy_intp n = 0, E = 0, R = 0;
        if (!err) {{ {take} }}
        if (!err) {{
            R = PyArray_DIMS({po})[0]; E = PyArray_DIMS({po})[1]; n = PyArray_DIMS(I)[0];
            if (!PyArray_IS_C_CONTIGUOUS({po}) || !PyArray_IS_C_CONTIGUOUS({ruo}) || !PyArray_IS_C_CONTIGUOUS({rgo})) {{
                PyErr_SetString(PyExc_ValueError, "AdadeltaRows: parameters must be C-contiguous"); err = 1;
            }} else if (PyArray_DIMS(G)[0] != n || PyArray_DIMS(G)[1] != E || PyArray_DIMS(D)[0] != n ||
                       PyArray_DIMS({ruo})[0] != R || PyArray_DIMS({rgo})[0] != R ||
                       PyArray_DIMS({ruo})[1] != E || PyArray_DIMS({rgo})[1] != E) {{
                PyErr_SetString(PyExc_ValueError, "AdadeltaRows: inconsistent shapes"); err = 1;
            }} else {{
                const npy_int64* ix = (const npy_int64*)PyArray_DATA(I);
                for (npy_intp r = 0; r < n; r++) if (ix[r] < 0 || ix[r] >= R) {{
                    PyErr_SetString(PyExc_IndexError, "AdadeltaRows: row index out of range"); err = 1; break;
                }}
            }}
        }}
        if (!err) {{
            lstm_adv_adadelta_rows<{T}>(n, E, (const npy_int64*)PyArray_DATA(I), ({T}*)PyArray_DATA(G),
                                        ({T}*)PyArray_DATA(D), ({T}*)PyArray_DATA({po}), ({T}*)PyArray_DATA({ruo}),
                                        ({T}*)PyArray_DATA({rgo}));
        }}
        Py_XDECREF(I); Py_XDECREF(G); Py_XDECREF(D);
        if (err) {{ {fail} }}
        }}
        """


@node_rewriter([AdadeltaRows], inplace=True)
def _adadelta_rows_inplace(fgraph, node):
    if node.op.inplace or fgraph.has_destroyers(node.inputs[:3]):
        return False
    return AdadeltaRows(inplace=True)(*node.inputs, return_list=True)


optdb.register("lstm_adv_adadelta_rows_inplace",
               WalkingGraphRewriter(_adadelta_rows_inplace, failure_callback=WalkingGraphRewriter.warn_inplace),
               "fast_run", "inplace", position=70.7)


def adadelta(tparams, grads, lrate=None, rows=None, kernel="graph"):
    """ADADELTA (Zeiler 2012) with rho=0.95, eps=1e-6; ``lrate`` is unused, as in the tutorial.

    ``rows``: optional dict name -> (ids, g_rows), ids an int vector of DISTINCT row indices and
    g_rows (len(ids), ...) their gradient (every other row's gradient is zero): that parameter is
    updated lazily by rows (module docstring); its `LazyRows` is in the returned state's ``lazy``.
    ``kernel="c"`` (mode C) does that row update with the fused in-place `AdadeltaRows`.
    """
    rows = rows or {}
    state, updates = OptState(), []
    for name, p in tparams.items():
        ru2, rg2 = _zeros_like(p, "rup2"), _zeros_like(p, "rgrad2")
        state[ru2.name], state[rg2.name] = ru2, rg2
        if name in rows:
            ids, g = rows[name]
            lazy = state.lazy[name] = LazyRows(name, p.get_value(borrow=True).shape[0], (ru2, rg2))
            d = lazy.decay(ids, p.dtype)
            book = [(lazy.last, pt.set_subtensor(lazy.last[ids], lazy.count + 1)), (lazy.count, lazy.count + 1)]
            if kernel == "c":
                p_new, ru2_new, rg2_new = AdadeltaRows()(p, ru2, rg2, ids, g, d[:, 0])
                updates += [(rg2, rg2_new), (ru2, ru2_new), (p, p_new)] + book
                continue
            ru2_r, rg2_r = ru2[ids] * d, rg2[ids] * d
            rg2_new = RHO * rg2_r + RHO_NEW * g ** 2
            step = -pt.sqrt(ru2_r + ADADELTA_EPS) / pt.sqrt(rg2_new + ADADELTA_EPS) * g
            updates += [(rg2, pt.set_subtensor(rg2[ids], rg2_new)),
                        (ru2, pt.set_subtensor(ru2[ids], RHO * ru2_r + RHO_NEW * step ** 2)),
                        (p, pt.set_subtensor(p[ids], p[ids] + step))] + book
            continue
        g = grads[name]
        rg2_new = RHO * rg2 + RHO_NEW * g ** 2
        step = -pt.sqrt(ru2 + ADADELTA_EPS) / pt.sqrt(rg2_new + ADADELTA_EPS) * g
        updates += [(rg2, rg2_new), (ru2, RHO * ru2 + RHO_NEW * step ** 2), (p, p + step)]
    return updates, state


def rmsprop(tparams, grads, lrate=None, rows=None, kernel="graph"):
    """The tutorial's RMSProp variant (Graves 2013: centred, with momentum 0.9, step 1e-4)."""
    state, updates = OptState(), []
    for name, p in tparams.items():
        g = grads[name]
        rg, rg2, ud = _zeros_like(p, "rgrad"), _zeros_like(p, "rgrad2"), _zeros_like(p, "updir")
        state[rg.name], state[rg2.name], state[ud.name] = rg, rg2, ud
        rg_new = 0.95 * rg + 0.05 * g
        rg2_new = 0.95 * rg2 + 0.05 * g ** 2
        ud_new = 0.9 * ud - 1e-4 * g / pytensor.tensor.sqrt(rg2_new - rg_new ** 2 + 1e-4)
        updates += [(rg, rg_new), (rg2, rg2_new), (ud, ud_new), (p, p + ud_new)]
    return updates, state


def sgd(tparams, grads, lrate, rows=None, kernel="graph"):
    """Plain stochastic gradient descent with a fixed learning rate."""
    return [(p, p - lrate * grads[name]) for name, p in tparams.items()], OptState()


# The rules that accept ``rows=`` (lazy row updates); the others ignore it and stay dense.
LAZY_ROWS = ("adadelta",)


OPTIMIZERS = {"adadelta": adadelta, "rmsprop": rmsprop, "sgd": sgd}

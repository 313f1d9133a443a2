"""The tutorial's LSTM (and the vanilla RNN) over time, with the LSTM's backward pass written out.

`lstm_layer` builds the forward scan and, by default, an inlined `OpFromGraph` whose pullback
is `_lstm_backward` (one backward scan reusing the saved gates); `LSTMOptions` carries the
choices the compiled `lstm_adv.core.compiled.Model` makes once (backward, C kernel, scan mode).
Shapes: ``T`` time steps, ``B`` reviews, ``E`` = wdim, ``H`` = hdim.
"""

from dataclasses import dataclass

import pytensor
import pytensor.tensor as pt
from pytensor.compile.builders import OpFromGraph
from pytensor.gradient import DisconnectedType, grad_clip

from .backend import get_mode, resolve_mode_name
from .kernels import LSTMCell, LSTMCellGrad
from .sequence_ops import LSTMSeq


@dataclass(frozen=True)
class LSTMOptions:
    """How the encoder's graph is built; the compiled `Model` chooses them once.

    Attributes
    ----------
    backward : {"manual", "autodiff"}
        How the LSTM's gradient is built (see `lstm_layer`); "manual" is the default.
    kernel : {"graph", "c", "seq"}
        The step's elementwise part as PyTensor ops, or as `LSTMCell` / `LSTMCellGrad` in the
        scans (mode C only), or no scan: the whole recurrence and its backward as `LSTMSeq` /
        `LSTMSeqGrad` (mode C only; the default there).
    scan_mode : PyTensor Mode, optional
        Compilation mode of the scans' inner functions. The C backend compiles a scan's inner
        function in its own default mode unless given one, so mode C passes its own (with its
        exclusions); Numba and JAX compile the inner graph themselves (None).
    c_backend : bool
        Mode C: the embedding lookup and its gradient use the C Ops `GatherRows` / `ScatterRows`
        too (`lstm_adv.core.model.embed`).
    """

    backward: str = "manual"
    kernel: str = "graph"
    scan_mode: object = None
    c_backend: bool = False

    def __post_init__(self):
        if self.backward not in ("manual", "autodiff"):
            raise ValueError(f"backward must be 'manual' or 'autodiff', got {self.backward!r}")
        if self.kernel not in ("graph", "c", "seq"):
            raise ValueError(f"kernel must be 'graph', 'c' or 'seq', got {self.kernel!r}")

    @classmethod
    def for_config(cls, cfg, backward="manual", kernel="seq", mode=None):
        """The options a configuration's backend implies.

        On mode C: ``kernel`` ("seq": the whole-sequence C Ops of `lstm_adv.core.kernels`; "c":
        its per-step C kernels inside the scans; or "graph") and the
        scans compiled in the configuration's mode (``mode``, default `get_mode`); on the other
        modes PyTensor ops, and the backend compiles the scans' inner graphs itself.
        """
        if resolve_mode_name(cfg) == "C":
            return cls(backward, kernel, mode if mode is not None else get_mode(cfg), c_backend=True)
        return cls(backward, "graph", None)


def clip_gradient(v, clip):
    """``v`` with its gradient clipped elementwise to [-clip, clip] (0 = unchanged)."""
    # Elementwise gradient clipping, where the original AdversarialNN code put it.
    return grad_clip(v, -clip, clip) if clip > 0 else v



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
        return clip_gradient(h, clip), clip_gradient(c, clip)

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



def lstm_layer(tparams, emb, mask, clip=0.0, backward="manual", kernel="graph", mode=None, projected=False):
    """The tutorial's LSTM over time; on masked steps h and c carry over unchanged.

    Parameters
    ----------
    emb : tensor, shape (T, B, E)
        With ``projected=True``: the input projection ``emb @ lstm_W + lstm_b`` itself, (T, B, 4H)
        (the word attacks compute it once per word, `lstm_adv.core.compiled.Model.f_prob_projected`).
    mask : tensor, shape (T, B)
    clip : float
        Gradient clipping bound on h and c at every step (0 = none).
    backward : {"manual", "autodiff", "none"}
        How its gradient is built. "manual": the forward scan is wrapped
        in an inlined `OpFromGraph` whose pullback is `_lstm_backward` (one backward scan that
        reuses the saved gates). "autodiff": PyTensor differentiates the tutorial's scan.
        "none": a forward scan that saves nothing, for graphs that are not differentiated.
    kernel : {"graph", "c", "seq"}
        The step's elementwise part as PyTensor ops, or as `LSTMCell` / `LSTMCellGrad` (C
        backend only); "seq": no scan, the recurrence and (with "manual") its backward each one
        C loop over time, `LSTMSeq` / `LSTMSeqGrad` (C backend only; same formulas). Ignored
        by "autodiff".
    mode : PyTensor Mode, optional
        Compilation mode of the scans' inner functions (the C backend compiles them with
        ``Mode("cvm", "fast_run")`` unless told; see `lstm_adv.core.backend.get_mode`).

    Returns
    -------
    tensor, shape (T, B, H)
    """
    H = int(tparams["lstm_U"].get_value(borrow=True).shape[0])
    # The input projection of every step at once, as the tutorial does, outside the scan.
    state_below = emb if projected else pt.dot(emb, tparams["lstm_W"]) + tparams["lstm_b"]
    U = tparams["lstm_U"]
    if backward == "autodiff":
        return _lstm_scan_autodiff(state_below, mask, U, H, clip, mode)
    if backward not in ("manual", "none"):
        raise ValueError(f"backward must be 'manual', 'autodiff' or 'none', got {backward!r}")
    if kernel == "seq":
        # Deviation (speed only): no scan on mode C; the recurrence and its backward are each one C
        # loop over time (same formulas; tests/test_kernels.py holds them to the scan path).
        if backward == "none":
            return LSTMSeq(save=False)(state_below, mask, U)
        return LSTMSeq(clip=clip)(state_below, mask, U)[0]
    if backward == "none":
        return _lstm_forward(state_below, mask, U, H, kernel, save=False, mode=mode)

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


def rnn_layer(tparams, emb, mask, clip=0.0, mode=None, projected=False):
    """A vanilla tanh RNN (the original code's alternative encoder), masked like the LSTM.

    Parameters and return value as `lstm_layer`.
    """
    H = tparams["rnn_U"].shape[0]
    state_below = emb if projected else pt.dot(emb, tparams["rnn_W"]) + tparams["rnn_b"]
    U = tparams["rnn_U"]

    def step(m_, x_, h_, U):
        h = pt.tanh(pt.dot(h_, U) + x_)
        h = m_[:, None] * h + (1.0 - m_)[:, None] * h_
        return clip_gradient(h, clip)

    zeros = pt.zeros((emb.shape[1], H), dtype=emb.dtype)
    h = pytensor.scan(step, sequences=[mask, state_below], outputs_info=[zeros], non_sequences=[U],
                      name="rnn_layer", strict=True, return_updates=False, mode=mode)
    return h


ENCODERS = {"lstm": lstm_layer, "rnn": rnn_layer}


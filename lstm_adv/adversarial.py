"""The paper's adversarial objective, built from two branches of one graph.

    L~ = alpha * L(theta, e) + (1 - alpha) * L(theta, e + delta),   e = Wemb[x],
    delta = eps * sign(dL(theta, e)/de)             (adv_norm=sign, the paper)
    delta = eps * g / ||g||_2 per review            (adv_norm=l2, Miyato et al. 2017)

Both branches read the same shared parameters (`lstm_adv.model.to_shared`) and meet at the
cost; the adversarial branch adds no parameter, only its own dropout draw. ``delta`` is
computed from the clean branch and held constant with ``disconnected_grad``.
"""

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

from .model import classify, clip_input, embed, nll

NORMS = ("sign", "l2")


def perturbation(grad, mask, eps, norm="sign"):
    """The adversarial step on the embedded input, zero on padded steps.

    Works on numpy arrays (returns an array) and on PyTensor tensors (returns a tensor).

    Parameters
    ----------
    grad : array or tensor, shape (T, B, E)
        Gradient of the clean cost with respect to the embedded input.
    mask : array or tensor, shape (T, B)
    eps : float
        Step size, >= 0.
    norm : {"sign", "l2"}
        ``sign``: eps * sign(grad) elementwise (the paper). ``l2``: eps * grad / ||grad||_2, the
        norm taken per review over time and embedding axes (Miyato et al. 2017).

    Returns
    -------
    delta : same kind as ``grad``, shape (T, B, E)
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if isinstance(eps, (pt.TensorVariable,)) or not np.isscalar(eps):
        raise TypeError(f"eps must be a Python or numpy scalar, got {type(eps).__name__}")
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be finite and >= 0, got {eps}")
    if grad.ndim != 3 or mask.ndim != 2:
        raise ValueError(f"grad must be (T, B, E) and mask (T, B); got ndim {grad.ndim} and {mask.ndim}")
    xp = np if isinstance(grad, np.ndarray) else pt
    m = mask[:, :, None]
    if norm == "sign":
        delta = eps * xp.sign(grad)
    else:
        g = grad * m
        length = xp.sqrt((g ** 2).sum(axis=(0, 2)))
        delta = eps * g / (length + 1e-12)[None, :, None]
    out = delta * m
    return out.astype(grad.dtype) if xp is np else pt.cast(out, grad.dtype)


@dataclass
class Objective:
    """Symbolic pieces of the training objective for one minibatch.

    Attributes
    ----------
    cost_clean, cost_adv, cost : scalar tensors
        L(e), L(e + delta) and the training objective (with the ``reg`` penalty).
        Without the adversarial term ``cost_adv`` is ``cost_clean``.
    grads : OrderedDict of str -> tensor
        The gradient used for training, per parameter, with ``delta`` held constant.
    delta : tensor, shape (T, B, E)
    emb : tensor, shape (T, B, E)
        The clean embedded input.
    rng_updates : OrderedDict
        Dropout RNG variable -> its next state.
    """

    cost_clean: object
    cost_adv: object
    cost: object
    grads: OrderedDict
    delta: object
    emb: object
    rng_updates: OrderedDict


def build_objective(tparams, x, mask, y, cfg, rngs, use_noise=True):
    """The paper's objective and its gradients, sharing one clean backward pass.

    The gradients equal those of the authors' graph (windweller/AdversarialNN, ``build_model``):
    one cost ``alpha * L_clean + (1 - alpha) * L_adv``, one gradient, ``grad_clip`` on the
    embedded input (once, before both branches), on h and c at every step and on the clean
    branch's LSTM outputs. So every clip sees a gradient already scaled by alpha or 1 - alpha,
    and the embedding clip sees the sum of both branches' gradients (``adv_emb_grad=1``).

    Parameters
    ----------
    tparams : OrderedDict of shared variables (see `lstm_adv.model.to_shared`)
    x : int64 tensor, shape (T, B)
    mask : tensor, shape (T, B)
    y : int64 tensor, shape (B,)
    cfg : Config
        Uses alpha, eps, adversarial, adv_norm, adv_emb_grad, reg, clip, use_dropout.
    rngs : dict with shared RNGs under "clean" and "adv"
        Each branch draws its own dropout mask.
    use_noise : bool or scalar tensor
        Dropout on (True) or off.

    Returns
    -------
    Objective
    """
    names, params = list(tparams), list(tparams.values())
    emb = embed(tparams, x)
    emb_in = clip_input(emb, cfg)
    # The original code also clipped the gradient of the clean branch's LSTM outputs.
    probs, next_clean = classify(tparams, emb_in, mask, cfg, use_noise, rngs["clean"], clip_output=True)
    cost_clean = nll(probs, y)
    rng_updates = OrderedDict()
    if next_clean is not None:
        rng_updates[rngs["clean"]] = next_clean
    penalty = cfg.reg * (tparams["U"] ** 2).sum() if cfg.reg > 0 else 0.0

    if not cfg.adversarial:
        grads = pytensor.grad(cost_clean + penalty, params)
        return Objective(cost_clean, cost_clean, cost_clean + penalty, OrderedDict(zip(names, grads)),
                         pt.zeros_like(emb), emb, rng_updates)

    a = float(cfg.alpha)
    rest = [p for n, p in zip(names, params) if n != "Wemb"]
    # One backward pass of the (weighted) clean branch gives both its parameter gradients and
    # the input gradient the perturbation follows. Deviation: the authors took the direction
    # from the unweighted L_clean in a separate gradient; alpha * L_clean has the same gradient
    # up to the scale, except where a clip inside the LSTM is active (tests/test_model.py
    # measures how often the sign then differs).
    if a > 0:
        g_in_clean, *g_clean = pytensor.grad(a * cost_clean, [emb_in] + rest)
        direction = g_in_clean
    else:
        direction = pytensor.grad(cost_clean, emb_in)
        g_in_clean, g_clean = pt.zeros_like(emb_in), [pt.zeros_like(p) for p in rest]
    delta = disconnected_grad(perturbation(direction, mask, float(cfg.eps), cfg.adv_norm))
    emb_adv = emb_in + delta
    if cfg.adv_emb_grad == 0:
        # The original code: Wemb learns only from the clean term (the paper: "only backprop
        # through the graph corresponding to the first term").
        emb_adv = disconnected_grad(emb_adv)
    probs_adv, next_adv = classify(tparams, emb_adv, mask, cfg, use_noise, rngs["adv"])
    cost_adv = nll(probs_adv, y)
    if next_adv is not None:
        rng_updates[rngs["adv"]] = next_adv
    if cfg.adv_emb_grad:
        g_in_adv, *g_adv = pytensor.grad((1.0 - a) * cost_adv, [emb_in] + rest)
        g_in = g_in_clean + g_in_adv
    else:
        g_adv = pytensor.grad((1.0 - a) * cost_adv, rest, disconnected_inputs="ignore")
        g_in = g_in_clean
    # Both branches' input gradients pass the embedding clip together, then reach Wemb's rows.
    g_wemb = pytensor.grad(None, tparams["Wemb"], known_grads={emb_in: g_in})

    grads = OrderedDict()
    it = iter(zip(g_clean, g_adv))
    for n in names:
        grads[n] = g_wemb if n == "Wemb" else sum(next(it))
    if cfg.reg > 0:
        grads["U"] = grads["U"] + 2.0 * cfg.reg * tparams["U"]
    cost = a * cost_clean + (1.0 - a) * cost_adv + penalty
    return Objective(cost_clean, cost_adv, cost, grads, delta, emb, rng_updates)

"""The paper's adversarial objective, built from two branches of one graph.

    L~ = alpha * L(theta, e) + (1 - alpha) * L(theta, e + delta),   e = Wemb[x],
    delta = eps * sign(dL(theta, e)/de)             (adv_norm=sign, the paper)
    delta = eps * g / ||g||_2 per review            (adv_norm=l2, Miyato et al. 2017)

Both branches read the same shared parameters (`lstm_adv.core.model.to_shared`) and meet at the
cost; the adversarial branch adds no parameter, only its own dropout draw. ``delta`` is
computed from the clean branch and held constant with ``disconnected_grad``.

``vat=1`` (virtual adversarial training, Miyato, Dai & Goodfellow, ICLR 2017) replaces the
second branch's term:

    L~ = L(theta, e) + vat_weight * KL(p(e) || p(e + r_vadv)),
    r_vadv = eps * g / ||g||_2 per review, g from `power_iteration` (a random unit d, probes xi*d)

with p(e) and r_vadv held constant. It needs no label, so unlabelled reviews can join its batch.
``ascc=1`` (Dong et al., ICLR 2021; `lstm_adv.core.ascc`) replaces it too:

    L~ = L(theta, e) + ascc_beta * KL(p(e) || p(e~)),   e~_i = sum_j w_ij * Wemb[S_ij],

the weights w (a point in the convex hull of each word's synonyms) found by ascc_k Adam steps and
held constant. ``emb_norm=1`` embeds normalised rows (`lstm_adv.core.model.normalize_embeddings`) in
every branch.
"""

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

from .ascc import ascc_term
from .model import classify, clip_input, dropout_keep, embed, kl_divergence, nll, softmax_rows

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


def unit_l2(v, mask):
    """``v`` masked and scaled to unit L2 norm per review (over time and embedding axes).

    Tensors, shape (T, B, E) and mask (T, B). Divides by the largest entry first, as Miyato et
    al.'s ``_scale_l2``, so that a tiny (float32) gradient is not lost; an all-zero review stays 0.
    """
    v = v * mask[:, :, None]
    a = abs(v).max(axis=(0, 2)) + 1e-30
    v = v / a[None, :, None]
    norm = pt.sqrt((v ** 2).sum(axis=(0, 2)) + 1e-12)
    return v / norm[None, :, None]


def power_iteration(kl_at, d, mask, xi, iters):
    """The direction of largest KL increase by power iteration (Miyato et al. 2017, eq. 9-10).

    Parameters
    ----------
    kl_at : callable r -> scalar tensor
        KL(p || p(e + r)) with p held constant (`kl_divergence`).
    d : tensor (T, B, E)
        Starting direction (a random draw).
    mask : tensor (T, B)
    xi : float
        Length of the probe ``xi * unit(d)`` whose KL gradient gives the next direction.
    iters : int
        Iterations (0: the starting direction itself).

    Returns
    -------
    tensor (T, B, E): unit L2 norm per review, zero on padding, gradient disconnected.
    """
    for _ in range(int(iters)):
        r = xi * unit_l2(d, mask)
        d = disconnected_grad(pytensor.grad(kl_at(r), r))
    return disconnected_grad(unit_l2(d, mask))


def _stack_batches(a, b, fill=0):
    """Two time-major batches (T1, B1, ...) and (T2, B2, ...) as one (max T, B1 + B2, ...), padded with ``fill``."""
    T = pt.maximum(a.shape[0], b.shape[0])
    shape = (T, a.shape[1] + b.shape[1]) + tuple(a.shape[2:])
    out = pt.zeros(shape, dtype=a.dtype) + pt.cast(fill, a.dtype)
    out = pt.set_subtensor(out[:a.shape[0], :a.shape[1]], a)
    return pt.set_subtensor(out[:b.shape[0], a.shape[1]:], b)


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
        Dropout (and VAT direction) RNG variable -> its next state.
    vat_target : tensor (B_vat, K) or None
        vat=1: the logits of p(e) on the VAT batch (held constant); ``cost_adv`` is then the KL term and
        ``delta`` the VAT batch's r_vadv (labelled reviews first, then the unlabelled ones).
        ascc=1: ``cost_adv`` is ASCC's KL term and ``delta`` is e~ - e.
    weights : tensor (T, B, M) or None
        ascc=1: the hull weights of each word's substitution set (held constant).
    emb_grad : tensor, shape (T, B, E), or None
        The training gradient with respect to ``emb`` (after the embedding clip). Without
        ``freqs`` (emb_norm=0) ``grads["Wemb"]`` is its scatter-add into the rows of ``Wemb`` and
        lazy optimizers use it by rows where `lstm_adv.core.compiled.lazy_wemb_rows` allows (not
        for VAT, whose unlabelled batch reaches other rows). ASCC with adv_emb_grad=1: shape
        (T, B + B*M, E), the clean input's then the substitutes' (their ids: ``row_ids``).
    row_ids : int64 tensor (T, B + B*M), or None
        The ids ``emb_grad``'s rows belong to, where not the batch's ``x``.
    """

    cost_clean: object
    cost_adv: object
    cost: object
    grads: OrderedDict
    delta: object
    emb: object
    rng_updates: OrderedDict
    vat_target: object = None
    emb_grad: object = None
    weights: object = None
    row_ids: object = None


def describe_objective(cfg):
    """The training objective of ``cfg`` in a few words, for the run's log."""
    norm = ", emb_norm=1" if cfg.emb_norm else ""
    if not cfg.adversarial:
        return f"clean (alpha={cfg.alpha}, eps={cfg.eps}, norm={cfg.adv_norm}{norm})"
    if cfg.vat:
        return (f"VAT (eps={cfg.eps}, vat_weight={cfg.vat_weight}, vat_iters={cfg.vat_iters}, vat_xi={cfg.vat_xi}, "
                f"emb_norm={cfg.emb_norm})")
    if cfg.ascc:
        return (f"ASCC (ascc_beta={cfg.ascc_beta}, ascc_k={cfg.ascc_k}, ascc_lr={cfg.ascc_lr}, "
                f"ascc_entropy={cfg.ascc_entropy}, ascc_max_subs={cfg.ascc_max_subs}, synonyms={cfg.synonyms}, "
                f"adv_emb_grad={cfg.adv_emb_grad}{norm})")
    return f"adversarial (alpha={cfg.alpha}, eps={cfg.eps}, norm={cfg.adv_norm}{norm})"


def build_objective(tparams, x, mask, y, cfg, rngs, use_noise=True, freqs=None, unlabelled=None, vat_fixed=None,
                    lstm=None, subs=None, ascc_fixed=None):
    """The paper's objective and its gradients, sharing one clean backward pass.

    The gradients equal those of the authors' graph (windweller/AdversarialNN, ``build_model``):
    one cost ``alpha * L_clean + (1 - alpha) * L_adv``, one gradient, ``grad_clip`` on the
    embedded input (once, before both branches), on h and c at every step and on the clean
    branch's LSTM outputs. So every clip sees a gradient already scaled by alpha or 1 - alpha,
    and the embedding clip sees the sum of both branches' gradients (``adv_emb_grad=1``).

    Parameters
    ----------
    tparams : OrderedDict of shared variables (see `lstm_adv.core.model.to_shared`)
    x : int64 tensor, shape (T, B)
    mask : tensor, shape (T, B)
    y : int64 tensor, shape (B,)
    cfg : Config
        Uses alpha, eps, adversarial, adv_norm, adv_label, adv_grad, adv_emb_grad, reg, clip, use_dropout.
    rngs : dict with shared RNGs under "clean" and "adv" (and "vat" with vat=1)
        Each branch draws its own dropout mask; "vat" draws VAT's random starting direction.
    use_noise : bool or scalar tensor
        Dropout on (True) or off.
    freqs : constant tensor (n_words,), optional
        emb_norm=1: the word weights of `lstm_adv.core.model.normalize_embeddings`.
    unlabelled : (xu, mu) tensors, optional
        vat=1: unlabelled reviews (T', B') added to the VAT term's batch.
    vat_fixed : dict, optional
        Tests: tensors replacing VAT's random start ``"d0"`` (T, B_vat, E), or its ``"delta"``
        and ``"target"`` (then the objective's gradient is the true one).
    lstm : LSTMOptions, optional
        The encoder's backward, kernel and scan mode (`lstm_adv.core.model.classify`).
    subs : (ids, member) constant tensors (n_words, M), optional
        ascc=1: every word's substitution set (`lstm_adv.core.ascc`).
    ascc_fixed : dict, optional
        Tests: ``{"weights": tensor (T, B, M)}`` replacing the inner maximisation's result.

    Returns
    -------
    Objective
    """
    nets = _Branches(tparams, cfg, use_noise, rngs, freqs, lstm)
    emb = nets.embed(x)
    emb_in = clip_input(emb, cfg)
    # The clean branch (the original code also clipped the gradient of its LSTM outputs).
    ascc = cfg.ascc and cfg.adversarial
    if ascc:
        # The same draw as `classify`'s own (stream "clean"), kept for ASCC's passes.
        keep = nets.dropout_keep(x.shape[1], emb.dtype, "clean")
        logits_clean = nets.classify(emb_in, mask, clip_output=True, keep=keep, logits=True)
        probs = softmax_rows(logits_clean)
    else:
        probs = nets.classify(emb_in, mask, "clean", clip_output=True)
    cost_clean = nll(probs, y)
    penalty = cfg.reg * (tparams["U"] ** 2).sum() if cfg.reg > 0 else 0.0
    target = weights = rows = None
    if not cfg.adversarial:
        cost_adv, delta = cost_clean, pt.zeros_like(emb)
        cost = cost_clean + penalty
    elif cfg.vat:
        cost_adv, delta, target = _vat_term(nets, emb_in, mask, unlabelled, vat_fixed or {})
        cost = cost_clean + float(cfg.vat_weight) * cost_adv + penalty
    elif ascc:
        if subs is None:
            raise ValueError("ascc=1 needs the substitution sets (subs)")
        cost_adv, delta, weights, rows = ascc_term(nets, logits_clean, x, mask, keep, subs, ascc_fixed or {})
        cost = cost_clean + float(cfg.ascc_beta) * cost_adv + penalty
    else:
        cost_adv, delta = _adversarial_term(nets, probs, cost_clean, emb_in, mask, y)
        a = float(cfg.alpha)
        cost = a * cost_clean + (1.0 - a) * cost_adv + penalty
    grads, emb_grad = training_grads(cost, tparams, emb)
    row_ids = None
    if ascc and cfg.adv_emb_grad:
        # The substitutes' rows learn too: the row-wise update covers the union of both reads.
        row_ids = pt.concatenate([x, rows[0]], axis=1)
        emb_grad = pt.concatenate([emb_grad, pytensor.grad(cost, rows[1])], axis=1)
    # Whether Wemb may be updated by these rows only is decided in one place: compiled.lazy_wemb_rows.
    return Objective(cost_clean, cost_adv, cost, grads, delta, emb, nets.rng_updates, target, emb_grad=emb_grad,
                     weights=weights, row_ids=row_ids)


@dataclass
class _Branches:
    """What the objective's branches share: one parameter dict, the configuration, dropout on or
    off, the encoder's options; and the RNG updates their dropout draws collect."""

    tparams: OrderedDict
    cfg: object
    use_noise: object
    rngs: dict
    freqs: object = None
    lstm: object = None
    rng_updates: OrderedDict = field(default_factory=OrderedDict)

    def embed(self, x):
        return embed(self.tparams, x, self.freqs, c_ops=bool(self.lstm and self.lstm.c_backend))

    def classify(self, e, mask, rng=None, **kw):
        """`classify` on the shared parameters; ``rng``: the name of the branch's dropout stream."""
        out, next_rng = classify(self.tparams, e, mask, self.cfg, self.use_noise, self.rngs.get(rng), lstm=self.lstm,
                                 **kw)
        if next_rng is not None:
            self.rng_updates[self.rngs[rng]] = next_rng
        return out

    def dropout_keep(self, n, dtype, rng):
        """One dropout mask (n, H) from stream ``rng``, or None when dropout is off."""
        if not self.cfg.use_dropout or (isinstance(self.use_noise, bool) and not self.use_noise):
            return None
        H = self.tparams["U"].get_value(borrow=True).shape[0]
        keep, self.rng_updates[self.rngs[rng]] = dropout_keep((n, H), dtype, self.rngs[rng])
        return keep


def _adversarial_term(nets, probs, cost_clean, emb_in, mask, y):
    """The paper's second branch: ``L(e + delta)`` with ``delta`` held constant; returns it and ``delta``.

    The step follows the gradient of ``alpha * L_clean`` at the (clipped) embedded input: the
    clean part of the training gradient's own backward pass (PyTensor merges the two), so one
    backward pass serves both. Deviation from the authors, who took it from the unweighted
    ``L_clean`` in a gradient of its own (``adv_grad=separate``, a second backward pass when
    clip > 0): the same direction up to the scale, except where a clip inside the LSTM acts (then
    in effect at clip / alpha); experiments/clip_probe.py measures how often it does.
    """
    cfg = nets.cfg
    a = float(cfg.alpha)
    if cfg.adv_label == "predicted":
        # Beyond the paper: the loss of the model's own clean prediction, so the step carries no
        # label (Kurakin et al. 2017); one more backward pass per update.
        loss = nll(probs, pt.argmax(probs, axis=-1))
    elif a > 0 and not (cfg.adv_grad == "separate" and cfg.clip > 0):
        loss = a * cost_clean
    else:
        loss = cost_clean
    delta = disconnected_grad(perturbation(pytensor.grad(loss, emb_in), mask, float(cfg.eps), cfg.adv_norm))
    emb_adv = emb_in + delta
    if cfg.adv_emb_grad == 0:
        # The original code: Wemb learns only from the clean term (the paper: "only backprop
        # through the graph corresponding to the first term").
        emb_adv = disconnected_grad(emb_adv)
    return nll(nets.classify(emb_adv, mask, "adv"), y), delta


def _vat_term(nets, emb_in, mask, unlabelled, fixed):
    """VAT's term ``KL(p(e) || p(e + r_vadv))`` on the labelled batch plus the unlabelled one (if any).

    Its passes (p(e), the power iteration, p(e + r_vadv)) share one dropout mask drawn from
    ``rngs["adv"]``, so KL is 0 at r = 0; p(e) and r_vadv are held constant. ``adv_emb_grad``
    decides, as for the paper's term, whether Wemb learns from it. ``fixed``: see `build_objective`.

    Returns
    -------
    cost_vat, delta (T, B_vat, E), target (the logits of p(e), B_vat x K)
    """
    cfg = nets.cfg
    emb_v, mask_v = emb_in, mask
    if unlabelled is not None:
        xu, mu = unlabelled
        emb_v, mask_v = _stack_batches(emb_in, clip_input(nets.embed(xu), cfg)), _stack_batches(mask, mu)
    keep = nets.dropout_keep(emb_v.shape[1], emb_in.dtype, "adv")

    def logits_at(e, backward=None):
        return nets.classify(e, mask_v, backward=backward, keep=keep, logits=True)

    const_v = disconnected_grad(emb_v)
    target = fixed.get("target")
    if target is None:
        target = disconnected_grad(logits_at(const_v, backward="none"))
    delta = fixed.get("delta")
    if delta is None:
        d0 = fixed.get("d0")
        if d0 is None:
            nets.rng_updates[nets.rngs["vat"]], draw = pt.random.normal(0.0, 1.0, size=emb_v.shape, rng=nets.rngs["vat"],
                                                                        return_next_rng=True)
            d0 = pt.cast(draw, emb_in.dtype)
        direction = power_iteration(lambda r: kl_divergence(target, logits_at(const_v + r)), d0, mask_v,
                                    float(cfg.vat_xi), cfg.vat_iters)
        delta = disconnected_grad(pt.cast(float(cfg.eps) * direction, emb_in.dtype))
    emb_adv = emb_v + delta
    if cfg.adv_emb_grad == 0:
        emb_adv = disconnected_grad(emb_adv)
    return kl_divergence(target, logits_at(emb_adv)), delta, target


def training_grads(cost, tparams, emb):
    """The training gradient of every parameter, and the one at the embedded input ``emb``.

    Plain ``pytensor.grad(cost)``: the authors' elementwise clipping is part of the graph it
    differentiates (`grad_clip` on the embedded input once, before both branches, on h and c at
    every step and on the clean branch's LSTM outputs), so every clip sees a gradient already
    scaled by alpha or 1 - alpha, and the embedding clip the sum of both branches' gradients, as
    in the authors' ``build_model``; with clip=0 there is no clip in the graph.

    Returns
    -------
    grads : OrderedDict of str -> tensor
        In ``tparams``'s order; ``Wemb``'s is the dense scatter-add of ``emb_grad``.
    emb_grad : tensor, shape (T, B, E)
        For updates of only the batch's rows of Wemb (`lstm_adv.core.model.embedding_row_grad`).
    """
    names, params = list(tparams), list(tparams.values())
    return OrderedDict(zip(names, pytensor.grad(cost, params))), pytensor.grad(cost, emb)

"""ASCC (Dong, Luu, Ji & Liu, ICLR 2021, "Towards Robustness Against Natural Language Word
Substitutions"): the adversarial branch of `lstm_adv.core.adversarial.build_objective` for ``ascc=1``.

For word i with substitution set S_i (the word first, then its in-vocabulary synonyms:
`lstm_adv.data.synonyms.SubstitutionTable.padded`), the branch embeds

    e~_i = sum_j w_ij * emb(S_ij),    w_i = softmax over the real members of the logits a_i,

a point in the convex hull of the substitutes' embeddings (emb: the model's own, emb_norm=1
included). K Adam steps on a (T, B, M) (one scan, `maximise_weights`) maximise

    sum_b KL(p(x_b) || p(x~_b)) - ascc_entropy * mean_{t,b} H(w_tb)

(Dong et al.'s code, ``get_adv_by_convex_syn``: KL summed over the batch, the entropy averaged over
the batch's positions; the entropy term makes the weights sparse, so x~ is near a real substituted
review). The weights found are held constant (``disconnected_grad``, as the paper's step is) and
training minimises CE(p(x), y) + ascc_beta * KL(p(x) || p(x~)) with both sides of the KL
differentiated, as Dong et al.'s ``loss_kl``. A word without substitutes (and padding) has one
member: its weight is exactly 1 and its embedding exactly the clean one.

Deviations from Dong et al.'s code, each marked where it happens: the logits start at zero, not
from a Kaiming-normal draw; every pass (clean, inner steps, adversarial) shares the clean branch's
dropout mask, where their inner steps run without dropout and their two training passes draw
independent masks; the entropy's mean runs over positions padded to the batch's longest review,
not to a fixed length. README "Deviations" and experiments/reference.md list them.
"""

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

from .model import clip_input, kl_divergence

#: Dong et al.'s inner optimiser: torch.optim.Adam's defaults, with their weight decay of 2e-5
#: (``utils.getOptimizer(..., weight_decay=2e-5)``).
ADAM_BETAS, ADAM_EPS, ADAM_DECAY = (0.9, 0.999), 1e-8, 2e-5
#: Added to a padded member's logit (Dong et al.'s 500): its weight underflows to 0, and with the
#: mask applied as well it is exactly 0; finite, so that 0 * log(weight) stays 0, never NaN.
_OFF = 1e4


def hull_weights(a, member):
    """The softmax over each set's real members, and its log.

    Parameters
    ----------
    a : tensor, shape (T, B, M)
        Logits.
    member : tensor, shape (T, B, M)
        1 on a set's real members (column 0, the word itself, always), 0 on padding.

    Returns
    -------
    w : tensor (T, B, M)
        On the simplex over the real members, exactly 0 elsewhere; exactly 1 on column 0 of a set
        of one.
    log_w : tensor (T, B, M)
        log(w) on the real members (finite elsewhere).
    """
    z = a * member + (member - 1) * _OFF
    z = z - z.max(axis=-1, keepdims=True)
    e = pt.exp(z) * member
    total = e.sum(axis=-1, keepdims=True)
    return e / total, z - pt.log(total)


def entropy(w, log_w):
    """The entropy of each set's weights, shape (T, B) (0 for a set of one)."""
    return -(w * log_w).sum(axis=-1)


def maximise_weights(kl_sum_at, member, context, k, lr, entropy_weight, mode=None):
    """The hull weights after ``k`` Adam steps on Dong et al.'s inner objective, in the graph.

    The steps are one ``scan`` (not unrolled as `lstm_adv.core.adversarial.power_iteration`'s
    iterations are): unrolled, PyTensor's rewrites took minutes to compile K=10 steps (their time
    grew faster than K); a scan compiles one step whatever K.

    Parameters
    ----------
    kl_sum_at : callable (w (T, B, M), *context) -> scalar tensor
        sum over the batch of KL(p(x) || p(x~(w))), p(x) held constant; ``context``: the scan's
        copies of the tensors it reads.
    member : tensor (T, B, M)
        See `hull_weights`.
    context : list of tensors
        What ``kl_sum_at`` reads (passed to the scan as its non-sequences).
    k : int
        Steps (>= 1).
    lr, entropy_weight : float
        Adam's step size; the entropy term's weight.
    mode : PyTensor Mode, optional
        The scan's (the model's `lstm_adv.core.lstm.LSTMOptions.scan_mode`).

    Returns
    -------
    tensor (T, B, M): the weights, gradient disconnected.
    """
    b1, b2 = ADAM_BETAS
    t = np.arange(1, int(k) + 1)
    corrections = [pt.constant((1 - b ** t).astype(member.dtype)) for b in (b1, b2)]

    def step(c1, c2, a, m, v, member, *ctx):
        w, log_w = hull_weights(a, member)
        # Dong et al. minimise this. Deviation: the mean over the batch's (T, B) positions, padding
        # included as theirs, but T is the batch's longest review here, a fixed length there.
        loss = -kl_sum_at(w, *ctx) + entropy_weight * entropy(w, log_w).mean()
        g = disconnected_grad(pytensor.grad(loss, a)) + ADAM_DECAY * a
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        return a - lr * (m / c1) / (pt.sqrt(v / c2) + ADAM_EPS), m, v

    # Deviation from Dong et al. (nn.init.kaiming_normal_, sd sqrt(2 / (T * M)), a few hundredths):
    # zeros, so that no random stream is drawn (nothing more to checkpoint, mode=JAX works). Adam's
    # first step moves every logit by about lr (10) whatever the start, so such a start is lost anyway.
    zeros = pt.zeros_like(member)
    a, _, _ = pytensor.scan(step, sequences=corrections, outputs_info=[zeros, zeros, zeros],
                            non_sequences=[member] + list(context), name="ascc_inner", return_updates=False,
                            mode=mode)
    return disconnected_grad(hull_weights(a[-1], member)[0])


def substitution_sets(nets, x, subs):
    """The batch's substitution sets: membership (T, B, M), their embeddings (T, B, M, E) and the
    rows they read, ``(ids (T, B*M), gathered (T, B*M, E))``.

    ``subs``: the model's constants ``(ids (n_words, M), member (n_words, M))``. The embeddings are
    the model's (`nets.embed`, emb_norm=1 included) with the embedded input's gradient clip.
    """
    ids, member = subs
    S = ids[x]
    T, B, M = S.shape
    flat = S.reshape((T, B * M))
    gathered = nets.embed(flat)
    return member[x], clip_input(gathered.reshape((T, B, M, gathered.shape[-1])), nets.cfg), (flat, gathered)


def ascc_term(nets, logits_clean, x, mask, keep, subs, fixed):
    """ASCC's term ``KL(p(x) || p(x~))``, the perturbation ``x~ - x`` and the weights.

    Parameters
    ----------
    nets : lstm_adv.core.adversarial._Branches
    logits_clean : tensor (B, K)
        The clean branch's logits (under dropout mask ``keep``).
    x : int64 tensor (T, B)
    mask : tensor (T, B)
    keep : tensor (B, H) or None
        The clean branch's dropout mask: every pass here uses it, so KL(p(x) || p(x)) is exactly 0.
        Deviation from Dong et al., whose inner steps run without dropout and whose adversarial
        training pass draws its own mask.
    subs : (ids, member) constant tensors (n_words, M)
    fixed : dict
        Tests: ``{"weights": tensor (T, B, M)}`` replaces the inner maximisation's result.

    Returns
    -------
    kl : scalar tensor
    delta : tensor (T, B, E), x~ - x, held constant
    weights : tensor (T, B, M)
    rows : (ids (T, B*M), gathered (T, B*M, E))
        The substitutes' rows of ``Wemb`` as `substitution_sets` read them (for a row-wise update).
    """
    cfg = nets.cfg
    member, emb_S, rows = substitution_sets(nets, x, subs)
    target = disconnected_grad(logits_clean)
    const_S = disconnected_grad(emb_S)

    def logits_at(e, mask=mask, keep=keep):
        return nets.classify(e, mask, keep=keep, logits=True)

    def point(w, S):
        # sum_j w_j * S_j per position, as a batched product (its gradient too): the elementwise
        # product and sum took 5x as long, and their gradient's sum over E accumulated in float64.
        T, B, M, E = S.shape
        return pt.matmul(w.reshape((T * B, 1, M)), S.reshape((T * B, M, E))).reshape((T, B, E))

    def kl_sum_at(w, target, S, mask, keep=None):
        return pt.cast(S.shape[1], w.dtype) * kl_divergence(target, logits_at(point(w, S), mask, keep))

    weights = fixed.get("weights")
    if weights is None:
        context = [target, const_S, mask] + ([keep] if keep is not None else [])
        weights = maximise_weights(kl_sum_at, member, context, cfg.ascc_k, float(cfg.ascc_lr),
                                   float(cfg.ascc_entropy), mode=nets.lstm.scan_mode if nets.lstm else None)
    emb_adv = point(weights, emb_S)
    if cfg.adv_emb_grad == 0:
        # As the paper's branch: Wemb learns from the clean pass only (adv_emb_grad=1: through the
        # substitutes' rows too, as Dong et al.'s trainable embedding does).
        emb_adv = disconnected_grad(emb_adv)
    delta = disconnected_grad(emb_adv - const_S[:, :, 0])
    return kl_divergence(logits_clean, logits_at(emb_adv)), delta, weights, rows


def check_substitutions(subs, n_words):
    """Refuse padded substitution sets that do not fit a vocabulary of ``n_words`` (numpy arrays)."""
    ids, member = (np.asarray(s) for s in subs)
    if ids.shape != member.shape or ids.ndim != 2 or ids.shape[0] != n_words or ids.shape[1] < 2:
        raise ValueError(f"substitutions must be two (n_words={n_words}, M >= 2) arrays, got {ids.shape} "
                         f"and {member.shape}")
    if (ids[:, 0] != np.arange(n_words)).any() or not (member[:, 0] == 1).all() or ids.min() < 0 \
            or ids.max() >= n_words:
        raise ValueError("substitutions: column 0 must be each word itself (a member) and every id < n_words")

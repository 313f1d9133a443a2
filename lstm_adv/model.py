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
from pytensor.gradient import grad_clip

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
        ``Wemb`` (n_words, E) = 0.01 * U[0, 1); LSTM ``lstm_W`` (E, 4H) and ``lstm_U`` (H, 4H) as four
        orthogonal blocks in gate order i, f, o, c~, ``lstm_b`` (4H,) zeros (RNN: ``rnn_W`` (E, H),
        ``rnn_U`` (H, H), ``rnn_b`` (H,)); classifier ``U`` (H, 2) = 0.01 * randn, ``b`` (2,) zeros.
    """
    floatX = floatX or cfg.floatX
    rng = make_rng(cfg.seed, "init_params")
    E, H = cfg.wdim, cfg.hdim
    p = OrderedDict()
    p["Wemb"] = 0.01 * rng.random((n_words, E))
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
    """The one ordered dict of shared variables both branches use (the tutorial's ``tparams``)."""
    return OrderedDict((k, pytensor.shared(v, name=k)) for k, v in params.items())


def embed(tparams, x):
    """Look up word embeddings.

    Parameters
    ----------
    x : int64 tensor, shape (T, B)

    Returns
    -------
    tensor, shape (T, B, E)
    """
    return tparams["Wemb"][x.flatten()].reshape((x.shape[0], x.shape[1], tparams["Wemb"].shape[1]))


def _clip(v, clip):
    # Elementwise gradient clipping, where the original AdversarialNN code put it.
    return grad_clip(v, -clip, clip) if clip > 0 else v


def lstm_layer(tparams, emb, mask, clip=0.0):
    """The tutorial's LSTM over time; on masked steps h and c carry over unchanged.

    Parameters
    ----------
    emb : tensor, shape (T, B, E)
    mask : tensor, shape (T, B)
    clip : float
        Gradient clipping bound on h and c at every step (0 = none).

    Returns
    -------
    tensor, shape (T, B, H)
    """
    H = tparams["lstm_U"].shape[0]
    n_samples = emb.shape[1]
    # The input projection of every step at once, as the tutorial does, outside the scan.
    state_below = pt.dot(emb, tparams["lstm_W"]) + tparams["lstm_b"]
    U = tparams["lstm_U"]

    def step(m_, x_, h_, c_, U):
        preact = pt.dot(h_, U) + x_
        i = pt.sigmoid(preact[:, 0 * H:1 * H])
        f = pt.sigmoid(preact[:, 1 * H:2 * H])
        o = pt.sigmoid(preact[:, 2 * H:3 * H])
        c = pt.tanh(preact[:, 3 * H:4 * H])
        c = f * c_ + i * c
        c = m_[:, None] * c + (1.0 - m_)[:, None] * c_
        h = o * pt.tanh(c)
        h = m_[:, None] * h + (1.0 - m_)[:, None] * h_
        return _clip(h, clip), _clip(c, clip)

    zeros = pt.zeros((n_samples, H), dtype=emb.dtype)
    h, _ = pytensor.scan(step, sequences=[mask, state_below], outputs_info=[zeros, zeros],
                         non_sequences=[U], name="lstm_layer", strict=True, return_updates=False)
    return h


def rnn_layer(tparams, emb, mask, clip=0.0):
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
                      name="rnn_layer", strict=True, return_updates=False)
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


def classify(tparams, emb, mask, cfg, use_noise=False, rng=None, clip_output=False):
    """Encoder, masked mean pooling, dropout and the softmax classifier.

    Parameters
    ----------
    emb : tensor, shape (T, B, E)
        Embedded (possibly perturbed) input.
    mask : tensor, shape (T, B)
    use_noise, rng : see `dropout`; ignored when ``cfg.use_dropout`` is 0.
    clip_output : bool
        Clip the gradient of the encoder outputs (the original code did, on the clean branch).

    Returns
    -------
    probs : tensor, shape (B, 2)
    next_rng : the dropout RNG's next state, or None
    """
    h = ENCODERS[cfg.encoder](tparams, _clip(emb, cfg.clip), mask, cfg.clip)
    if clip_output:
        h = _clip(h, cfg.clip)
    pooled = (h * mask[:, :, None]).sum(axis=0) / mask.sum(axis=0)[:, None]
    next_rng = None
    if cfg.use_dropout:
        pooled, next_rng = dropout(pooled, use_noise, rng)
    # axis=-1: PyTensor's softmax normalises over all axes by default.
    probs = pt.special.softmax(pt.dot(pooled, tparams["U"]) + tparams["b"], axis=-1)
    return probs, next_rng


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

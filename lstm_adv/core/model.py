"""The Theano LSTM sentiment tutorial's model, rebuilt in PyTensor.

Parameters live in ONE ordered dict with the tutorial's names (``Wemb``, ``lstm_W``, ``lstm_U``,
``lstm_b``, ``U``, ``b``; ``rnn_*`` for the vanilla RNN encoder), created once by `init_params`
and turned into shared variables by `to_shared`; the clean and the adversarial branch of the
objective (`lstm_adv.core.adversarial`) both read that same dict. The encoders are in
`lstm_adv.core.lstm`.

The builders here take and return symbolic variables; nothing is compiled in this module
(see `lstm_adv.core.compiled`). Shapes: ``T`` time steps, ``B`` reviews, ``E`` = wdim, ``H`` = hdim.
"""

from collections import OrderedDict

import zipfile

import numpy as np
import pytensor
import pytensor.tensor as pt

from ..common.errors import UserError
from ..common.utils import make_rng
from .kernels import GatherRows, ScatterRows
from .lstm import ENCODERS, LSTMOptions, clip_gradient, lstm_layer

ENCODER_PARAMS = {"lstm": ("lstm_W", "lstm_U", "lstm_b"), "rnn": ("rnn_W", "rnn_U", "rnn_b")}


def ortho_weight(rng, rows, cols):
    """A (rows, cols) matrix with orthonormal rows or columns, from the SVD of a Gaussian.

    The tutorial's ``ortho_weight`` is square (it assumed wdim == hdim); for word2vec's
    wdim=300 with hdim=128 we take the semi-orthogonal factor of a rectangular Gaussian.
    """
    u, _, vt = np.linalg.svd(rng.standard_normal((rows, cols)), full_matrices=False)
    return u if u.shape == (rows, cols) else vt


def init_params(cfg, n_words, floatX=None, n_classes=2):
    """Initial parameter values, as the tutorial's ``init_params`` and ``param_init_lstm``.

    Parameters
    ----------
    cfg : Config
        Uses wdim, hdim, encoder, seed.
    n_words : int
        Rows of ``Wemb`` (the vocabulary size, capped at ``cfg.n_words``).
    n_classes : int
        ``K``, the classifier's outputs (the tutorial's ``ydim``, taken from the data; IMDB: 2).

    Returns
    -------
    OrderedDict of str -> ndarray
        ``Wemb`` (n_words, E) = wemb_scale * U[0, 1) (tutorial: 0.01); LSTM ``lstm_W`` (E, 4H) and ``lstm_U`` (H, 4H) as four
        orthogonal blocks in gate order i, f, o, c~, ``lstm_b`` (4H,) zeros (RNN: ``rnn_W`` (E, H),
        ``rnn_U`` (H, H), ``rnn_b`` (H,)); classifier ``U`` (H, K) = 0.01 * randn, ``b`` (K,) zeros.
        ``U`` is drawn last, so K = 2 draws exactly what the two-class model always drew.
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
    p["U"] = 0.01 * rng.standard_normal((H, n_classes))
    p["b"] = np.zeros(n_classes)
    return OrderedDict((k, v.astype(floatX)) for k, v in p.items())


def expected_shapes(cfg, n_words, n_classes=2):
    """Parameter name -> shape for a configuration and ``K = n_classes``, to check a loaded ``.npz`` against."""
    E, H = cfg.wdim, cfg.hdim
    shapes = OrderedDict(Wemb=(n_words, E))
    if cfg.encoder == "lstm":
        shapes.update(lstm_W=(E, 4 * H), lstm_U=(H, 4 * H), lstm_b=(4 * H,))
    else:
        shapes.update(rnn_W=(E, H), rnn_U=(H, H), rnn_b=(H,))
    shapes.update(U=(H, n_classes), b=(n_classes,))
    return shapes


def params_classes(params):
    """``K``, the classes a parameter dict's classifier has (``U``'s columns; 2 if it has none)."""
    U = params.get("U")
    return int(U.shape[1]) if U is not None and getattr(U, "ndim", 0) == 2 else 2


def check_params(params, cfg, n_words, source, n_classes=None):
    """Refuse parameters that do not fit the configuration, naming the first mismatch.

    ``n_classes``: the data's ``K``; None accepts the parameters' own (``U``'s columns, at least 2),
    where the data is not loaded yet (the start-up checks) or is the saved run's (the visualiser).
    """
    if n_classes is None:
        n_classes = max(params_classes(params), 2)
    want = expected_shapes(cfg, n_words, n_classes)
    missing = [k for k in want if k not in params]
    extra = [k for k in params if k not in want]
    if missing or extra:
        raise UserError(f"{source} does not fit this configuration (encoder={cfg.encoder}): "
                        f"missing {missing}, unexpected {extra}; use the keys it was trained with")
    for k, shape in want.items():
        if tuple(params[k].shape) != shape:
            classes = f", {n_classes} classes" if k in ("U", "b") else ""
            raise UserError(f"{source}: parameter {k} has shape {tuple(params[k].shape)} but this configuration "
                            f"(wdim={cfg.wdim}, hdim={cfg.hdim}, n_words={n_words}{classes}) needs {shape}; "
                            "use the keys (and the data) it was trained with")


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


def embedding_stats(W, weights, eps=1e-6):
    """The ``weights``-weighted mean of ``W``'s rows and sqrt(variance + eps), each shape (E,).

    Numpy arrays or tensors (see `normalize_embeddings`).
    """
    xp = np if isinstance(W, np.ndarray) else pt
    w = weights[:, None]
    mean = (w * W).sum(axis=0)
    var = (w * (W - mean[None, :]) ** 2).sum(axis=0)
    return mean, xp.sqrt(var + eps)


def normalize_embeddings(W, weights, eps=1e-6):
    """Miyato et al. (2017)'s embedding normalisation: (W - mean) / sqrt(var + eps), row by row.

    ``mean`` and ``var`` (shape (E,)) are the ``weights``-weighted mean and variance of the rows
    over the vocabulary (weights: the words' training frequencies, `emb_norm_weights`), so a
    frequent word's coordinates have mean 0 and variance 1. Numpy arrays or tensors; gradients
    flow through the mean and variance too (as in Miyato et al.'s code).
    """
    mean, scale = embedding_stats(W, weights, eps)
    return (W - mean[None, :]) / scale[None, :]


def embed(tparams, x, freqs=None, c_ops=False):
    """Look up word embeddings (of the normalised table when ``freqs`` is given).

    With ``c_ops`` (mode C) the rows are copied whole by `GatherRows`, whose gradient is the
    row-wise scatter-add `ScatterRows`. Elsewhere they are gathered from the flattened ``Wemb``
    with one index per element, so that the gradient (a scatter-add into a zero ``Wemb``,
    duplicates summed in order, as the tutorial's) is PyTensor's one-dimensional
    ``AdvancedIncSubtensor1``, which the backends compile; PyTensor's row-wise version falls back
    to ``numpy.add.at``, about 7x slower here. Same values, and the same sums in the same order.

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
    E = W.shape[1]
    if c_ops:
        rows = GatherRows()(W, x.flatten()).reshape((x.shape[0], x.shape[1], E))
    else:
        idx = (x.flatten()[:, None] * E + pt.arange(E, dtype=x.dtype)[None, :]).flatten()
        rows = W.flatten()[idx].reshape((x.shape[0], x.shape[1], E))
    if freqs is None:
        return rows
    # The gathered rows of `normalize_embeddings`, without normalising the whole table (cheaper);
    # the statistics still read, and pass their gradient to, every row.
    mean, scale = embedding_stats(W, freqs)
    return (rows - mean) / scale


def embedding_row_grad(x, g_emb, E, c_ops=False):
    """The gradient of ``Wemb`` restricted to the rows the batch uses.

    Parameters
    ----------
    x : int64 tensor, shape (T, B)
    g_emb : tensor, shape (T, B, E)
        Gradient with respect to the embedded input `embed` returned.
    E : int
        wdim.
    c_ops : bool
        Mode C: the rows summed by `ScatterRows` (else an element-wise scatter-add, as `embed`).

    Returns
    -------
    ids : int64 vector
        The distinct word ids of ``x``, sorted.
    g_rows : tensor, shape (len(ids), E)
        Their rows of the dense gradient (the other rows' are zero), summed in the same order
        as the dense scatter-add, so the values are the same bit for bit.
    """
    ids, inv = pt.extra_ops.unique(x.flatten(), return_inverse=True)
    if c_ops:
        return ids, ScatterRows()(ids.shape[0], inv.flatten(), g_emb.reshape((-1, E)))
    idx = (inv.flatten()[:, None] * E + pt.arange(E, dtype=inv.dtype)[None, :]).flatten()
    flat = pt.zeros((ids.shape[0] * E,), dtype=g_emb.dtype)
    return ids, pt.inc_subtensor(flat[idx], g_emb.flatten()).reshape((ids.shape[0], E))


def clip_input(emb, cfg):
    """The embedded input with its gradient clipped elementwise to ``cfg.clip`` (0 = unchanged).

    The original code applied this once to ``Wemb[x]``, before both branches, so with
    ``adv_emb_grad=1`` the clip acts on the sum of what the two branches send back.
    """
    return clip_gradient(emb, cfg.clip)


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
    next_rng, draw = pt.random.uniform(0.0, 1.0, size=h.shape, rng=rng, return_next_rng=True)
    keep = pt.cast(draw < 0.5, h.dtype)
    if isinstance(use_noise, bool):
        return h * keep, next_rng
    return pt.switch(use_noise, h * keep, h * 0.5), next_rng


def dropout_keep(shape, dtype, rng):
    """A dropout keep mask (1 with probability 0.5) drawn once, for `classify`'s ``keep``.

    Returns ``(keep, next_rng)``; the VAT branch applies one mask to all its passes.
    """
    next_rng, draw = pt.random.uniform(0.0, 1.0, size=shape, rng=rng, return_next_rng=True)
    return pt.cast(draw < 0.5, dtype), next_rng


def classify(tparams, emb, mask, cfg, use_noise=False, rng=None, clip_output=False, backward=None, keep=None,
             logits=False, lstm=None, projected=False):
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
        Return the classifier's logits (B, K) instead of the probabilities (VAT's KL uses them).
    clip_output : bool
        Clip the gradient of the encoder outputs (the original code did, on the clean branch).
    backward : {None, "manual", "autodiff", "none"}
        How the LSTM's gradient is built (see `lstm_adv.core.lstm.lstm_layer`); "none" for graphs
        that are never differentiated (evaluation); None: ``lstm.backward``.
    lstm : LSTMOptions, optional
        The compiled model's choices of backward, C kernel and scan mode (default: what the
        configuration's backend implies, `LSTMOptions.for_config`).
    projected : bool
        ``emb`` is the encoder's input projection ``emb @ W + b`` (T, B, 4H for the LSTM), not the
        embedded input (`lstm_adv.core.lstm.lstm_layer`).

    Returns
    -------
    probs : tensor, shape (B, K)
        K = the columns of ``U`` (2 for IMDB).
    next_rng : the dropout RNG's next state, or None
    """
    lstm = lstm or LSTMOptions.for_config(cfg)
    # The embedding clip is not here: the original code clipped the embedded input once, before
    # both branches (`lstm_adv.core.adversarial.build_objective`, `clip_input`).
    if cfg.encoder == "lstm":
        h = lstm_layer(tparams, emb, mask, cfg.clip, backward=backward or lstm.backward, kernel=lstm.kernel,
                       mode=lstm.scan_mode, projected=projected)
    else:
        h = ENCODERS[cfg.encoder](tparams, emb, mask, cfg.clip, mode=lstm.scan_mode, projected=projected)
    if clip_output:
        h = clip_gradient(h, cfg.clip)
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
    it compiles with the rest of the graph (`lstm_adv.core.backend.get_mode` keeps PyTensor from
    folding it back). Normalising over the last axis only: ``pt.special.softmax`` without an
    axis normalises over all axes.
    """
    e = pt.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax_rows(z):
    """Row-wise log-softmax, z - max - log(sum(exp(z - max))): exact where the softmax underflows."""
    s = z - z.max(axis=-1, keepdims=True)
    return s - pt.log(pt.exp(s).sum(axis=-1, keepdims=True))


def kl_divergence(p_logits, q_logits):
    """Mean over reviews of KL(p || q), p and q given by their logits (B, K).

    From log-softmaxes, so KL(p || p) is exactly 0 and its gradient exactly 0 (no +1e-8 as in `nll`).
    """
    logp, logq = log_softmax_rows(p_logits), log_softmax_rows(q_logits)
    return (pt.exp(logp) * (logp - logq)).sum(axis=1).mean()


def nll(probs, y):
    """Mean negative log-likelihood, with the tutorial's +1e-8 inside the log.

    Parameters
    ----------
    probs : tensor, shape (B, K)
    y : int64 tensor, shape (B,)
        Class ids in [0, K).

    Returns
    -------
    scalar tensor
    """
    off = 1e-6 if probs.dtype == "float16" else 1e-8  # as the tutorial
    return -pt.log(probs[pt.arange(y.shape[0]), y] + off).mean()


def load_params(path):
    """Parameters from an ``.npz`` written by a run (tutorial names, no pickles).

    Raises
    ------
    UserError
        When the file is missing, truncated or not an ``.npz`` of arrays.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            return OrderedDict((k, f[k]) for k in f.files)
    except FileNotFoundError:
        raise UserError(f"no such parameter file: {path}") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise UserError(f"{path} is not a readable parameter .npz ({err}); point to a run's params.npz") from None

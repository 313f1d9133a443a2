"""Build the graph once and compile it in one place: the `Model` users and the training loop use.

``Model(cfg, n_words)`` holds the shared parameters (one ordered dict, tutorial names), the
dropout RNGs, the optimizer state and the compiled functions:

- ``f_train(x, mask, y) -> cost``: one update of the training objective.
- ``f_pred_prob(x, mask) -> probs (B, K)``: clean inputs, dropout off (K classes, IMDB 2).
- ``f_pred(x, mask) -> labels (B,)``: the argmax class.
- ``inspect(x, mask, y, dropout=False) -> dict``: clean cost, adversarial cost, objective,
  gradients for every parameter and the perturbation (ascc=1: and the hull weights; compiled on
  first use).
- ``f_embed``, ``f_grad_prob_emb(emb, mask, y) -> (dL/de, probs)``, ``f_grad_emb(x, mask, y) -> dL/de (T, B, E)``
  and ``f_prob_emb(emb, mask) -> probs``: for
  attacks and the visualiser (compiled on first use).

The backend is chosen once (`lstm_adv.core.backend.get_mode`): NUMBA (PyTensor 3's default), C,
JAX (GPU with a CUDA jaxlib) or FAST_COMPILE; every compiled function uses the same mode
explicitly, and so do the scans' inner functions. Under JAX each function is a
`lstm_adv.core.jax_backend.BucketedFunction` (static shapes: time padded to buckets, one compile
per shape; dropout drawn on the host), with the same call signature and results. The entry
points, not the model, limit the BLAS threads (`lstm_adv.core.backend.limit_blas_threads`).
"""

import time
from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.tensor as pt

from ..common.errors import UserError
from ..common.utils import make_rng
from .adversarial import build_objective
from .ascc import check_substitutions
from .backend import get_mode, resolve_mode_name
from .jax_backend import BucketedFunction, compile_stats, compile_summary
from .lstm import LSTMOptions
from .model import (check_params, classify, emb_norm_weights, embed, embedding_row_grad, init_params, nll,
                    params_classes, to_shared)
from .optimizers import LAZY_ROWS, OPTIMIZERS, caught_up


def lazy_wemb_rows(cfg, mode_name):
    """Whether adadelta may update ``Wemb`` by the batch's rows only (`lstm_adv.core.optimizers.LazyRows`):
    the one rule, for every place that asks.

    It needs an optimizer whose untouched rows do not move (adadelta, `LAZY_ROWS`), a backend with
    dynamic shapes (C, NUMBA; not JAX) and a gradient that reaches only the batch's rows: not with
    emb_norm=1 (the normalised table depends on every row) nor vat=1 (its unlabelled batch).
    """
    return (cfg.optimizer in LAZY_ROWS and mode_name in ("C", "NUMBA") and not getattr(cfg, "emb_norm", 0)
            and not getattr(cfg, "vat", 0))


class Model:
    """The tutorial's model with the paper's objective, compiled.

    Parameters
    ----------
    cfg : Config
    n_words : int
        Vocabulary size (rows of ``Wemb``).
    params : dict of str -> ndarray, optional
        Starting values (e.g. from `lstm_adv.core.model.load_params`); default
        `lstm_adv.core.model.init_params`.
    n_classes : int, optional
        ``K``, the classifier's outputs; default: the columns of ``params["U"]``, else 2.
    word_counts : sequence of int, optional
        Training frequency of each dictionary id (``data.info["word_counts"]``); needed by
        ``emb_norm=1`` (`lstm_adv.core.model.emb_norm_weights`).
    wemb_update : {"lazy", "dense"}, optional
        How adadelta updates ``Wemb``: only the rows of the batch, the other rows' accumulator
        decay applied when next used (`lstm_adv.core.optimizers.LazyRows`; equal to dense to float
        rounding), or every row every update (the tutorial). Default "lazy" on modes C and
        NUMBA (ascc=1: the rows of the batch's words and of their substitutes); always dense for JAX
        (static shapes), rmsprop/sgd, emb_norm=1 and vat=1.
    lstm_backward : {"manual", "autodiff"}
        How the LSTM's gradient is built (`lstm_adv.core.lstm.lstm_layer`): the hand-written
        backward scan (default) or PyTensor's differentiation of the tutorial's scan.
    lstm_kernel : {"seq", "c", "graph"}
        On mode C, the LSTM as the whole-sequence C Ops of `lstm_adv.core.kernels` (default: no
        scan), or scans whose step's elementwise part is its per-step C kernels ("c") or
        PyTensor ops ("graph"); the other modes always run the scans in PyTensor ops.
    substitutions : (ids, member) ndarrays, shape (n_words, M), optional
        ascc=1 (needed): every word's substitution set, the word first
        (`lstm_adv.data.synonyms.SubstitutionTable.padded`); compiled in as constants.

    Attributes
    ----------
    tparams : OrderedDict of str -> shared variable
        The one parameter dict both branches use.
    opt_state : OrderedDict of str -> shared variable
        Optimizer accumulators, tutorial names.
    rngs : OrderedDict with "clean" and "adv" shared RNGs (one dropout stream per branch), and
        "vat" (VAT's random directions) with vat=1.
    unlabelled : bool
        vat=1 with unlabelled=N: ``f_train`` takes ``(x, mask, y, xu, mu)``.
    mode_name : str
    lstm : LSTMOptions
        The encoder's backward, kernel and scan mode, as every graph of this model is built.
    """

    def __init__(self, cfg, n_words, params=None, word_counts=None, wemb_update=None, lstm_backward="manual",
                 lstm_kernel="seq", n_classes=None, substitutions=None):
        self.cfg = cfg
        self.n_words = n_words
        self.n_classes = int(n_classes or (params_classes(params) if params is not None else 2))
        self.mode_name = resolve_mode_name(cfg)
        self.mode = get_mode(cfg)
        if lstm_kernel not in ("seq", "c", "graph"):
            raise ValueError(f"lstm_kernel must be 'seq', 'c' or 'graph', got {lstm_kernel!r}")
        self.lstm = LSTMOptions.for_config(cfg, lstm_backward, lstm_kernel, self.mode)
        self._jax_functions = []
        self.train_compile_s = 0.0  # time spent compiling f_train (JAX: every bucket), inside its calls
        # adadelta's update of Wemb on modes C and NUMBA (tests compare "lazy" with "dense").
        wemb_update = wemb_update or "lazy"
        if wemb_update not in ("lazy", "dense"):
            raise ValueError(f"wemb_update must be 'lazy' or 'dense', got {wemb_update!r}")
        if not lazy_wemb_rows(cfg, self.mode_name):
            wemb_update = "dense"
        self.wemb_update = wemb_update
        if params is None:
            params = init_params(cfg, n_words, n_classes=self.n_classes)
        check_params(params, cfg, n_words, "the given parameters", self.n_classes)
        with pytensor.config.change_flags(floatX=cfg.floatX):
            self.tparams = to_shared(OrderedDict((k, np.asarray(v, dtype=cfg.floatX)) for k, v in params.items()))
            self.rngs = OrderedDict(
                (branch, pytensor.shared(make_rng(cfg.seed, f"dropout_{branch}"), name=f"rng_{branch}"))
                for branch in ("clean", "adv"))
            if cfg.vat:
                self.rngs["vat"] = pytensor.shared(make_rng(cfg.seed, "vat_direction"), name="rng_vat")
            self.freqs = None
            if cfg.emb_norm:
                if word_counts is None:
                    raise UserError("emb_norm=1 needs the training word frequencies (word_counts) to normalise Wemb")
                self.freqs = pt.constant(emb_norm_weights(word_counts, n_words).astype(cfg.floatX), name="freqs")
            self.subs = None
            if cfg.ascc and substitutions is not None:
                check_substitutions(substitutions, n_words)
                ids, member = substitutions
                self.subs = (pt.constant(np.asarray(ids, dtype="int64"), name="subs_ids"),
                             pt.constant(np.asarray(member, dtype=cfg.floatX), name="subs_member"))
            self.x = pt.matrix("x", dtype="int64")
            self.mask = pt.matrix("mask", dtype=cfg.floatX)
            self.y = pt.vector("y", dtype="int64")
            self.unlabelled = cfg.uses_unlabelled
            self.xu = pt.matrix("xu", dtype="int64")
            self.mu = pt.matrix("mu", dtype=cfg.floatX)
            # A trained ASCC model read back without its substitution sets (to predict, attack or
            # visualise) has every clean graph; only its training objective needs the sets.
            self._trainable = not (cfg.ascc and self.subs is None)
            if self._trainable:
                self._build_train()
            else:
                self._train_spec, self._f_train, self.opt_state = None, None, None
            self._build_eval()
        self._inspect = None
        self._attack = None
        self._projected = None

    # -- compiled once per run ------------------------------------------------------------
    def _function(self, inputs, outputs, updates=None, name=None, time_inputs=(0, 1), time_outputs=()):
        """A compiled function; under JAX one per padded shape (`lstm_adv.core.jax_backend`).

        ``time_inputs`` / ``time_outputs``: positions of the inputs / outputs whose first axis is
        time (JAX pads the former to a bucket length and cuts the latter back).
        """
        if self.mode_name == "JAX":
            f = BucketedFunction(inputs, outputs, updates, self.mode, name, time_inputs, time_outputs,
                                 draw_size=lambda B: (B, self.cfg.hdim), floatX=self.cfg.floatX)
            self._jax_functions.append(f)
            return f
        with pytensor.config.change_flags(floatX=self.cfg.floatX):
            return pytensor.function(inputs, outputs, updates=updates, mode=self.mode, name=name,
                                     on_unused_input="ignore")

    def compile_stats(self):
        """Under JAX, the compilations so far: ``{function: [(T_bucket, B, seconds), ...]}``; else {}."""
        return compile_stats(self._jax_functions)

    def compile_summary(self):
        """Under JAX, one line counting the compilations and their time; else None."""
        if self.mode_name != "JAX":
            return None
        return compile_summary(self._jax_functions)

    def _build_train(self):
        unlabelled = (self.xu, self.mu) if self.unlabelled else None
        obj = build_objective(self.tparams, self.x, self.mask, self.y, self.cfg, self.rngs, use_noise=True,
                              freqs=self.freqs, unlabelled=unlabelled, lstm=self.lstm, subs=self.subs)
        rows = None
        if self.wemb_update == "lazy":
            ids = self.x if obj.row_ids is None else obj.row_ids   # ascc=1: the substitutes' rows too
            rows = {"Wemb": embedding_row_grad(ids, obj.emb_grad, self.cfg.wdim, c_ops=self.lstm.c_backend)}
        updates, self.opt_state = OPTIMIZERS[self.cfg.optimizer](self.tparams, obj.grads, self.cfg.lrate, rows=rows,
                                                                 kernel="c" if self.mode_name == "C" else "graph")
        updates = list(updates) + list(obj.rng_updates.items())
        # Compiled on first use: inspecting or evaluating a model never pays for the update.
        inputs = [self.x, self.mask, self.y] + ([self.xu, self.mu] if self.unlabelled else [])
        self._train_spec = (inputs, obj.cost, updates)
        self._f_train = None

    @property
    def f_train(self):
        """One update of the training objective: ``f_train(x, mask, y[, xu, mu]) -> cost``."""
        self._needs_training_graph("f_train")
        if self._f_train is None:
            t0 = time.perf_counter()
            inputs, cost, updates = self._train_spec
            self._f_train = self._function(inputs, cost, updates, "f_train")
            self.train_compile_s += time.perf_counter() - t0
        return self._f_train

    def _needs_training_graph(self, what):
        if not self._trainable:
            raise ValueError(f"{what}: this ascc=1 model was built without its substitution sets "
                             "(Model(..., substitutions=)); they are needed to train or inspect it, not to predict")

    def train_step(self, x, mask, y, *unlabelled):
        """``f_train(x, mask, y[, xu, mu])`` as a float, and the seconds of it spent compiling (JAX: a new bucket)."""
        before = self.train_compile_s + self._train_jit_s()
        cost = float(self.f_train(x, mask, y, *unlabelled))
        return cost, self.train_compile_s + self._train_jit_s() - before

    def _train_jit_s(self):
        f = self._f_train
        return sum(f.compile_s.values()) if f is not None and hasattr(f, "compile_s") else 0.0

    def _build_eval(self):
        probs, _ = classify(self.tparams, embed(self.tparams, self.x, self.freqs, c_ops=self.lstm.c_backend), self.mask, self.cfg, use_noise=False,
                            backward="none", lstm=self.lstm)
        self.f_pred_prob = self._function([self.x, self.mask], probs, name="f_pred_prob")

    def f_pred(self, x, mask):
        """Predicted labels, shape (B,)."""
        return self.f_pred_prob(x, mask).argmax(axis=1)

    # -- compiled on first use --------------------------------------------------------------
    def inspect(self, x, mask, y, dropout=False, xu=None, mu=None):
        """Every piece of the objective for one batch, without changing parameters.

        Dropout draws (when ``dropout=True``) come from separate RNG copies, so inspecting a
        model does not shift the training run's random stream. ``xu``, ``mu``: the unlabelled
        batch (time-major, as ``f_train`` takes it), required by a model that trains with one
        (vat=1 unlabelled=N), so that the gradient is the one training uses.

        Returns
        -------
        dict with ``cost_clean``, ``cost_adv``, ``cost`` (floats), ``delta`` (T, B, E),
        ``grads`` (OrderedDict name -> array, the gradient used for training) and, ascc=1,
        ``weights`` (T, B, M): the hull weights of each word's substitution set.
        """
        self._needs_training_graph("inspect")
        if self.unlabelled != (xu is not None and mu is not None):
            raise ValueError("inspect: pass xu and mu (the unlabelled batch) exactly when the model trains with "
                             f"one (vat=1 unlabelled=N; this model: unlabelled={self.cfg.unlabelled})")
        unlabelled = [self.xu, self.mu] if self.unlabelled else []
        if self._inspect is None:
            with pytensor.config.change_flags(floatX=self.cfg.floatX):
                use_noise = pt.scalar("use_noise", dtype="int8")
                rngs = OrderedDict((k, pytensor.shared(make_rng(self.cfg.seed, f"inspect_{k}"))) for k in self.rngs)
                obj = build_objective(self.tparams, self.x, self.mask, self.y, self.cfg, rngs, use_noise,
                                      freqs=self.freqs, unlabelled=tuple(unlabelled) or None, lstm=self.lstm,
                                      subs=self.subs)
                weights = [] if obj.weights is None else [obj.weights]
                outs = [obj.cost_clean, obj.cost_adv, obj.cost, obj.delta] + weights + list(obj.grads.values())
                self._inspect = (self._function([self.x, self.mask, self.y] + unlabelled + [use_noise], outs,
                                                list(obj.rng_updates.items()), "f_inspect",
                                                time_outputs=(3, 4) if weights else (3,)),
                                 list(obj.grads), len(weights))
        f, names, n_weights = self._inspect
        out = f(x, mask, y, *((xu, mu) if self.unlabelled else ()), np.int8(bool(dropout)))
        res = {"cost_clean": float(out[0]), "cost_adv": float(out[1]), "cost": float(out[2]),
               "delta": out[3], "grads": OrderedDict(zip(names, out[4 + n_weights:]))}
        if n_weights:
            res["weights"] = out[4]
        return res

    def _build_attack(self):
        with pytensor.config.change_flags(floatX=self.cfg.floatX):
            emb_in = pt.tensor3("emb", dtype=self.cfg.floatX)
            probs, _ = classify(self.tparams, emb_in, self.mask, self.cfg, use_noise=False, lstm=self.lstm)
            g_emb = pytensor.grad(nll(probs, self.y), emb_in)
            probs_fwd, _ = classify(self.tparams, emb_in, self.mask, self.cfg, use_noise=False, backward="none",
                                    lstm=self.lstm)
            self._attack = (self._function([self.x], embed(self.tparams, self.x, self.freqs, c_ops=self.lstm.c_backend), name="f_embed",
                                           time_inputs=(0,), time_outputs=(0,)),
                            self._function([emb_in, self.mask, self.y], [g_emb, probs], name="f_grad_prob_emb",
                                           time_outputs=(0,)),
                            self._function([emb_in, self.mask], probs_fwd, name="f_prob_emb"))

    def _attack_fn(self, i):
        if self._attack is None:
            self._build_attack()
        return self._attack[i]

    def f_embed(self, x):
        """The embedded input ``Wemb[x]`` (emb_norm=1: the normalised rows), shape (T, B, E)."""
        return self._attack_fn(0)(x)

    def f_grad_prob_emb(self, emb, mask, y):
        """At a given embedded input, dropout off: the gradient of the mean NLL of labels ``y``
        with respect to it (T, B, E), and the class probabilities (B, K)."""
        return self._attack_fn(1)(emb, mask, y)

    def f_grad_emb(self, x, mask, y):
        """Gradient of the mean clean NLL (dropout off) w.r.t. the embedded input, and that input.

        Returns
        -------
        grad : ndarray, shape (T, B, E)
        emb : ndarray, shape (T, B, E)
        """
        emb = self.f_embed(x)
        return self.f_grad_prob_emb(emb, mask, y)[0], emb

    def f_prob_emb(self, emb, mask):
        """Class probabilities (B, K) for given (e.g. perturbed) embedded inputs, dropout off."""
        return self._attack_fn(2)(emb, mask)

    def input_projection(self):
        """Every word's encoder input projection, ``embed(w) @ W + b``: ndarray (n_words, 4H) for
        the LSTM ((n_words, H) for the RNN), from the current parameters (emb_norm=1 included).

        The word attacks score thousands of reviews that differ in a few words; with this table
        a review's projection is a row look-up (`f_prob_projected`), not a product with W per token.
        """
        rows = self.f_embed(np.arange(self.n_words, dtype=np.int64)[:, None])[:, 0, :]
        prefix = "lstm" if self.cfg.encoder == "lstm" else "rnn"
        W, b = (self.tparams[f"{prefix}_{k}"].get_value() for k in ("W", "b"))
        return (np.asarray(rows, dtype=np.float64) @ np.asarray(W, dtype=np.float64) + b).astype(self.cfg.floatX)

    def f_prob_projected(self, projected, mask):
        """Class probabilities (B, K), dropout off, from the input projection of each token (T, B, 4H):
        ``input_projection()[x]`` gives what ``f_pred_prob(x, mask)`` computes, to float rounding."""
        if self._projected is None:
            with pytensor.config.change_flags(floatX=self.cfg.floatX):
                sb = pt.tensor3("projected", dtype=self.cfg.floatX)
                probs, _ = classify(self.tparams, sb, self.mask, self.cfg, use_noise=False, backward="none",
                                    lstm=self.lstm, projected=True)
                self._projected = self._function([sb, self.mask], probs, name="f_prob_projected")
        return self._projected(projected, mask)

    # -- state ---------------------------------------------------------------------------------
    def get_opt_state(self):
        """A copy of the optimizer state as it is, name -> ndarray (what checkpoints hold): the
        accumulators (tutorial names) and, for a parameter updated by lazy rows, its counters
        (``Wemb_lazy_count``, ``Wemb_lazy_last``; `lstm_adv.core.optimizers.LazyRows`). Reading it
        changes nothing, so a checkpoint never changes the run."""
        out = OrderedDict((k, np.array(v.get_value())) for k, v in self.opt_state.items())
        for rows in self.opt_state.lazy.values():
            out.update(rows.values())
        return out

    def dense_opt_state(self):
        """The accumulators as the dense update would hold them (pending lazy decays applied, to float
        rounding; `lstm_adv.core.optimizers.caught_up`), name -> ndarray; changes nothing."""
        out = OrderedDict((k, np.array(v.get_value())) for k, v in self.opt_state.items())
        for rows in self.opt_state.lazy.values():
            for acc in rows.accumulators:
                out[acc.name] = caught_up(out[acc.name], rows.count.get_value(), rows.last.get_value())
        return out

    def set_opt_state(self, values):
        """Load optimizer state (from `get_opt_state` or a checkpoint's ``opt/`` arrays).

        Lazy counters in ``values`` are set as they are; loaded into a model that updates densely
        (another backend), their pending decays are applied first (`lstm_adv.core.optimizers.caught_up`).
        """
        values = dict(values)
        for name in [k[:-len("_lazy_count")] for k in values if k.endswith("_lazy_count")]:
            if name not in self.opt_state.lazy:
                count, last = values[name + "_lazy_count"], values[name + "_lazy_last"]
                for acc in self.opt_state:
                    if acc.startswith(name + "_") and acc in values:
                        values[acc] = caught_up(values[acc], count, last)
        for k, v in self.opt_state.items():
            v.set_value(np.asarray(values[k], dtype=v.dtype))
        for rows in self.opt_state.lazy.values():
            rows.set_values(values)

    def get_params(self):
        """A copy of the parameters, name -> ndarray (the tutorial's ``unzip``); changes nothing
        (the lazy rows' parameters never lag, only their accumulators' decay)."""
        # np.array: under JAX the shared values are JAX arrays.
        return OrderedDict((k, np.array(v.get_value())) for k, v in self.tparams.items())

    def set_params(self, params):
        """Load parameters (the tutorial's ``zipp``); shapes must fit."""
        check_params(params, self.cfg, self.n_words, "the given parameters", self.n_classes)
        for k, v in params.items():
            self.tparams[k].set_value(np.asarray(v, dtype=self.cfg.floatX))

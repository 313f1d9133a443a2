"""The run configuration: one frozen dataclass from which the CLI, ``--help`` and ``config.json`` derive.

Every hyperparameter the paper names (its section 5.1.1) and every one the Theano tutorial's
``train_lstm`` takes is a field here, with the paper's value as default where the paper and the
original code disagree (see README, "Deviations").

Usage::

    cfg = parse_args(["eps=0.5", "data=toy"])   # raises UserError on a bad key or value
"""

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .common import checks as _checks
from .common import options as _options
from .common.config_files import read_config_file
from .common.errors import UserError


#: What a key does to a run (each field's ``role``); `IDENTITY_KEYS` and every other list of keys
#: derive from it. Only "model" keys make a run's identity: a run directory holding a run with
#: other values of them is refused on resume.
ROLES = {
    "model": "changes what the run computes (its identity)",
    "budget": "how long it may train: a finished run's result depends on it, but a resumed run may extend it",
    "eval": "the evaluation after training: attacks do not change the model",
    "backend": "how it is computed: the same model up to float rounding",
    "output": "where and how it writes, logs and resumes: never what it computes",
}


def _key(default, help, choices=None, group="model", role="model"):
    assert role in ROLES, role
    return _options.option(default, help, choices, group, role=role)


@dataclass(frozen=True)
class Config:
    preset: str = _key("", "named defaults applied before the other keys; authors = what the authors' code ran "
                       "where the paper is silent; miyato = Miyato et al.'s L2 step on normalised embeddings, the "
                       "recipe that learns on a user's corpus (both listed above)", ("", "authors", "miyato"))
    # --- the paper's hyperparameters (section 5.1.1) ---
    wemb_init: str = _key("random", "word embedding init: random (0.01*U[0,1)) or word2vec (w2v_path, else the "
                          "package's IMDB-trained vectors, built once and cached)", ("random", "word2vec"))
    wdim: int = _key(128, "word embedding dimension (300 for GoogleNews word2vec)")
    wemb_scale: float = _key(0.01, "random init: Wemb = wemb_scale * U[0,1) (the tutorial's 0.01)")
    hdim: int = _key(128, "hidden units of the LSTM/RNN")
    reg: float = _key(0.0, "L2 penalty reg*sum(U**2) on the classifier weights")
    clip: float = _key(5.0, "elementwise gradient clipping bound on embeddings, h and c (0 = off)")
    adv: int = _key(-1, "adversarial objective: 1 on, 0 off, -1 on iff eps > 0", (-1, 0, 1))
    alpha: float = _key(0.5, "weight of the clean cost: alpha*L(e) + (1-alpha)*L(e+delta), in [0, 1]")
    eps: float = _key(0.0, "perturbation size; 0 = the plain tutorial model")
    # --- adversarial variants beyond the paper ---
    adv_norm: str = _key("sign", "perturbation: sign (paper, eps*sign(g)) or l2 (Miyato et al. 2017, per example)",
                         ("sign", "l2"))
    adv_label: str = _key("true", "the label the perturbation's gradient is taken at: true (paper) or predicted "
                          "(the model's own clean prediction: no label leaking, Kurakin et al. 2017)",
                          ("true", "predicted"))
    adv_emb_grad: int = _key(0, "0: Wemb learns from the clean term only (original code); 1: through both terms",
                             (0, 1))
    adv_grad: str = _key("joint", "where the step's gradient comes from: joint (the training cost's backward "
                         "pass, d(alpha*L)/de) or separate (L_clean's own gradient, as the authors' code; "
                         "a second backward pass when clip > 0); they differ only where a clip acts",
                         ("joint", "separate"))
    emb_norm: int = _key(0, "1: embed with Wemb's rows normalised by the training-frequency-weighted mean and "
                         "variance over the vocabulary (Miyato et al. 2017), before both branches", (0, 1))
    vat: int = _key(0, "1: the adversarial term is virtual adversarial training, vat_weight*KL(p(e)||p(e+r)), "
                    "r = eps*g/||g||_2 per review from vat_iters power iterations (alpha, adv_norm, adv_label unused)",
                    (0, 1))
    vat_weight: float = _key(1.0, "vat=1: weight of the KL term; objective L(e) + vat_weight*KL")
    vat_iters: int = _key(1, "vat=1: power iterations for r's direction (0 = a random direction)")
    vat_xi: float = _key(0.1, "vat=1: length of the probe xi*d in the power iteration (Miyato's 0.1)")
    unlabelled: int = _key(0, "vat=1: add up to N unlabelled reviews (IMDB train/unsup; toy: generated) to the "
                           "KL term, one batch_size batch of them per update (0 = none)", group="data")
    ascc: int = _key(0, "1: the adversarial term is ASCC (Dong et al. 2021): each word embedded as a point of the "
                     "convex hull of its substitution set (synonyms=), the weights pushed by ascc_k Adam steps to "
                     "maximise KL(p(x)||p(x~)); objective L(x) + ascc_beta*KL (alpha, eps, adv_norm, adv_label, "
                     "adv_grad unused; adv_emb_grad=1: Wemb learns through the hull too, as Dong et al.)", (0, 1))
    ascc_k: int = _key(10, "ascc=1: inner Adam steps on the hull weights' logits (Dong et al.: 10)")
    ascc_beta: float = _key(4.0, "ascc=1: weight of the KL term; objective L(x) + ascc_beta*KL (Dong et al.: 4)")
    ascc_entropy: float = _key(15.0, "ascc=1: weight of the entropy term that makes the hull weights sparse in the "
                               "inner steps (Dong et al.'s sparse_weight: 15)")
    ascc_lr: float = _key(10.0, "ascc=1: step size of the inner Adam (Dong et al.: 10)")
    ascc_max_subs: int = _key(16, "ascc=1: at most M members per substitution set, the word included (the source's "
                              "first M-1 substitutes in the vocabulary)")
    synonym_aug: float = _key(0.0, "synonym augmentation (Jia et al. 2019's baseline): each training token that has "
                              "substitutes (synonyms=) replaced by one drawn uniformly, with this probability, "
                              "afresh at every update (0 = off)", group="training")
    synonyms: str = _key("wordnet", "word substitutions (the word attacks, ASCC, synonym augmentation): wordnet "
                         "(WordNet 3.0 synonyms, shipped) or the PATH of a TSV file, word<TAB>substitutes "
                         "(lstm_adv.data.synonyms.load_synonyms); only substitutes in the model's vocabulary count", group="data")
    # --- the tutorial's hyperparameters ---
    encoder: str = _key("lstm", "sequence encoder", ("lstm", "rnn"))
    optimizer: str = _key("adadelta", "update rule, exactly as the tutorial", ("adadelta", "rmsprop", "sgd"))
    lrate: float = _key(0.0001, "learning rate (used by sgd only, as in the tutorial)")
    batch_size: int = _key(16, "training minibatch size", group="training")
    valid_batch_size: int = _key(64, "evaluation minibatch size", group="training")
    max_epochs: int = _key(100, "maximum number of epochs", group="training", role="budget")
    patience: int = _key(10, "early stopping patience, in validations (tutorial rule)", group="training")
    dispFreq: int = _key(10, "every N updates: with progress=1 the bar shows the cost; with progress=0 a line "
                         "'update U epoch E: cost C, T ms/update' is printed (the tutorial's log)", group="training",
                         role="output")
    validFreq: int = _key(370, "validate every N updates (and at the end if none came); 0 = once per epoch of the "
                          "training split, resolved when the data is loaded (config.json's resolved entry; the "
                          "default for data=PATH)", group="training")
    saveFreq: int = _key(1110, "checkpoint every N updates", group="training", role="output")
    use_dropout: int = _key(1, "dropout (keep 0.5) on the pooled vector", (0, 1))
    seed: int = _key(123, "the one seed behind every random choice (init, split, shuffling, dropout)",
                     group="training")
    # --- data ---
    data: str = _key("imdb", "data set: imdb (Maas et al. 2011), toy (synthetic, made in code), or a PATH: a CSV, "
                     "TSV or JSONL file of texts and labels, or a folder of train/ (and test/) class folders of "
                     ".txt files (README, 'Your own data')", group="data")
    text_col: str = _key("text", "data=PATH (CSV, TSV, JSONL): the column or field holding the text", group="data")
    label_col: str = _key("label", "data=PATH (CSV, TSV, JSONL): the column or field holding the label (strings or "
                          "integers, mapped to ids in sorted order)", group="data")
    test_portion: float = _key(0.2, "data=PATH without a test split: fraction of the texts held out as the test "
                               "split (the same rows for every seed)", group="data")
    data_path: str = _key("", "aclImdb tarball or folder (else $LSTM_ADV_DATA, else the cache)", group="data",
                          role="output")
    download: int = _key(1, "download the official archive if the data is nowhere (0 = never)", (0, 1),
                         group="data", role="output")
    n_words: int = _key(10000, "vocabulary size; rarer words map to UNK (id 1)", group="data")
    vocab_order: str = _key("frequency", "which n_words words the model keeps: frequency (the tutorial's ranking) or "
                            "random (seeded by seed: arbitrary word types, as the authors' Python 2 dict order)",
                            ("frequency", "random"), group="data")
    maxlen: int = _key(100, "train reviews with length < maxlen are kept (0 = no limit)", group="data")
    maxlen_mode: str = _key("filter", "filter (tutorial: drop longer train reviews) or truncate (keep all, cut)",
                            ("filter", "truncate"), group="data")
    valid_portion: float = _key(0.05, "fraction of the (filtered) train split held out for validation",
                                group="data")
    test_size: int = _key(-1, "evaluate on a seeded random subset of the test split (-1 = all 25,000)",
                          group="data")
    w2v_path: str = _key("", "word2vec file (binary or text) for wemb_init=word2vec", group="data")
    w2v_limit: int = _key(0, "read only the first N vectors of the word2vec file (0 = all)", group="data")
    w2v_missing: str = _key("init", "rows of words the vectors lack: init (keep wemb_init's 0.01*U[0,1)) or uniform "
                            "(U(-0.25, 0.25), padding row 0, as the authors' code)", ("init", "uniform"), group="data")
    w2v_std: float = _key(0.0, "rescale the loaded vectors to this per-coordinate std (0 = as in the file; "
                          "GoogleNews's is 0.144)", group="data")
    # --- run management ---
    saveto: str = _key("", "run directory (default: runs_dir/<overridden keys>)", group="run", role="output")
    runs_dir: str = _key("runs", "parent folder of derived run directories", group="run", role="output")
    reload_model: str = _key("", "start from these parameters (.npz or run directory)", group="run")
    resume: int = _key(1, "1: continue from the run directory's checkpoint; 0: start over", (0, 1), group="run",
                       role="output")
    valid_test: int = _key(0, "also evaluate the test split at every validation (slow; selection ignores it)",
                           (0, 1), group="run", role="output")
    train_err_size: int = _key(-1, "the train error at each validation on N training reviews evenly spaced over the "
                               "length-sorted split (-1 = all, the tutorial's; the final evaluation uses all)",
                               group="run", role="output")
    attack_eps: str = _key("0.001,0.01,0.1,0.5", "after training: clean, adversarial and robust test error under "
                           "gradient attacks of these radii (comma list; empty = none; see lstm_adv.evaluate)",
                           group="run", role="eval")
    attack_relative: int = _key(0, "1: attack_eps are multiples of the median |coordinate| of the embedded test "
                                "reviews (after emb_norm), so that models whose embeddings differ in scale meet "
                                "the same relative attack; 0: radii in embedding units", (0, 1), group="run",
                                role="eval")
    attack_k: int = _key(5, "steps of the iterative attacks (0 = one-step attacks only)", group="run", role="eval")
    attack_size: int = _key(100, "reviews of the test split the attacks use (seeded subset; -1 = all)",
                            group="run", role="eval")
    word_attack: str = _key("", "after training: word-substitution attacks on word_attack_size test reviews (comma "
                            "list of pwws, beam, each as METHOD or METHOD:N for N reviews; empty = none): metrics.json's word_attack, RUN/word_attack/METHOD-nN-seedS/ "
                            "(python -m lstm_adv.attack); a finished run rerun with a new one is attacked, not trained again",
                            group="run", role="eval")
    word_attack_size: int = _key(1000, "word_attack: test reviews attacked (a sample seeded by word_attack_seed, "
                                 "the same for every model)", group="run", role="eval")
    word_attack_seed: int = _key(1, "word_attack: seed of the sample (not the model's seed)", group="run", role="eval")
    word_attack_max_change: float = _key(1.0, "word_attack: the most words changed, as a fraction of a review's "
                                         "words (1 = no limit, as PWWS)", group="run", role="eval")
    progress: int = _key(1, "1: a tqdm progress bar per epoch; 0: plain lines every dispFreq updates (logs, sweeps)",
                         (0, 1), group="run", role="output")
    # --- compilation ---
    device: str = _key("cpu", "cpu, or gpu (= mode JAX on a CUDA jaxlib, float32); like mode, not part of the "
                       "run's identity", ("cpu", "gpu"), group="compile", role="backend")
    mode: str = _key("auto", "PyTensor backend: auto (C on cpu, JAX on gpu), C, NUMBA, JAX, FAST_COMPILE; not "
                     "part of the run's identity (every mode computes the same model up to float rounding): a run "
                     "may be resumed under another mode, bit for bit only under its own",
                     ("auto", "NUMBA", "C", "JAX", "FAST_COMPILE"), group="compile", role="backend")
    floatX: str = _key("float32", "float precision of every compiled function", ("float32", "float64"),
                       group="compile")
    denormals: str = _key("flush", "flush: the CPU treats subnormal floats as zero (x86-64 FTZ/DAZ, training "
                          "thread): saturated LSTM gates at large eps otherwise make updates up to 4x slower, and "
                          "the parameters came out bit-identical in our checks; keep: IEEE gradual underflow",
                          ("flush", "keep"), group="compile", role="backend")

    # --- derived values ---
    @property
    def adversarial(self):
        """Whether the training objective has the adversarial term."""
        if self.ascc:   # ASCC's term replaces the paper's; adv=0 with ascc=1 is refused (`validate`)
            return True
        return self.eps > 0 if self.adv == -1 else bool(self.adv)

    @property
    def uses_unlabelled(self):
        """Whether training feeds unlabelled reviews: the VAT term (vat=1, adversarial) with unlabelled=N."""
        return bool(self.vat and self.unlabelled and self.adversarial)

    @property
    def attack_strengths(self):
        """``attack_eps`` as a tuple of floats."""
        return tuple(float(v) for v in _options.split_list(self.attack_eps))

    @property
    def word_attacks(self):
        """``word_attack`` as a tuple of method names (``METHOD:N`` items give the name)."""
        return tuple(item.partition(":")[0].strip() for item in _options.split_list(self.word_attack))

    def word_attack_n(self, method):
        """The test reviews ``method``'s word attack uses: its ``METHOD:N``, else ``word_attack_size``."""
        for item in _options.split_list(self.word_attack):
            name, _, n = item.partition(":")
            if name.strip() == method and n.strip():
                return int(n)
        return self.word_attack_size

    def to_dict(self):
        return dataclasses.asdict(self)

    def overrides(self):
        """The keys whose value differs from the default for this data set, in field order."""
        default = defaults_for(self.data, self.preset)
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(default, f.name) or (f.name == "data" and self.data != "imdb")
                or (f.name == "preset" and self.preset)}

    def run_dir(self):
        """The run directory: ``saveto`` if given, else derived from the overridden keys."""
        if self.saveto:
            return Path(self.saveto)
        # data=PATH: the file or folder's name says which corpus (its whole path is in config.json).
        parts = [f"{k}={Path(v).name if k == 'data' and is_corpus_path(v) else _fmt(v)}"
                 for k, v in self.overrides().items() if k not in RUN_DIR_NAME_SKIP]
        name = ",".join(parts) if parts else "default"
        name = name.replace(os.sep, "_")
        return Path(self.runs_dir) / name


#: Named configurations (``preset=NAME``), applied over the data set's defaults and under the
#: command line's keys. ``authors``: windweller/AdversarialNN's defaults where the paper is silent
#: (rnn.py: ``--wemb_init word2vec --wdim 300``, missing words U(-0.25, 0.25), ``--epochs 1000``),
#: the paper's text where it speaks (alpha=0.5, hdim=128, clip=5: the dataclass defaults). Without
#: GoogleNews (``w2v_path``), vectors trained on IMDB stand in, rescaled to GoogleNews's
#: per-coordinate std (deviation: see README, "Deviations").
#: ``miyato``: the step that learned in every measured setting (experiments/results/vat_comparison:
#: IMDB eps 3, test error 0.091 against 0.110 plain, 30 epochs): the L2 step on normalised
#: embeddings, Wemb learning through both terms, and a budget for a user's corpus (30 epochs;
#: with ``data=PATH``'s one validation per epoch, patience 10 stops 10 epochs after the best).
PRESETS = {"authors": {"wemb_init": "word2vec", "wdim": 300, "w2v_missing": "uniform", "w2v_std": 0.144,
                       "max_epochs": 1000},
           "miyato": {"adv_norm": "l2", "emb_norm": 1, "adv_emb_grad": 1, "eps": 3.0, "max_epochs": 30,
                      "patience": 10}}

# data=toy is learnt in seconds: shorter schedules so a toy run takes well under a minute.
# Its words start from the toy's own stand-in for pretrained vectors (`lstm_adv.data.toy.toy_vectors`),
# as the authors' IMDB runs started from word2vec.
DATA_DEFAULTS = {"toy": {"max_epochs": 10, "validFreq": 30, "saveFreq": 60, "patience": 5, "attack_size": -1,
                         "wemb_init": "word2vec"}}
#: data=PATH: one validation per epoch, whatever the corpus's size (`valid_every`). IMDB's 370 is
#: an epoch of the tutorial's 5,900 filtered reviews; on a corpus of 228 training texts it validated
#: once in 26 epochs, and on 1,200 once in 5, so patience=10 (validations) stopped the run early.
CORPUS_DEFAULTS = {"validFreq": 0}


#: The searches of ``word_attack=`` (`lstm_adv.wordattack.search.SEARCHES`; a test checks they agree).
WORD_ATTACKS = ("pwws", "beam")

#: The corpora made or read by name; any other ``data=`` value is the path of a user's corpus.
NAMED_DATA = ("imdb", "toy")


def is_corpus_path(data):
    """Whether ``data=`` names a user's corpus (a CSV, TSV, JSONL file or a folder), not imdb or toy."""
    return data not in NAMED_DATA


def defaults_for(data, preset=""):
    """The default configuration for a data set and preset (`PRESETS` over `DATA_DEFAULTS` over the dataclass)."""
    data_defaults = CORPUS_DEFAULTS if is_corpus_path(data) else DATA_DEFAULTS.get(data, {})
    return Config(data=data, preset=preset, **{**data_defaults, **PRESETS.get(preset, {})})


def valid_every(cfg, n_train):
    """The updates between two validations: ``validFreq``, or with ``validFreq=0`` one epoch.

    Parameters
    ----------
    cfg : Config
    n_train : int
        The training split's size (after the maxlen rule and the validation split).

    Returns
    -------
    int
        ``cfg.validFreq`` if positive, else ``ceil(n_train / batch_size)`` (at least 1).
    """
    return cfg.validFreq if cfg.validFreq > 0 else max(1, -(-n_train // cfg.batch_size))


def _fmt(v):
    return repr(v) if isinstance(v, float) and v != int(v) else str(v)


FIELDS = {f.name: f for f in dataclasses.fields(Config)}


SPEC = _options.fields(Config)
#: Keys that take 1/0, true/false, yes/no, and may be given bare (= 1).
SWITCHES = tuple(n for n, (f, typ) in SPEC.items() if _options.is_switch(f, typ))


def keys_with_role(*roles):
    """The `Config` keys whose ``role`` (see `ROLES`) is one of ``roles``, in field order."""
    return tuple(name for name, f in FIELDS.items() if f.metadata["role"] in roles)


#: The keys that make a run's identity: a checkpoint made under other values of them does not fit,
#: so resuming refuses (`lstm_adv.rundir.RunDir.check_same_run`). Not among them: the budget
#: (``max_epochs``: a resumed run may train longer), the attacks (they act after training: a
#: finished run is not attacked again with new ones), the backend (``mode``, ``device``) and
#: where and how the run writes.
IDENTITY_KEYS = keys_with_role("model")

#: The keys that describe a finished run's results (the tables' "settings shared by these runs"
#: and ``runs.csv``'s columns): its identity, its budget and its attacks.
RESULT_KEYS = keys_with_role("model", "budget", "eval")

#: The keys that change nothing a run computes or reports (backend, paths, logging, resuming).
NEUTRAL_KEYS = keys_with_role("backend", "output")

#: Keys a setting makes inert: with vat=1 (or ascc=1) the KL term replaces the paper's objective, so
#: alpha, adv_norm, adv_label and adv_grad are never read (`unused_keys`); ascc=1 reads no eps
#: either (its perturbation is the hull of the synonyms, not a radius; eps > 0 is refused).
INERT_UNDER = {"vat": ("alpha", "adv_norm", "adv_label", "adv_grad"),
               "ascc": ("alpha", "eps", "adv_norm", "adv_label", "adv_grad")}


def unused_keys(values):
    """The keys whose value does nothing in a run with these settings.

    Grouped tables show such a key as ``-`` so that a VAT row does not claim the paper's sign step.

    Parameters
    ----------
    values : dict
        A run's configuration (``config.json``); missing keys count as their defaults.

    Returns
    -------
    set of str
    """
    return {k for switch, keys in INERT_UNDER.items() if values.get(switch) for k in keys}


#: Keys left out of a derived run directory's name (`Config.run_dir`). Not derived from the roles:
#: the names of existing run directories must not change, or resuming would not find them.
#: ``reload_model`` is a path: two runs differing only in it share a derived directory, and resuming
#: the second one refuses (it is an identity key).
RUN_DIR_NAME_SKIP = ("saveto", "runs_dir", "resume", "progress", "data_path", "download", "reload_model",
                     "valid_test", "train_err_size", "word_attack", "word_attack_size", "word_attack_seed",
                     "word_attack_max_change")   # word attacks: a finished run rerun with one finds its folder


def _convert(name, raw):
    return _options.convert(name, raw, *SPEC[name])


def validate(cfg):
    """Refuse impossible combinations with one line naming the key and the fix."""
    checks = [
        (0.0 <= cfg.alpha <= 1.0, f"alpha={cfg.alpha} must be in [0, 1]"),
        (cfg.eps >= 0, f"eps={cfg.eps} must be >= 0 (the sign of the step is set by the gradient)"),
        (cfg.clip >= 0, f"clip={cfg.clip} must be >= 0 (0 turns clipping off)"),
        (cfg.wdim > 0 and cfg.hdim > 0, "wdim and hdim must be positive"),
        (cfg.wemb_scale > 0 and cfg.wemb_scale < 1e6, f"wemb_scale={cfg.wemb_scale} must be positive"),
        (cfg.batch_size > 0 and cfg.valid_batch_size > 0, "batch_size and valid_batch_size must be positive"),
        (cfg.max_epochs > 0, f"max_epochs={cfg.max_epochs} must be positive"),
        (cfg.patience > 0, f"patience={cfg.patience} must be positive"),
        (min(cfg.dispFreq, cfg.saveFreq) > 0 and cfg.validFreq >= 0,
         "dispFreq and saveFreq must be positive, validFreq positive or 0 (once per epoch)"),
        (cfg.n_words >= 3, f"n_words={cfg.n_words} must be >= 3 (0 = padding, 1 = UNK)"),
        (cfg.maxlen >= 0, f"maxlen={cfg.maxlen} must be >= 0 (0 = no limit)"),
        (0.0 < cfg.valid_portion < 1.0, f"valid_portion={cfg.valid_portion} must be in (0, 1)"),
        (0.0 < cfg.test_portion < 1.0, f"test_portion={cfg.test_portion} must be in (0, 1)"),
        (bool(cfg.data.strip()), "data= is empty; give imdb, toy, or the path of a CSV, TSV or JSONL file or a folder"),
        (bool(cfg.text_col) and bool(cfg.label_col) and cfg.text_col != cfg.label_col,
         f"text_col={cfg.text_col!r} and label_col={cfg.label_col!r} must be two different, non-empty names"),
        (cfg.test_size == -1 or cfg.test_size > 0, f"test_size={cfg.test_size} must be -1 (all) or positive"),
        (cfg.train_err_size == -1 or cfg.train_err_size > 0,
         f"train_err_size={cfg.train_err_size} must be -1 (all) or positive"),
        (cfg.lrate > 0, f"lrate={cfg.lrate} must be positive"),
        (cfg.seed >= 0, f"seed={cfg.seed} must be >= 0"),
        (cfg.w2v_std >= 0 and cfg.w2v_std < 1e6, f"w2v_std={cfg.w2v_std} must be >= 0 (0 = keep the file's scale)"),
        (not (cfg.device == "gpu" and cfg.mode not in ("auto", "JAX")),
         f"device=gpu runs through JAX; drop mode={cfg.mode} or use device=cpu"),
        (not (cfg.device == "gpu" and cfg.floatX != "float32"), "device=gpu needs floatX=float32"),
        (not (cfg.maxlen_mode == "truncate" and cfg.maxlen == 0), "maxlen_mode=truncate needs maxlen > 0"),
        (cfg.vat_weight >= 0, f"vat_weight={cfg.vat_weight} must be >= 0"),
        (cfg.vat_iters >= 0, f"vat_iters={cfg.vat_iters} must be >= 0 (0 = a random direction)"),
        (cfg.vat_xi > 0, f"vat_xi={cfg.vat_xi} must be > 0"),
        (cfg.unlabelled >= 0, f"unlabelled={cfg.unlabelled} must be >= 0 (0 = none)"),
        (not (cfg.unlabelled and not cfg.vat), "unlabelled=N feeds the VAT term only: add vat=1 (and eps > 0)"),
        (not (cfg.vat and (cfg.mode == "JAX" or cfg.device == "gpu")),
         "vat=1 draws its random direction in the graph, which mode=JAX does not support; use mode=C"),
        (not (cfg.ascc and cfg.vat), "ascc=1 and vat=1 are two adversarial terms; choose one"),
        (not (cfg.ascc and cfg.eps > 0), f"eps={cfg.eps} is unused by ascc=1 (its perturbations are the convex hull "
         "of each word's synonyms, not a radius); drop eps="),
        (not (cfg.ascc and cfg.adv == 0), "adv=0 turns the adversarial term off but ascc=1 is one; drop one of them"),
        (cfg.ascc_k >= 1, f"ascc_k={cfg.ascc_k} must be >= 1 (the inner steps)"),
        (cfg.ascc_beta >= 0, f"ascc_beta={cfg.ascc_beta} must be >= 0"),
        (cfg.ascc_entropy >= 0, f"ascc_entropy={cfg.ascc_entropy} must be >= 0 (0 = no sparsity term)"),
        (cfg.ascc_lr > 0, f"ascc_lr={cfg.ascc_lr} must be > 0"),
        (cfg.ascc_max_subs >= 2, f"ascc_max_subs={cfg.ascc_max_subs} must be >= 2 (the word and one substitute)"),
        (0.0 <= cfg.synonym_aug <= 1.0, f"synonym_aug={cfg.synonym_aug} must be in [0, 1] (a probability)"),
        (cfg.attack_k >= 0, f"attack_k={cfg.attack_k} must be >= 0 (0 = no iterative attack)"),
        (cfg.attack_size == -1 or cfg.attack_size > 0, f"attack_size={cfg.attack_size} must be -1 (all) or positive"),
        (cfg.word_attack_size > 0, f"word_attack_size={cfg.word_attack_size} must be positive"),
        (cfg.word_attack_seed >= 0, f"word_attack_seed={cfg.word_attack_seed} must be >= 0"),
        (0 < cfg.word_attack_max_change <= 1,
         f"word_attack_max_change={cfg.word_attack_max_change} must be in (0, 1] (a fraction of the words)"),
    ]
    for item in _options.split_list(cfg.word_attack):
        n = item.partition(":")[2].strip()
        if item.count(":") > 1 or (":" in item and not (n.isdigit() and int(n) > 0)):
            raise UserError(f"word_attack={cfg.word_attack!r}: {item!r} should be METHOD or METHOD:N with N > 0 "
                            "test reviews, e.g. word_attack=pwws,beam:200")
    unknown = [m for m in cfg.word_attacks if m not in WORD_ATTACKS]
    if unknown:
        raise UserError(f"word_attack={cfg.word_attack!r}: {unknown[0]!r} is not a word attack; give a comma list of "
                        f"{', '.join(WORD_ATTACKS)} (or nothing)")
    try:
        strengths = cfg.attack_strengths
    except ValueError:
        raise UserError(f"attack_eps={cfg.attack_eps!r} must be comma-separated numbers, e.g. attack_eps=0.01,0.1") from None
    if any(not (0 <= s < float("inf")) for s in strengths):
        raise UserError(f"attack_eps={cfg.attack_eps!r}: strengths must be finite numbers >= 0")
    for ok, message in checks:
        if not ok:
            raise UserError(message)
    for name in ("saveto", "runs_dir", "data_path", "w2v_path", "reload_model"):
        if getattr(cfg, name):
            _checks.path_names(name, getattr(cfg, name))
    if is_corpus_path(cfg.data):
        _checks.path_names("data", cfg.data)
    if not cfg.saveto:
        try:
            _checks.path_names("saveto", cfg.run_dir())
        except UserError:
            raise UserError("the run directory named after the overridden keys is too long for the file system; "
                            "give saveto=DIR") from None
    _checks.model_fits(cfg)
    return cfg


def split_key_values(argv):
    """Training ``key=value`` strings as ``(key, raw value)`` pairs (`lstm_adv.common.options.split_pairs`)."""
    return _options.split_pairs(argv, FIELDS, SWITCHES)


def _expand_config_files(argv):
    """``argv`` without its ``config=PATH`` arguments, and the files' keys (later files win)."""
    rest, from_files = [], {}
    for arg in argv:
        name, sep, raw = arg.partition("=")
        if sep and name.strip().lstrip("-") == "config":
            if not raw.strip():
                raise UserError("config= is empty; give a run's config.json or a file of key=value lines")
            from_files.update(read_config_file(raw.strip(), split_key_values))
        else:
            rest.append(arg)
    return rest, from_files


def parse_args(argv, base=None):
    """Build a `Config` from ``key=value`` strings (each key at most once).

    ``config=PATH`` (see `read_config_file`) makes that file's keys the base: they win over the
    defaults (of the data set and preset), and every other key on the command line wins over
    them, including ``preset=NAME``, whose keys then replace the file's.

    Raises
    ------
    UserError
        For an argument without ``=``, an unknown key (with a "did you mean"), a value of the
        wrong type or outside its choices, an impossible combination, or an unreadable ``config=``.
    """
    argv, raw_file = _expand_config_files(argv)
    from_file = {name: _convert(name, raw.strip()) for name, raw in raw_file.items()}
    values = {name: _convert(name, raw.strip()) for name, raw in split_key_values(argv)}
    if base is None:
        merged = {**from_file, **values}
        base = defaults_for(merged.get("data", Config.data), merged.get("preset", Config.preset))
    base = dataclasses.replace(base, **from_file)
    if values.get("preset"):
        base = dataclasses.replace(base, preset=values["preset"], **PRESETS[values["preset"]])
    return validate(dataclasses.replace(base, **values))


def from_dict(d):
    """A `Config` from a saved ``config.json``'s ``config`` entry (unknown keys are an error)."""
    unknown = set(d) - set(FIELDS)
    if unknown:
        raise UserError(f"saved configuration has unknown keys {sorted(unknown)}; was it made by a newer lstm_adv?")
    for name, value in d.items():
        choices = SPEC[name][0].metadata.get("choices")
        if choices is not None and value not in choices:
            listed = ", ".join(str(c) for c in choices if c != "")
            raise UserError(f"saved configuration has {name}={value!r}, not one of {listed}; "
                            "was it made by another version of lstm_adv, or edited?")
    return validate(Config(**d))


def help_text(prog):
    """``--help``: every key with its type, default and meaning, grouped."""
    description = "\n".join([
        "config=PATH starts from a saved run's config.json (or its run directory, or a file of",
        "key=value lines or a JSON object of keys); keys given on the command line win over it.",
        "print_config=1 prints the resolved configuration as JSON and exits without writing anything.",
        "",
        "Every key below can be given as key=value. Defaults follow the paper (section 5.1.1)",
        "and the Theano LSTM tutorial. With data=toy these defaults change: "
        + ", ".join(f"{k}={v}" for k, v in DATA_DEFAULTS["toy"].items()) + ".",
        "preset=authors sets " + " ".join(f"{k}={v}" for k, v in PRESETS["authors"].items())
        + " (the authors' code); preset=miyato sets " + " ".join(f"{k}={v}" for k, v in PRESETS["miyato"].items())
        + " (the recipe for a user's corpus); keys given after a preset win. With data=PATH, "
        + ", ".join(f"{k}={v}" for k, v in CORPUS_DEFAULTS.items()) + " (once per epoch)."])
    return _options.help_text(Config, f"{prog} [config=PATH] [print_config=1] [key=value ...]", description)


def dumps(cfg):
    return json.dumps(cfg.to_dict(), indent=2)

"""Decode adversarial perturbations of word embeddings back into words (the paper's section 7).

``python -m lstm_adv.visualize model=RUN_DIR_OR_NPZ [split=test] [first=5] ...`` (``--help``
lists every key) takes reviews from a split of the run's data set (by index, the first N, or a
seeded sample) or from text given on the command line / in a file (one review per non-empty
line, tokenised exactly as training was: `lstm_adv.imdb.tokenize`), and writes the paper's
Table 2 and Table 3 plus summary figures as Markdown (default) or a self-contained HTML page.

The perturbation
----------------
For a review with word ids ``x``, true label ``y`` and embedded input ``e = Wemb[x]``, the step
"towards the wrong label" is the one the adversarial objective trains against: it increases
the loss of the TRUE label,

    e~ = e + eps * sign(dL(theta, e; y)/de)      (`lstm_adv.adversarial.perturbation`, norm sign)

with the gradient of the clean loss, dropout off (`lstm_adv.graph.Model.f_grad_emb`). For text
given on the command line the label is ``label=`` (1 positive, 0 negative), or by default the
model's own prediction (the step then moves away from what the model says).

The five rows of Table 2 (our reading of the paper)
---------------------------------------------------
The paper's Table 2 is "progressively improving": each row adds one fix to the row above, and
only row 4 changes the size of the perturbation. Rows 2-3 therefore perturb with the TRAINING
strength (the paper: "on the order of eps = 0.5"; our key ``eps_knn``, default 0.5, which is
why those rows are mostly garbage, "conquistadors ..." in the paper), rows 4-5 with the scaled
``eps_vis`` (paper: about 0.005).

1. ``original``: the review as the model sees it (words outside the model's vocabulary are UNK).
2. ``KNN``: each perturbed vector ``e~_t`` (at ``eps_knn``) becomes the word whose row of the
   model's ``Wemb`` has the highest cosine similarity with it, over the whole vocabulary except
   the padding id 0 (UNK, id 1, is a candidate: the paper's rows show UNK).
3. ``KNN top N``: the same, restricted to UNK and the ``top_words`` most frequent training words
   (ids 2 .. top_words+1, since the dictionary is frequency-ranked; paper: 5,000).
4. ``+ scaled perturbation``: row 3 with ``e~_t`` computed at ``eps_vis``.
5. ``+ bigram smoothing``: at each position the ``k`` most cosine-similar candidates of row 4
   are rescored with a bigram language model, and the whole sentence is decoded jointly by
   Viterbi, maximising

       sum_t cos(e~_t, Wemb[w_t])  +  lm_weight * sum_t log P(w_t | w_{t-1})

   with sentence boundaries (padding id 0 serves as <s> and </s>, so P(w_1 | <s>) and
   P(</s> | w_T) count). ``lm_weight=0`` makes row 5 equal to row 4; large values let the
   language model override the perturbation (the paper: the bigram model "often [snaps]
   perturbed words back to what they were before" and "often ... does more harm than good").
   Cosine similarities live in [-1, 1] while log-probabilities are several nats apart, so useful
   weights are small: the default 0.02 lets a word e^5 (about 150) times likelier under the LM
   win against a cosine deficit of 0.1. On a plain IMDB model (valid error 0.13) at
   eps_vis=0.005, lm_weight = 0, 0.01, 0.02, 0.05, 0.1 changed 9.8, 12.2, 14.0, 17.9, 22.2% of
   the tokens of 300 test reviews: the language model mostly pulls words towards frequent ones
   rather than back to the original.

The bigram language model
-------------------------
Interpolated Kneser-Ney for bigrams (Chen & Goodman 1998) over the model's vocabulary (ids,
UNK included), fitted on the whole IMDB training split (every training review, without the
``maxlen`` filter and including the reviews the run held out for validation: the paper
"trained a bigram model on the IMDB training corpus"):

    P(b | a) = max(c(a b) - D, 0) / c(a .)  +  D * N1+(a .) / c(a .) * P_cont(b)
    P_cont(b) = (N1+(. b) + 1) / (N1+(. .) + V)        (add-one on continuation counts)

``D = n1 / (n1 + 2 n2)`` from the counts of bigrams seen once and twice (clipped to
[0.05, 0.95]); an unseen history falls back to ``P_cont``. Every conditional distribution sums
to one. The counts are cached in the run directory (``bigram_lm.npz``, keyed by the vocabulary)
or, if it is not writable, in the IMDB cache folder; ``lm_cache=PATH`` chooses the file.

Table 3 and the summary
-----------------------
Table 3 pairs the original and the row-5 decoding (changed words **bold** in Markdown,
``<mark>`` in HTML) for up to ``pairs`` reviews whose prediction flips under the continuous
perturbation at ``eps_vis`` (originally classified correctly, wrong after the step), preferring
those whose decoded text still fools the model, then those short enough to show in full
(``max_tokens``), then the lowest P(true label) on the decoded text. For each it gives
P(true label) on the original text, on the perturbed embeddings and on the decoded text
(re-encoded and classified). When no review of the selection flips, the largest drops in
P(true label) are shown and labelled so.

The summary gives, per row, the fraction of tokens that differ from the original, the flip
rate of the continuous perturbation and of the decoded text (both over the reviews that were
classified correctly), and the time each stage took. Nearest neighbours are batched matrix
products of L2-normalised rows; the Viterbi decoder and the language-model lookups run on
whole batches of reviews at once. ``bench=N`` decodes N reviews (cycling through the split if
it is shorter) and prints only the summary, to measure the speed.

Splits are sorted by length when loaded (`lstm_adv.data.finalize`), so ``index=`` counts in
that order and ``first=N`` gives the N shortest reviews; ``sample=N`` draws a seeded sample.
"""

import dataclasses
import hashlib
import html
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import checks as _checks
from .config import split_key_values
from .errors import UserError, cli_entry

ROW_KEYS = ("original", "knn", "knn_top", "scaled", "bigram")


# ---------------------------------------------------------------------------------------------
# options

def _opt(default, help, choices=None):
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class Options:
    model: str = _opt("", "run directory of lstm_adv.train, or its params.npz (required)")
    split: str = _opt("test", "split to take reviews from", ("valid", "test"))
    index: str = _opt("", "comma list of review indices in the split (splits are sorted by length)")
    first: int = _opt(0, "the first N reviews of the split (the N shortest); default 5 if nothing else is chosen")
    sample: int = _opt(0, "a seeded random sample of N reviews of the split")
    seed: int = _opt(0, "seed of sample= and bench=")
    text: str = _opt("", "one review given as text (tokenised as in training)")
    text_file: str = _opt("", "a file with one review per non-empty line")
    label: int = _opt(-1, "true label of text reviews: 1 positive, 0 negative, -1 = the model's prediction",
                      (-1, 0, 1))
    eps_vis: float = _opt(0.005, "scaled perturbation of rows 4-5 (paper: about 0.005)")
    eps_knn: float = _opt(0.5, "perturbation of rows 2-3: the training strength (paper: about 0.5)")
    top_words: int = _opt(5000, "rows 3-5 decode to UNK or the N most frequent training words")
    k: int = _opt(10, "cosine candidates per position rescored by the bigram model (row 5)")
    lm_weight: float = _opt(0.02, "weight of the bigram log-probability against cosine similarity (row 5)")
    lm_cache: str = _opt("", "bigram model cache file (default: RUN_DIR/bigram_lm.npz)")
    lm_weights: str = _opt("", "comma list of lm_weight values: row 5 decoded at each, a table and a figure of "
                               "tokens changed and flip rates against lm_weight (e.g. 0,0.01,0.02,0.05,0.1)")
    lm_figure: str = _opt("", "where the lm_weights figure goes (default: OUT-lm_weight.png, else lm_weight.png)")
    format: str = _opt("", "md or html (default: html if out= ends in .html, else md)", ("", "md", "html"))
    out: str = _opt("", "write the document here instead of stdout")
    show: int = _opt(5, "reviews shown in Table 2 (the summary covers all)")
    pairs: int = _opt(3, "reviews shown in Table 3")
    max_tokens: int = _opt(80, "tokens shown per text in the tables (0 = all)")
    batch_size: int = _opt(32, "reviews per model call")
    bench: int = _opt(0, "decode N reviews (cycling through the split) and print only the summary")
    data_path: str = _opt("", "override the run's data_path (where its IMDB archive is)")
    mode: str = _opt("", "override the run's PyTensor backend (C, NUMBA, JAX, FAST_COMPILE)",
                     ("", "C", "NUMBA", "JAX", "FAST_COMPILE"))


OPT_FIELDS = {f.name: f for f in dataclasses.fields(Options)}


def help_text():
    lines = ["usage: python -m lstm_adv.visualize model=RUN_DIR_OR_NPZ [key=value ...]", "",
             "Decode adversarial perturbations of a trained model's word embeddings back into words",
             "(Caswell, Nie & Sen 2015, section 7: Tables 2 and 3). Keys:", ""]
    for f in OPT_FIELDS.values():
        choices = f.metadata["choices"]
        typ = "|".join(str(c) for c in choices if c != "") if choices else f.type
        typ = typ if isinstance(typ, str) else typ.__name__
        lines.append(f"  {f.name + '=' + str(f.default):<22} {typ:<20} {f.metadata['help']}")
    lines += ["", "Rows of Table 2: original; KNN (eps_knn); KNN top N (eps_knn); + scaled perturbation",
              "(eps_vis); + bigram smoothing (Viterbi over the k candidates). See the module docstring."]
    return "\n".join(lines)


def parse_options(argv):
    """`Options` from ``key=value`` strings; `UserError` on anything malformed."""
    values = {}
    for name, raw in split_key_values(argv, OPT_FIELDS):
        f = OPT_FIELDS[name]
        typ = {"int": int, "float": float, "str": str}[f.type] if isinstance(f.type, str) else f.type
        try:
            value = typ(raw.strip()) if typ is not str else raw
        except ValueError:
            raise UserError(f"{name}={raw!r} is not {'an' if typ is int else 'a'} {typ.__name__}") from None
        if typ is float and not np.isfinite(value):
            raise UserError(f"{name}={raw} must be a finite number")
        choices = f.metadata["choices"]
        if choices is not None and value not in choices:
            raise UserError(f"{name}={raw} is not one of {', '.join(str(c) for c in choices if c != '')}")
        values[name] = value
    opts = Options(**values)
    checks = [
        (opts.model, "model= is required: a run directory of lstm_adv.train or its params.npz"),
        (opts.eps_vis >= 0 and opts.eps_knn >= 0, "eps_vis and eps_knn must be >= 0"),
        (opts.top_words >= 1, f"top_words={opts.top_words} must be >= 1"),
        (opts.k >= 1, f"k={opts.k} must be >= 1"),
        (opts.lm_weight >= 0, f"lm_weight={opts.lm_weight} must be >= 0 (0 = no bigram smoothing)"),
        (min(opts.first, opts.sample, opts.bench, opts.show, opts.pairs, opts.max_tokens, opts.seed) >= 0,
         "first, sample, bench, show, pairs, max_tokens and seed must be >= 0"),
        (opts.batch_size >= 1, f"batch_size={opts.batch_size} must be >= 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)
    chosen = [k for k in ("index", "first", "sample", "text", "text_file", "bench") if getattr(opts, k)]
    if len(chosen) > 1:
        raise UserError(f"choose the reviews one way: {' and '.join(k + '=' for k in chosen)} were both given")
    if "text" in values and not opts.text.strip():
        raise UserError("text= is empty; give a review, e.g. text=\"a wonderful film\"")
    _checks.path_names("model", opts.model)
    if opts.text_file:
        _checks.readable_file("text_file", opts.text_file)
    if opts.data_path:
        _checks.readable_path("data_path", opts.data_path)
    if opts.out:
        _checks.writable_file("out", opts.out)
    if opts.lm_cache:
        _checks.writable_file("lm_cache", opts.lm_cache)
    return opts


# ---------------------------------------------------------------------------------------------
# loading a run

@dataclass
class Run:
    """A trained model's files: configuration, parameters and dictionary."""

    path: Path          # the run directory
    cfg: object         # lstm_adv.config.Config
    n_words: int
    params: dict
    words: list         # id -> word, len n_words
    data_cache: object = None   # the run's processed IMDB cache (.npz), when its archive is not found
    word_counts: list = None    # emb_norm=1: the training word counts config.json records


def load_run(model, data_path="", mode=""):
    """Read and check ``config.json``, ``params.npz`` and ``vocab.json`` of a run.

    Raises
    ------
    UserError
        When the path is missing, a file is not one of ours, or the files do not fit together.
    """
    from .config import from_dict
    from .graph import load_params
    from .model import check_params

    p = Path(model)
    if p.is_dir():
        run_dir, npz = p, p / "params.npz"
        if not npz.exists():
            raise UserError(f"{p} has no params.npz: model= must be a run directory of lstm_adv.train "
                            "(after its first validation) or a params.npz")
    elif p.is_file():
        run_dir, npz = p.parent, p
    else:
        raise UserError(f"no such model: {model} (give a run directory of lstm_adv.train or its params.npz)")

    cfg_path = run_dir / "config.json"
    try:
        record = json.loads(cfg_path.read_text())
    except FileNotFoundError:
        raise UserError(f"{run_dir} has no config.json: {npz.name} must sit in a run directory of "
                        "lstm_adv.train (with its config.json and vocab.json)") from None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        raise UserError(f"{cfg_path} is not a readable lstm_adv run configuration") from None
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict) or "n_words" not in record:
        raise UserError(f"{cfg_path} is not an lstm_adv run configuration (no 'config' and 'n_words' entries)")
    try:
        cfg = from_dict(record["config"])
        n_words = int(record["n_words"])
    except (TypeError, ValueError) as err:
        raise UserError(f"{cfg_path} is not a valid lstm_adv run configuration ({err})") from None
    overrides = {}
    if data_path:
        overrides["data_path"] = data_path
    if mode:
        overrides.update(mode=mode, device="gpu" if mode == "JAX" and cfg.device == "gpu" else "cpu")
    cfg = dataclasses.replace(cfg, progress=0, **overrides)
    cfg, data_cache = _recorded_data(cfg, record)

    params = load_params(npz)
    if "Wemb" not in params:
        raise UserError(f"{npz} is not an lstm_adv parameter file (no Wemb array; it holds "
                        f"{', '.join(list(params)[:5]) or 'nothing'})")
    check_params(params, cfg, n_words, str(npz))
    for k, v in params.items():
        bad = int(v.size - np.isfinite(v).sum())
        if bad:
            raise UserError(f"{npz}: parameter {k} holds {bad} NaN/Inf values (the run diverged); a model with "
                            "non-finite parameters cannot be decoded: pick another run")

    vocab_path = run_dir / "vocab.json"
    try:
        words = json.loads(vocab_path.read_text())
    except FileNotFoundError:
        raise UserError(f"{run_dir} has no vocab.json (the id -> word list written by lstm_adv.train); "
                        "the visualiser cannot name the words without it") from None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        raise UserError(f"{vocab_path} is not a readable JSON word list") from None
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise UserError(f"{vocab_path} is not a list of words")
    rows = params["Wemb"].shape[0]
    if len(words) != rows:
        raise UserError(f"{vocab_path} has {len(words)} words but Wemb in {npz} has {rows} rows: "
                        "the dictionary does not belong to this model")
    return Run(run_dir, cfg, n_words, params, words, data_cache, record.get("word_counts"))


def _recorded_data(cfg, record):
    """Where the run's IMDB data is, from its ``config.json``, when nothing else says so.

    With no ``data_path`` (in the run or given here) and no ``$LSTM_ADV_DATA``, the archive the
    run was trained on (``data.source``) is used if it still exists; else its processed cache
    (``data.cache``, or the cache dir's file for the recorded SHA-256), so the visualiser never
    downloads what the run already had. Returns ``(cfg, cache npz or None)``.
    """
    import os
    if cfg.data != "imdb" or cfg.data_path or os.environ.get("LSTM_ADV_DATA"):
        return cfg, None
    info = record.get("data") if isinstance(record.get("data"), dict) else {}
    source = info.get("source")
    if isinstance(source, str) and source and Path(source).exists():
        return dataclasses.replace(cfg, data_path=source), None
    from .imdb import cache_paths
    candidates = [Path(info["cache"])] if isinstance(info.get("cache"), str) else []
    if isinstance(info.get("sha256"), str):
        candidates.append(cache_paths(info["sha256"])[0])
    for npz in candidates:
        if npz.exists() and npz.with_name(npz.name[:-len(".npz")] + ".vocab.json").exists():
            return cfg, npz
    return cfg, None


def vocab_digest(words):
    return hashlib.sha256(json.dumps(list(words)).encode("utf-8")).hexdigest()[:16]


def _load_data(cfg, words, cache=None, **changes):
    """The run's data set (optionally with changed keys); its dictionary must be the run's.

    ``cache``: a processed IMDB cache to read instead of looking for the archive (`_recorded_data`).
    """
    from .data import finalize, load_dataset
    cfg = dataclasses.replace(cfg, **changes)
    corpus = None
    if cache is not None:
        from .imdb import read_cache
        corpus = read_cache(Path(cache), Path(cache).with_name(Path(cache).name[:-len(".npz")] + ".vocab.json"))
    if corpus is not None:
        data = finalize(corpus.train, corpus.test, corpus.words, cfg, dict(corpus.info, word_counts=corpus.counts))
    else:
        data = load_dataset(cfg)
    if list(data.words[:len(words)]) != list(words):
        raise UserError("the data set's dictionary differs from the run's vocab.json: "
                        "data_path= points to another corpus than the one the model was trained on")
    return data


# ---------------------------------------------------------------------------------------------
# choosing reviews

@dataclass
class Review:
    name: str
    ids: np.ndarray    # int64 word ids
    label: int         # -1 until set (text reviews with label=-1 get the model's prediction)


def select_reviews(opts, run):
    """The reviews named by the options (default: the first 5 of the split)."""
    word_to_id = {w: i for i, w in enumerate(run.words)}
    if opts.text or opts.text_file:
        if opts.text:
            texts = [opts.text]
        else:
            try:
                texts = [ln for ln in Path(opts.text_file).read_text(encoding="utf-8").splitlines() if ln.strip()]
            except FileNotFoundError:
                raise UserError(f"no such text_file: {opts.text_file}") from None
            except (OSError, UnicodeDecodeError) as err:
                raise UserError(f"cannot read text_file {opts.text_file}: {err}") from None
            if not texts:
                raise UserError(f"text_file {opts.text_file} has no review (no non-empty line)")
        from .imdb import tokenize
        reviews = []
        for i, text in enumerate(texts):
            tokens = tokenize(text)
            if not tokens:
                raise UserError(f"review {i + 1} is empty after tokenisation")
            ids = np.array([word_to_id.get(t, 1) for t in tokens], dtype=np.int64)
            reviews.append(Review("text" if opts.text else f"line {i + 1}", ids, opts.label))
        return reviews

    data = _load_data(run.cfg, run.words, run.data_cache)
    split = getattr(data, opts.split)
    n = len(split)
    if n == 0:
        raise UserError(f"split={opts.split} of this run's data set is empty")
    if opts.index:
        try:
            idx = [int(v) for v in opts.index.split(",") if v.strip()]
        except ValueError:
            raise UserError(f"index={opts.index!r} must be comma-separated integers, e.g. index=0,5") from None
        if not idx:
            raise UserError("index= names no review")
        for i in idx:
            if not 0 <= i < n:
                raise UserError(f"index={i} is out of range: split={opts.split} has {n} reviews (0..{n - 1})")
    elif opts.sample or opts.bench:
        rng = np.random.default_rng(opts.seed)
        want = opts.sample or opts.bench
        if opts.sample and want > n:
            raise UserError(f"sample={want} but split={opts.split} has only {n} reviews")
        reps = -(-want // n)
        idx = np.concatenate([rng.permutation(n) for _ in range(reps)])[:want].tolist()
    else:
        want = opts.first or 5
        if opts.first and opts.first > n:
            raise UserError(f"first={opts.first} but split={opts.split} has only {n} reviews")
        idx = list(range(min(want, n)))
    return [Review(f"{opts.split}[{i}]", np.asarray(split.seqs[i], dtype=np.int64), int(split.labels[i]))
            for i in idx]


# ---------------------------------------------------------------------------------------------
# the bigram language model

LM_VERSION = 1


class BigramLM:
    """Interpolated Kneser-Ney bigram model over word ids; id 0 is the sentence boundary.

    Parameters
    ----------
    keys : int64 array, sorted
        ``a * V + b`` for every bigram (a, b) seen.
    counts : int64 array
        Its count.
    V : int
        Vocabulary size (ids 0 .. V-1).
    """

    def __init__(self, keys, counts, V):
        self.keys = np.asarray(keys, dtype=np.int64)
        self.counts = np.asarray(counts, dtype=np.float64)
        self.V = int(V)
        hist = self.keys // self.V
        self.ctx_total = np.bincount(hist, weights=self.counts, minlength=self.V)
        self.ctx_types = np.bincount(hist, minlength=self.V).astype(np.float64)
        cont = np.bincount(self.keys % self.V, minlength=self.V).astype(np.float64)
        self.p_cont = (cont + 1.0) / (cont.sum() + self.V)
        n1, n2 = float((self.counts == 1).sum()), float((self.counts == 2).sum())
        self.discount = float(np.clip(n1 / (n1 + 2 * n2), 0.05, 0.95)) if n1 + n2 > 0 else 0.5
        self.n_tokens = int(self.counts.sum())

    @classmethod
    def fit(cls, seqs, V):
        """Count the bigrams of id sequences, with boundaries: 0 w1 ... wn 0 w1' ... 0."""
        parts = [np.zeros(1, dtype=np.int64)]
        for s in seqs:
            if len(s):
                parts.append(np.asarray(s, dtype=np.int64))
                parts.append(np.zeros(1, dtype=np.int64))
        stream = np.concatenate(parts)
        if stream.size and int(stream.max()) >= V:
            raise ValueError(f"word id {int(stream.max())} >= V={V}")
        keys, counts = np.unique(stream[:-1] * V + stream[1:], return_counts=True)
        return cls(keys, counts, V)

    def logprob(self, prev, nxt):
        """log P(nxt | prev), elementwise over broadcast int arrays; float32."""
        prev, nxt = np.broadcast_arrays(np.asarray(prev, dtype=np.int64), np.asarray(nxt, dtype=np.int64))
        key = prev * self.V + nxt
        if self.keys.size:
            pos = np.minimum(np.searchsorted(self.keys, key), self.keys.size - 1)
            c = np.where(self.keys[pos] == key, self.counts[pos], 0.0)
        else:
            c = np.zeros(key.shape)
        total = self.ctx_total[prev]
        seen = total > 0
        safe = np.where(seen, total, 1.0)
        backoff = np.where(seen, self.discount * self.ctx_types[prev] / safe, 1.0)
        p = np.where(seen, np.maximum(c - self.discount, 0.0) / safe, 0.0) + backoff * self.p_cont[nxt]
        return np.log(p).astype(np.float32)

    def save(self, path, meta):
        from .utils import atomic_savez
        atomic_savez(path, {"keys": self.keys, "counts": self.counts.astype(np.int64),
                            "V": np.array(self.V), "meta": np.array(json.dumps(meta))})

    @classmethod
    def load(cls, path, meta):
        """The cached model at ``path`` if its metadata equals ``meta``, else None."""
        try:
            with np.load(path, allow_pickle=False) as f:
                if json.loads(str(f["meta"])) != meta:
                    return None
                return cls(f["keys"], f["counts"], int(f["V"]))
        except (FileNotFoundError, OSError, ValueError, KeyError, EOFError, json.JSONDecodeError):
            return None


def lm_meta(run):
    return {"version": LM_VERSION, "data": run.cfg.data, "n_words": run.n_words, "vocab": vocab_digest(run.words)}


def get_lm(run, opts, note):
    """The bigram model: from the cache, else fitted on the whole training split and cached."""
    meta = lm_meta(run)
    if opts.lm_cache:
        paths = [Path(opts.lm_cache)]
    else:
        from .imdb import cache_dir
        paths = [run.path / "bigram_lm.npz", cache_dir() / "bigram" / f"{meta['data']}-{meta['vocab']}.npz"]
    for path in paths:
        lm = BigramLM.load(path, meta)
        if lm is not None:
            return lm, path
    t0 = time.perf_counter()
    # Every training review: no maxlen filter; train + the run's validation part = the whole split.
    data = _load_data(run.cfg, run.words, run.data_cache, maxlen=0, maxlen_mode="filter", test_size=-1)
    lm = BigramLM.fit(list(data.train.seqs) + list(data.valid.seqs), run.n_words)
    for path in paths:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lm.save(path, meta)
            break
        except OSError:
            continue
    else:
        path = None
    note(f"bigram model: {lm.n_tokens} training bigrams, {lm.keys.size} distinct, D={lm.discount:.3f}, "
         f"fitted in {time.perf_counter() - t0:.1f}s" + (f", cached in {path}" if path else " (not cached)"))
    return lm, path


# ---------------------------------------------------------------------------------------------
# decoding

def viterbi(emit, start, trans, end, lengths):
    """Best candidate path per sequence, for a batch of sequences of different lengths.

    Maximises ``start[c_0] + sum_t emit[t, c_t] + sum_{t>0} trans[t-1, c_{t-1}, c_t] + end[c_{L-1}]``.

    Parameters
    ----------
    emit : array (B, T, K)
        Score of candidate k at position t.
    start : array (B, K)
        Score of starting with candidate k.
    trans : array (B, T-1, K, K)
        ``trans[b, t, i, j]``: score of candidate j at position t+1 after candidate i at t.
    end : array (B, K)
        Score of ending with candidate k (at each sequence's last position, ``lengths[b] - 1``).
    lengths : int array (B,)
        Each >= 1 and <= T.

    Returns
    -------
    int64 array (B, T)
        Chosen candidate index per position; -1 beyond each sequence's length.
    """
    emit = np.asarray(emit)
    B, T, K = emit.shape
    lengths = np.asarray(lengths)
    delta = start + emit[:, 0]
    back = np.empty((B, T, K), dtype=np.int64)
    back[:, 0] = np.arange(K)
    keep = np.broadcast_to(np.arange(K), (B, K))
    for t in range(1, T):
        scores = delta[:, :, None] + trans[:, t - 1]          # (B, K_prev, K)
        best = scores.argmax(axis=1)                           # (B, K)
        new = np.take_along_axis(scores, best[:, None, :], axis=1)[:, 0] + emit[:, t]
        active = (t < lengths)[:, None]
        delta = np.where(active, new, delta)
        back[:, t] = np.where(active, best, keep)
    delta = delta + end
    path = np.empty((B, T), dtype=np.int64)
    path[:, T - 1] = delta.argmax(axis=1)
    for t in range(T - 1, 0, -1):
        path[:, t - 1] = np.take_along_axis(back[:, t], path[:, t:t + 1], axis=1)[:, 0]
    path[np.arange(T)[None, :] >= lengths[:, None]] = -1
    return path


def normalize_rows(a):
    a = np.asarray(a, dtype=np.float32)
    norm = np.sqrt((a * a).sum(axis=-1, keepdims=True))
    return a / np.maximum(norm, 1e-12)


class Decoder:
    """Nearest-word search in a model's ``Wemb``, batched over tokens.

    Parameters
    ----------
    Wemb : array (V, E)
    top_words : int
        Restricted search: UNK (id 1) and ids 2 .. top_words+1.
    chunk : int
        Tokens per matrix product (bounds memory at chunk x V floats).
    """

    def __init__(self, Wemb, top_words, chunk=4096):
        self.Wemb = np.asarray(Wemb, dtype=np.float32)
        self.Wn = normalize_rows(self.Wemb)
        self.V = self.Wemb.shape[0]
        # Frequency-ranked ids: the restricted set is the contiguous block 1 .. top_words+1.
        self.top_end = min(self.V, top_words + 2)
        self.chunk = chunk

    def _chunks(self, vectors):
        for s in range(0, vectors.shape[0], self.chunk):
            yield s, normalize_rows(vectors[s:s + self.chunk])

    def nearest(self, vectors):
        """Nearest word over the whole vocabulary (no padding) and over the restricted set.

        Returns
        -------
        full, top : int64 arrays (N,)
        """
        full = np.empty(vectors.shape[0], dtype=np.int64)
        top = np.empty(vectors.shape[0], dtype=np.int64)
        for s, v in self._chunks(vectors):
            sims = v @ self.Wn[1:].T                          # ids 1 .. V-1
            full[s:s + len(v)] = 1 + sims.argmax(axis=1)
            top[s:s + len(v)] = 1 + sims[:, :self.top_end - 1].argmax(axis=1)
        return full, top

    def candidates(self, vectors, k):
        """The k most cosine-similar words of the restricted set, best first.

        Returns
        -------
        ids : int64 (N, k'), sims : float32 (N, k'), with k' = min(k, size of the set)
        """
        n_set = self.top_end - 1
        k = min(k, n_set)
        ids = np.empty((vectors.shape[0], k), dtype=np.int64)
        sims_out = np.empty((vectors.shape[0], k), dtype=np.float32)
        for s, v in self._chunks(vectors):
            sims = v @ self.Wn[1:self.top_end].T
            if k < n_set:
                part = np.argpartition(sims, n_set - k, axis=1)[:, n_set - k:]
            else:
                part = np.broadcast_to(np.arange(n_set), (len(v), n_set))
            part_sims = np.take_along_axis(sims, part, axis=1)
            order = np.argsort(-part_sims, axis=1, kind="stable")
            ids[s:s + len(v)] = 1 + np.take_along_axis(part, order, axis=1)
            sims_out[s:s + len(v)] = np.take_along_axis(part_sims, order, axis=1)
        return ids, sims_out


def bigram_decode(cand, sims, lengths, lm, lm_weight, max_cells=2_000_000):
    """Row 5: Viterbi over each review's candidates, cosine + lm_weight * bigram log-probability.

    Parameters
    ----------
    cand, sims : arrays (N, K)
        Candidates and their cosine similarities for the concatenated tokens of all reviews.
    lengths : sequence of int
        Tokens per review (sum = N).

    Returns
    -------
    int64 array (N,): the chosen word ids.
    """
    N, K = cand.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    out = np.empty(N, dtype=np.int64)
    order = np.argsort(lengths, kind="stable")
    i = 0
    while i < len(order):
        # A group of reviews of similar length, padded to the longest, about max_cells tokens*K*K.
        j = i + 1
        while j < len(order) and (j - i + 1) * lengths[order[j]] * K * K <= max_cells:
            j += 1
        group = order[i:j]
        T = int(lengths[group].max())
        B = len(group)
        c = np.zeros((B, T, K), dtype=np.int64)
        e = np.zeros((B, T, K), dtype=np.float32)
        for b, r in enumerate(group):
            L = lengths[r]
            c[b, :L] = cand[offsets[r]:offsets[r] + L]
            e[b, :L] = sims[offsets[r]:offsets[r] + L]
        start = lm_weight * lm.logprob(0, c[:, 0])
        trans = lm_weight * lm.logprob(c[:, :-1, :, None], c[:, 1:, None, :])
        last = np.take_along_axis(c, (lengths[group] - 1)[:, None, None], axis=1)[:, 0]
        end = lm_weight * lm.logprob(last, 0)
        path = viterbi(e, start, trans, end, lengths[group])
        for b, r in enumerate(group):
            L = lengths[r]
            out[offsets[r]:offsets[r] + L] = c[b, np.arange(L), path[b, :L]]
        i = j
    return out


# ---------------------------------------------------------------------------------------------
# the analysis

@dataclass
class Result:
    """Everything the tables show, per review."""

    reviews: list
    rows: dict                 # row key -> list of int64 arrays (decoded ids per review)
    p_orig: np.ndarray         # P(true label) on the original text, (R,)
    pred_orig: np.ndarray      # predicted label on the original text
    p_emb: dict                # eps -> P(true) on perturbed embeddings, (R,)
    pred_emb: dict             # eps -> predicted label on perturbed embeddings
    p_dec: dict                # row key -> P(true) on the decoded text
    pred_dec: dict
    timings: dict
    n_tokens: int


def _batches(lengths, batch_size):
    order = np.argsort(lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def predict_probs(model, seqs, batch_size, floatX):
    """Class probabilities (R, 2) of id sequences, batched by length."""
    from .data import prepare_data
    out = np.zeros((len(seqs), 2), dtype=np.float64)
    for idx in _batches([len(s) for s in seqs], batch_size):
        x, mask, _ = prepare_data([seqs[i] for i in idx], np.zeros(len(idx)), floatX)
        out[idx] = model.f_pred_prob(x, mask)
    return out


def analyse(model, run, reviews, opts, lm=None):
    """Perturb, decode the five rows, and classify everything (see the module docstring).

    Parameters
    ----------
    model : lstm_adv.graph.Model (or anything with f_pred_prob, f_grad_emb, f_prob_emb)
    run : Run (uses params["Wemb"], cfg.floatX)
    reviews : list of Review (labels of -1 are replaced by the model's prediction)
    lm : BigramLM or None (None or lm_weight=0: row 5 = row 4)

    Returns
    -------
    Result
    """
    from .adversarial import perturbation
    from .data import prepare_data

    floatX = run.cfg.floatX
    timings = {}
    R = len(reviews)
    lengths = np.array([len(r.ids) for r in reviews], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    N = int(offsets[-1])
    E = run.params["Wemb"].shape[1]

    t0 = time.perf_counter()
    # Compile the attack functions before timing anything (PyTensor compiles on first use).
    x1, m1, y1 = prepare_data([[1]], [0], floatX)
    model.f_prob_emb(model.f_grad_emb(x1, m1, y1)[1], m1)
    timings["compiling"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    probs0 = predict_probs(model, [r.ids for r in reviews], opts.batch_size, floatX)
    for i, r in enumerate(reviews):
        if r.label < 0:
            r.label = int(probs0[i].argmax())
            r.name += " (label: the model's prediction)"
    y_all = np.array([r.label for r in reviews], dtype=np.int64)
    signs = np.zeros((N, E), dtype=np.int8)
    eps_list = sorted({float(opts.eps_knn), float(opts.eps_vis)})
    p_emb = {e: np.zeros(R) for e in eps_list}
    pred_emb = {e: np.zeros(R, dtype=np.int64) for e in eps_list}
    for idx in _batches(lengths, opts.batch_size):
        x, mask, y = prepare_data([reviews[i].ids for i in idx], y_all[idx], floatX)
        grad, emb = model.f_grad_emb(x, mask, y)
        unit = perturbation(grad, mask, 1.0)          # sign(dL_true/de), zero on padding
        for e in eps_list:
            probs = model.f_prob_emb((emb + e * unit).astype(emb.dtype), mask)
            p_emb[e][idx] = probs[np.arange(len(idx)), y]
            pred_emb[e][idx] = probs.argmax(axis=1)
        for b, i in enumerate(idx):
            signs[offsets[i]:offsets[i + 1]] = unit[:lengths[i], b]
    timings["gradients"] = time.perf_counter() - t0

    ids = np.concatenate([r.ids for r in reviews]) if R else np.zeros(0, dtype=np.int64)
    Wemb = np.asarray(run.params["Wemb"], dtype=np.float32)
    decoder = Decoder(Wemb, opts.top_words)
    t0 = time.perf_counter()
    base = Wemb[ids]
    knn, knn_top = decoder.nearest(base + np.float32(opts.eps_knn) * signs)
    cand, sims = decoder.candidates(base + np.float32(opts.eps_vis) * signs, opts.k)
    scaled = cand[:, 0]
    timings["nearest neighbours"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if lm is not None and opts.lm_weight > 0 and N:
        bigram = bigram_decode(cand, sims, lengths, lm, opts.lm_weight)
    else:
        bigram = scaled.copy()
    timings["bigram Viterbi"] = time.perf_counter() - t0

    def split_rows(flat):
        return [flat[offsets[i]:offsets[i + 1]] for i in range(R)]

    rows = {"original": split_rows(ids), "knn": split_rows(knn), "knn_top": split_rows(knn_top),
            "scaled": split_rows(scaled), "bigram": split_rows(bigram)}
    t0 = time.perf_counter()
    p_dec, pred_dec = {}, {}
    for key in ROW_KEYS[1:]:
        probs = predict_probs(model, rows[key], opts.batch_size, floatX)
        p_dec[key] = probs[np.arange(R), y_all]
        pred_dec[key] = probs.argmax(axis=1)
    timings["classifying decoded text"] = time.perf_counter() - t0
    return Result(reviews, rows, probs0[np.arange(R), y_all], probs0.argmax(axis=1), p_emb, pred_emb,
                  p_dec, pred_dec, timings, N)


# ---------------------------------------------------------------------------------------------
# summary figures and Table 3 choice

def row_labels(opts):
    top = f"KNN top {opts.top_words}"
    return {"original": "original", "knn": "KNN", "knn_top": top, "scaled": f"{top} + scaled perturbation",
            "bigram": f"{top} + scaled perturbation + bigram smoothing"}


def row_eps(opts):
    return {"original": None, "knn": opts.eps_knn, "knn_top": opts.eps_knn, "scaled": opts.eps_vis,
            "bigram": opts.eps_vis}


def summarize(res, opts):
    """Per row: fraction of tokens changed, flip rates (over originally correct reviews)."""
    y = np.array([r.label for r in res.reviews], dtype=np.int64)
    correct = res.pred_orig == y
    n_correct = int(correct.sum())
    orig = np.concatenate(res.rows["original"]) if res.reviews else np.zeros(0, dtype=np.int64)
    eps = row_eps(opts)
    table = []
    for key in ROW_KEYS:
        if key == "original":
            table.append({"row": key, "eps": None, "changed": 0.0, "flip_emb": None, "flip_dec": None})
            continue
        dec = np.concatenate(res.rows[key]) if res.reviews else orig
        changed = float((dec != orig).mean()) if orig.size else 0.0
        flip_emb = float((res.pred_emb[float(eps[key])][correct] != y[correct]).mean()) if n_correct else None
        flip_dec = float((res.pred_dec[key][correct] != y[correct]).mean()) if n_correct else None
        table.append({"row": key, "eps": eps[key], "changed": changed, "flip_emb": flip_emb, "flip_dec": flip_dec})
    return {"rows": table, "n_reviews": len(res.reviews), "n_correct": n_correct, "n_tokens": res.n_tokens}


def choose_pairs(res, opts):
    """Indices for Table 3 and whether they flip (see the module docstring)."""
    if opts.pairs == 0 or not res.reviews:
        return [], True
    y = np.array([r.label for r in res.reviews], dtype=np.int64)
    correct = res.pred_orig == y
    flips = correct & (res.pred_emb[float(opts.eps_vis)] != y)
    dec_flips = res.pred_dec["bigram"] != y
    cand = np.flatnonzero(flips)
    if cand.size:
        # Decoded text still wrong first, then reviews that fit in max_tokens (readable in full).
        fits = [not opts.max_tokens or len(r.ids) <= opts.max_tokens for r in res.reviews]
        order = sorted(cand, key=lambda i: (not dec_flips[i], not fits[i], res.p_dec["bigram"][i]))
        return [int(i) for i in order[:opts.pairs]], True
    # No flip: the largest drops in P(true label), among the correctly classified reviews if any.
    drop = res.p_orig - res.p_emb[float(opts.eps_vis)]
    pool = np.flatnonzero(correct) if correct.any() else np.arange(len(res.reviews))
    order = pool[np.argsort(-drop[pool], kind="stable")]
    return [int(i) for i in order[:opts.pairs]], False


# ---------------------------------------------------------------------------------------------
# rendering

LABEL_NAMES = {0: "negative", 1: "positive"}


def display_word(words, i):
    return "UNK" if i == 1 else words[i]


def md_escape(token):
    token = html.escape(token, quote=False)
    for ch in "\\`*_[]|#~":
        token = token.replace(ch, "\\" + ch)
    return token


#: IMDB's HTML line break, as the tokenizer splits it: shown as a line break, not as four tokens.
LINE_BREAK = ("<", "br", "/", ">")


def render_tokens(ids, ref, words, fmt, max_tokens=0, mark=True):
    """Tokens as text; those differing from ``ref`` are bold (md) or <mark>ed (html).

    In HTML a marked word shows the word it replaced on hover (``title="was: ..."``). The tokens
    ``< br / >`` (IMDB's ``<br />``), when none of them changed, become one line break (``<br>``,
    which Markdown tables render too); consecutive breaks become one.

    Parameters
    ----------
    ids, ref : int arrays of the same length (``ref`` None: mark nothing)
    fmt : "md" or "html"
    max_tokens : int
        Show only the first N tokens, then "[...]" (0 = all).
    """
    n = len(ids) if not max_tokens else min(len(ids), max_tokens)
    out = []
    t = 0
    while t < n:
        changed = mark and ref is not None and int(ids[t]) != int(ref[t])
        span = [display_word(words, int(i)) for i in ids[t:t + len(LINE_BREAK)]]
        if tuple(span) == LINE_BREAK and not (mark and ref is not None and any(
                int(a) != int(b) for a, b in zip(ids[t:t + len(LINE_BREAK)], ref[t:t + len(LINE_BREAK)]))):
            if not out or out[-1] != "<br>":
                out.append("<br>")
            t += len(LINE_BREAK)
            continue
        w = display_word(words, int(ids[t]))
        if fmt == "md":
            w = md_escape(w)
            out.append(f"**{w}**" if changed else w)
        else:
            if changed:
                was = html.escape("was: " + display_word(words, int(ref[t])), quote=True)
                out.append(f'<mark title="{was}">{html.escape(w)}</mark>')
            else:
                out.append(html.escape(w))
        t += 1
    if n < len(ids):
        out.append("[...]" if fmt == "html" else "\\[...\\]")
    return " ".join(out)


#: Rows 2-3 of Table 2 (nearest neighbours at the training strength) are mostly one repeated
#: word: they are shown as an excerpt of this many tokens (HTML: the rest behind a click).
EXCERPT_TOKENS = 12


def render_collapsed(ids, ref, words, fmt, max_tokens=0):
    """A row shown as a short excerpt: HTML ``<details>`` with the full row inside, Markdown the excerpt."""
    full = render_tokens(ids, ref, words, fmt, max_tokens)
    if len(ids) <= EXCERPT_TOKENS:
        return full
    excerpt = render_tokens(ids[:EXCERPT_TOKENS], None if ref is None else ref[:EXCERPT_TOKENS], words, fmt)
    more = len(ids) - EXCERPT_TOKENS
    if fmt == "md":
        return f"{excerpt} \\[... {more} more tokens\\]"
    return f"<details><summary>{excerpt} &hellip; ({more} more tokens)</summary>{full}</details>"


def table2_indices(res, show):
    """Up to ``show`` reviews for Table 2: those the model classifies correctly first, in order."""
    y = np.array([r.label for r in res.reviews], dtype=np.int64)
    correct = res.pred_orig == y
    order = [i for i in range(len(res.reviews)) if correct[i]] + [i for i in range(len(res.reviews)) if not correct[i]]
    return order[:show]


def _shown_path(path):
    """A path as the page shows it: relative to the repository root, never a local absolute path."""
    from .rundir import publishable_path
    return publishable_path(Path(path).resolve())


def _pct(v):
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _fmt_eps(v):
    return "-" if v is None else f"{v:g}"


class Doc:
    """Minimal Markdown / HTML writer with the same calls for both."""

    def __init__(self, fmt):
        self.fmt = fmt
        self.parts = []

    def h(self, level, text):
        if self.fmt == "md":
            self.parts.append("#" * level + " " + text + "\n")
        else:
            self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def p(self, text, raw=False):
        if self.fmt == "md":
            self.parts.append(text + "\n")
        else:
            self.parts.append(f"<p>{text if raw else html.escape(text)}</p>")

    def table(self, header, rows, raw_cols=()):
        """``raw_cols``: columns already rendered for this format (token strings)."""
        if self.fmt == "md":
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            for row in rows:
                cells = [c if j in raw_cols else md_escape(str(c)) for j, c in enumerate(row)]
                lines.append("| " + " | ".join(cells) + " |")
            self.parts.append("\n".join(lines) + "\n")
        else:
            out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
            for row in rows:
                cells = [c if j in raw_cols else html.escape(str(c)) for j, c in enumerate(row)]
                out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
            out.append("</table>")
            self.parts.append("\n".join(out))

    def render(self, title):
        if self.fmt == "md":
            return "\n".join(self.parts)
        style = ("body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;"
                 "line-height:1.45}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
                 "padding:.3em .6em;vertical-align:top;text-align:left}th{background:#f3f3f3}"
                 "mark{background:#ffe08a;padding:0 .1em}code{background:#f3f3f3}summary{cursor:pointer}")
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(title)}</title><style>{style}</style></head><body>\n"
                + "\n".join(self.parts) + "\n</body></html>\n")


def render(res, opts, run, summary, pairs, flipped, lm_info, bench=False):
    """The whole document (Markdown or HTML) as a string."""
    fmt = opts.format
    words = run.words
    labels = row_labels(opts)
    doc = Doc(fmt)
    title = "Adversarial examples decoded into words"
    doc.h(1, title + " (Caswell, Nie & Sen 2015, section 7)")
    c = run.cfg
    doc.p(f"Model: {_shown_path(run.path)} (data={c.data}, encoder={c.encoder}, wdim={c.wdim}, hdim={c.hdim}, trained with "
          f"eps={c.eps}, alpha={c.alpha}); {summary['n_reviews']} reviews, {summary['n_tokens']} tokens; "
          f"{summary['n_correct']} classified correctly.")
    doc.p(f"Perturbation eps * sign(dL(true label)/de): eps_knn={opts.eps_knn:g} for rows 2-3, "
          f"eps_vis={opts.eps_vis:g} for rows 4-5; top_words={opts.top_words}, k={opts.k}, "
          f"lm_weight={opts.lm_weight:g}; {lm_info}.")

    doc.h(2, "Summary")
    rows = []
    for r in summary["rows"]:
        rows.append([labels[r["row"]], _fmt_eps(r["eps"]), _pct(r["changed"]) if r["eps"] is not None else "-",
                     _pct(r["flip_emb"]) if r["eps"] is not None else "-",
                     _pct(r["flip_dec"]) if r["eps"] is not None else "-"])
    doc.table(["row", "eps", "tokens changed", "flip rate, perturbed embeddings", "flip rate, decoded text"], rows)
    doc.p("Flip rates are over the reviews the model classifies correctly: the fraction whose prediction "
          "becomes wrong.")
    t = res.timings
    decode = t["nearest neighbours"] + t["bigram Viterbi"]
    per_k = 1000 * decode / max(summary["n_reviews"], 1)
    doc.p(f"Time: compiling {t['compiling']:.1f}s; gradients and classification of the original and perturbed "
          f"embeddings {t['gradients']:.2f}s; nearest neighbours "
          f"{t['nearest neighbours']:.2f}s; bigram Viterbi {t['bigram Viterbi']:.2f}s; classifying the decoded "
          f"texts {t['classifying decoded text']:.2f}s. Decoding (nearest neighbours + Viterbi): {decode:.2f}s for "
          f"{summary['n_reviews']} review{'s' if summary['n_reviews'] != 1 else ''} = {per_k:.2f}s per 1,000 reviews "
          f"({summary['n_tokens'] / max(decode, 1e-9):,.0f} tokens/s).")
    if bench:
        return doc.render(title)

    doc.h(2, "Table 2: progressively improving decodings")
    shown = table2_indices(res, opts.show)
    n_wrong = sum(res.pred_orig[i] != res.reviews[i].label for i in shown)
    doc.p("Reviews the model classifies correctly" + (f" (and {n_wrong} it does not, for want of more)" if n_wrong else "")
          + f"; rows 2-3 (eps_knn={opts.eps_knn:g}) are shortened to {EXCERPT_TOKENS} tokens"
          + (" (click to expand)" if fmt == "html" else "") + "."
          + (" Hover over a marked word to see the word it replaced." if fmt == "html" else ""))
    for i in shown:
        rv = res.reviews[i]
        doc.h(3, f"{rv.name}: true label {LABEL_NAMES.get(rv.label, rv.label)}, {len(rv.ids)} tokens")
        doc.p(f"P(true label): original {res.p_orig[i]:.3f}; perturbed embeddings at eps_knn "
              f"{res.p_emb[float(opts.eps_knn)][i]:.3f}, at eps_vis {res.p_emb[float(opts.eps_vis)][i]:.3f}; "
              f"decoded row 5 {res.p_dec['bigram'][i]:.3f}.")
        orig = res.rows["original"][i]
        table = []
        for key in ROW_KEYS:
            ref = None if key == "original" else orig
            show_row = render_collapsed if key in ("knn", "knn_top") else render_tokens
            table.append([labels[key], show_row(res.rows[key][i], ref, words, fmt, opts.max_tokens)])
        doc.table(["row", "text (changed words marked)"], table, raw_cols=(1,))
    if len(res.reviews) > opts.show:
        doc.p(f"({len(res.reviews) - opts.show} more reviews are counted in the summary; show= displays more.)")

    if opts.pairs:
        doc.h(2, "Table 3: original and decoded adversarial review")
        if not pairs:
            doc.p("No review selected.")
        elif not flipped:
            doc.p(f"No review of this selection flips under the perturbation at eps_vis={opts.eps_vis:g}; shown "
                  "are the largest drops in P(true label). Try more reviews (sample=N) or a larger eps_vis.")
        else:
            doc.p(f"Reviews whose prediction flips under the perturbation at eps_vis={opts.eps_vis:g}; the "
                  "adversarial text is row 5 of Table 2, its changed words marked.")
        for i in pairs:
            rv = res.reviews[i]
            doc.h(3, f"{rv.name}: true label {LABEL_NAMES.get(rv.label, rv.label)}")
            wrong = [name for name, pred in (("original text", res.pred_orig[i]),
                                             ("perturbed embeddings", res.pred_emb[float(opts.eps_vis)][i]),
                                             ("decoded text", res.pred_dec["bigram"][i])) if pred != rv.label]
            doc.p(f"P(true label): original text {res.p_orig[i]:.3f}, perturbed embeddings "
                  f"{res.p_emb[float(opts.eps_vis)][i]:.3f}, decoded text {res.p_dec['bigram'][i]:.3f}; "
                  f"misclassified: {', '.join(wrong) if wrong else 'none'}.")
            orig = res.rows["original"][i]
            doc.table(["", "text"], [
                ["original", render_tokens(orig, None, words, fmt, opts.max_tokens)],
                ["adversarial", render_tokens(res.rows["bigram"][i], orig, words, fmt, opts.max_tokens)]],
                raw_cols=(1,))
    return doc.render(title)


def lm_weight_points(model, run, reviews, opts, lm, weights):
    """Row 5's tokens changed and flip rates at each ``lm_weight`` (the same reviews and perturbation)."""
    points = []
    for w in weights:
        o = dataclasses.replace(opts, lm_weight=w)
        row = {r["row"]: r for r in summarize(analyse(model, run, reviews, o, lm), o)["rows"]}["bigram"]
        points.append({"lm_weight": w, "changed": row["changed"], "flip_dec": row["flip_dec"],
                       "flip_emb": row["flip_emb"]})
    return points


def _with_lm_weight_section(text, model, run, reviews, opts, lm, note):
    try:
        weights = [float(v) for v in opts.lm_weights.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"lm_weights={opts.lm_weights!r} must be comma-separated numbers, e.g. 0,0.02,0.1") from None
    if any(w < 0 or not np.isfinite(w) for w in weights):
        raise UserError(f"lm_weights={opts.lm_weights!r}: every weight must be >= 0")
    if lm is None and any(w > 0 for w in weights):
        lm, _ = get_lm(run, opts, note)
    points = lm_weight_points(model, run, reviews, opts, lm, weights)
    fig = Path(opts.lm_figure or (str(Path(opts.out).with_suffix("")) + "-lm_weight.png" if opts.out
                                  else "lm_weight.png"))
    from .figures import lm_weight_figure
    try:
        lm_weight_figure(points, fig, opts.eps_vis)
    except OSError as err:
        raise UserError(f"cannot write the lm_weights figure {fig}: {err.strerror}") from None
    note(f"wrote {fig}")
    doc = Doc(opts.format)
    doc.h(2, "Row 5 against lm_weight")
    doc.p(f"The same reviews and perturbation (eps_vis={opts.eps_vis:g}), decoded with each weight of the bigram "
          "model; flip rates over the correctly classified reviews. Figure: " + fig.name + ".")
    doc.table(["lm_weight", "tokens changed", "flip rate, decoded text", "flip rate, perturbed embeddings"],
              [[f"{p['lm_weight']:g}", _pct(p["changed"]), _pct(p["flip_dec"]), _pct(p["flip_emb"])] for p in points])
    section = "\n".join(doc.parts)
    if opts.format == "md":
        return text + "\n" + section + f"\n![tokens changed and flip rates against lm_weight]({fig.name})\n"
    return text.replace("\n</body></html>\n", "\n" + section + "\n</body></html>\n")


# ---------------------------------------------------------------------------------------------
# command line

@cli_entry
def main(argv):
    if any(a in ("-h", "--help", "help") for a in argv):
        print(help_text())
        return 0
    opts = parse_options(argv)
    if not opts.format:
        opts = dataclasses.replace(opts, format="html" if opts.out.lower().endswith((".html", ".htm")) else "md")
    if opts.out and not Path(opts.out).resolve().parent.is_dir():
        raise UserError(f"out={opts.out}: no such directory {Path(opts.out).parent}")

    def note(line):
        print(line, file=sys.stderr, flush=True)

    run = load_run(opts.model, opts.data_path, opts.mode)
    _checks.backend(run.cfg)   # mode=JAX without jax: refused before the bigram model is written
    reviews = select_reviews(opts, run)

    lm, lm_info = None, "no bigram model (lm_weight=0): row 5 = row 4"
    if opts.lm_weight > 0:
        lm, path = get_lm(run, opts, note)
        lm_info = (f"bigram model: interpolated Kneser-Ney (D={lm.discount:.3f}) on {lm.n_tokens:,} training bigrams"
                   + (f", cached in {_shown_path(path)}" if path else ""))
    from .graph import Model   # PyTensor is imported only when a model is needed (--help stays fast)

    # Model compiles its training update only on first use, so never here.
    model = Model(run.cfg, run.n_words, run.params, word_counts=run.word_counts)
    res = analyse(model, run, reviews, opts, lm)
    summary = summarize(res, opts)
    pairs, flipped = choose_pairs(res, opts)
    text = render(res, opts, run, summary, pairs, flipped, lm_info, bench=bool(opts.bench))
    if opts.lm_weights:
        text = _with_lm_weight_section(text, model, run, reviews, opts, lm, note)
    if opts.out:
        from .utils import atomic_write_text
        try:
            atomic_write_text(opts.out, text)
        except OSError as err:
            raise UserError(f"cannot write out={opts.out}: {err.strerror}") from None
        note(f"wrote {opts.out}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The visualiser's options (``key=value``), its ``--help``, and the five rows of Table 2."""

from dataclasses import dataclass
from pathlib import Path

from ...common import checks as _checks
from ...common import options as _options
from ...common.errors import UserError
from ...common.options import option as _opt

ROW_KEYS = ("original", "knn", "knn_top", "scaled", "bigram")


@dataclass(frozen=True)
class Options:
    model: str = _opt("", "run directory of lstm_adv.train, or its params.npz (required)")
    split: str = _opt("test", "split to take reviews from", ("valid", "test"))
    index: tuple[int, ...] = _opt((), "review indices in the split (splits are sorted by length)", minimum=0)
    first: int = _opt(0, "the first N reviews of the split (the N shortest); default 5 if nothing else is chosen")
    sample: int = _opt(0, "a seeded random sample of N reviews of the split")
    seed: int = _opt(0, "seed of sample= and bench=")
    text: str = _opt("", "one review given as text (tokenised as in training)")
    text_file: str = _opt("", "a file with one review per non-empty line")
    label: int = _opt(-1, "true label of text reviews: a class id 0..K-1 (IMDB: 1 positive, 0 negative; a corpus: "
                      "its sorted label names), -1 = the model's prediction", minimum=-1)
    eps_vis: float = _opt(0.005, "scaled perturbation of rows 4-5 (paper: about 0.005)")
    eps_knn: float = _opt(0.5, "perturbation of rows 2-3: the paper's training strength (about 0.5); a sign "
                      "step, whatever norm and eps the model trained with")
    top_words: int = _opt(5000, "rows 3-5 decode to UNK or the N most frequent training words")
    k: int = _opt(10, "cosine candidates per position rescored by the bigram model (row 5)")
    lm_weight: float = _opt(0.02, "weight of the bigram log-probability against cosine similarity (row 5)")
    lm_cache: str = _opt("", "bigram model cache file (default: bigram/DATA-VOCAB.npz in the lstm_adv cache "
                         "folder, $LSTM_ADV_CACHE, else the user cache folder; never the run directory)")
    lm_weights: tuple[float, ...] = _opt((), "lm_weight values: row 5 decoded at each, a table and a figure of "
                                         "tokens changed and flip rates against lm_weight (e.g. 0,0.01,0.02,0.05,0.1)",
                                         minimum=0)
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


USAGE = "python -m lstm_adv.visualize model=RUN_DIR_OR_NPZ [key=value ...]"


def help_text():
    """``python -m lstm_adv.visualize --help``."""
    return _options.help_text(
        Options, USAGE,
        "Decode adversarial perturbations of a trained model's word embeddings back into words\n"
        "(Caswell, Nie & Sen 2015, section 7: Tables 2 and 3).",
        "Rows of Table 2: original; KNN (eps_knn); KNN top N (eps_knn); + scaled perturbation\n"
        "(eps_vis); + bigram smoothing (Viterbi over the k candidates). See the docstring of\n"
        "lstm_adv.analysis.visualize.")


def parse_options(argv):
    """`Options` from ``key=value`` strings; `UserError` on anything malformed."""
    opts = _options.parse(Options, argv)
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
    if any(a.partition("=")[0].strip().lstrip("-") == "text" for a in argv) and not opts.text.strip():
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
    if opts.lm_weights:
        _checks.writable_file("lm_figure", lm_figure_path(opts))
    return opts


def lm_figure_path(opts):
    """Where the ``lm_weights=`` figure goes: ``lm_figure=``, else beside ``out=``, else here."""
    return Path(opts.lm_figure or (str(Path(opts.out).with_suffix("")) + "-lm_weight.png" if opts.out
                                   else "lm_weight.png"))


# ---------------------------------------------------------------------------------------------


def row_labels(opts):
    top = f"KNN top {opts.top_words}"
    return {"original": "original", "knn": "KNN", "knn_top": top, "scaled": f"{top} + scaled perturbation",
            "bigram": f"{top} + scaled perturbation + bigram smoothing"}


def row_eps(opts):
    return {"original": None, "knn": opts.eps_knn, "knn_top": opts.eps_knn, "scaled": opts.eps_vis,
            "bigram": opts.eps_vis}

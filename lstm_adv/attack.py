"""``python -m lstm_adv.attack model=RUN [method=pwws] [n=1000] [synonyms=wordnet|PATH] ...``: a word attack.

Attacks a trained run's test reviews with real word substitutions (PWWS, Ren et al. 2019, or a beam
search) and writes, into ``out=`` (default ``RUN/word_attack/METHOD-nN-seedS``): ``reviews.jsonl`` (every
review as it ends; an interrupted attack rerun with the same command goes on and ends the same),
``attack.json`` (the summary), ``attack.md`` and ``attack.html`` (adversarial examples as text).
Training's ``word_attack=pwws`` runs the same attack into the same folder. See
`lstm_adv.wordattack`.
"""

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

from .common import checks
from .common import options as _options
from .common.errors import UserError
from .common.lifecycle import cli_entry
from .common.options import option as _opt
from .wordattack import BEAM_MAX_QUERIES, METHODS, default_folder


@dataclass(frozen=True)
class Options:
    model: str = _opt("", "run directory of lstm_adv.train (required)")
    method: str = _opt("pwws", "the search: pwws (Ren et al. 2019) or beam (a beam search of width 4)", METHODS)
    n: int = _opt(1000, "test reviews attacked: a seeded sample (all if n >= the test split)")
    seed: int = _opt(1, "seed of the sample; independent of the model's seed, so every model meets the same reviews")
    synonyms: str = _opt("", "wordnet or a TSV file (word<TAB>substitutes); default: the run's synonyms= (wordnet)")
    max_change: float = _opt(1.0, "the most words changed, as a fraction of a review's words (1 = no limit, PWWS)")
    max_queries: int = _opt(BEAM_MAX_QUERIES, "method=beam: the most model queries a review (a review whose next "
                            f"step would pass it holds; -qQ on the default folder when not {BEAM_MAX_QUERIES})")
    examples: int = _opt(10, "adversarial examples on the page (attack.md, attack.html)")
    params: str = _opt("best", "the parameters attacked: best (params.npz, the best validation's, as training's "
                       "word_attack=) or last (checkpoint.npz: the last update's)", ("best", "last"))
    out: str = _opt("", "the attack's folder (default RUN/word_attack/METHOD-nN-seedS, -last for params=last)")
    data_path: str = _opt("", "override the run's data_path (where its IMDB archive is)")
    mode: str = _opt("", "override the run's PyTensor backend", ("", "C", "NUMBA", "JAX", "FAST_COMPILE"))


USAGE = ("python -m lstm_adv.attack model=RUN [method=pwws] [n=1000] [synonyms=wordnet|PATH] [max_change=F] "
         "[max_queries=Q] [params=best|last] [out=DIR]")


def parse_options(argv):
    """`Options` from ``key=value`` strings, checked; `UserError` on anything wrong."""
    opts = _options.parse(Options, argv)
    for ok, message in [
        (opts.model, "model= is required: a run directory of lstm_adv.train"),
        (opts.n > 0, f"n={opts.n} must be positive"),
        (opts.seed >= 0, f"seed={opts.seed} must be >= 0"),
        (0 < opts.max_change <= 1, f"max_change={opts.max_change} must be in (0, 1] (a fraction of the words)"),
        (opts.examples >= 0, f"examples={opts.examples} must be >= 0"),
        (opts.max_queries > 0, f"max_queries={opts.max_queries} must be positive"),
        (opts.method == "beam" or opts.max_queries == BEAM_MAX_QUERIES,
         "max_queries= is the beam search's budget; PWWS asks a fixed number of queries (drop it, or method=beam)"),
    ]:
        if not ok:
            raise UserError(message)
    checks.path_names("model", opts.model)
    if not Path(opts.model).is_dir():
        raise UserError(f"no such run directory: {opts.model} (give the folder lstm_adv.train wrote)")
    out = opts.out or str(default_folder(opts.model, opts.method, opts.n, opts.seed, opts.max_change, opts.params,
                                         opts.max_queries))
    checks.writable_dir("out", out)
    return dataclasses.replace(opts, out=out)


def main(argv):
    if _options.wants_help(argv):
        print(_options.help_text(Options, USAGE, __doc__.split("\n\n")[1]))
        return 0
    opts = parse_options(argv)
    # Everything that can fail is read before the first file is written.
    from .analysis.visualize.inputs import load_data, load_run   # imports PyTensor: not for --help
    from .core.backend import limit_blas_threads
    from .data.synonyms import load_synonyms
    from .wordattack import attack_model, summary_line

    run = load_run(opts.model, opts.data_path, opts.mode, which=opts.params)
    checks.backend(run.cfg)
    synonyms = opts.synonyms or run.cfg.synonyms
    load_synonyms(synonyms)   # a malformed table: one line, nothing written
    data = load_data(run.cfg, run.words, run.data_cache)
    from .core.compiled import Model

    limit_blas_threads(1)
    model = Model(run.cfg, run.n_words, run.params, word_counts=run.word_counts)
    summary = attack_model(model, data.test, run.words, run.n_words, opts.out, opts.method, opts.n, synonyms,
                           opts.max_change, opts.seed, run.params, run.label_names, opts.examples,
                           model_name=str(run.path), log=lambda line: print(line, file=sys.stderr, flush=True),
                           max_queries=opts.max_queries)
    print(summary_line(summary))
    print(f"wrote {opts.out}/attack.json, attack.md, attack.html, reviews.jsonl", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(cli_entry(main)())

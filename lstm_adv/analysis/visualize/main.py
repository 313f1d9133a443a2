"""``python -m lstm_adv.visualize model=RUN_DIR_OR_NPZ ...``: the command line and the lm_weight sweep.

See the docstring of `lstm_adv.analysis.visualize` for what the tables show.
"""

import dataclasses
import sys
from pathlib import Path

from ...common import checks as _checks
from ...common.errors import UserError
from ...common.lifecycle import cli_entry
from ...common.options import wants_help
from ...common.utils import atomic_write_text
from ...core.backend import limit_blas_threads
from ..figures import lm_weight_figure
from .analyse import analyse, choose_pairs, summarize
from .bigram import cache_place, get_lm
from .inputs import load_run, select_reviews
from .options import help_text, lm_figure_path, parse_options
from .render import Doc, one_class_warning, pct, render


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
    weights = opts.lm_weights
    if lm is None and any(w > 0 for w in weights):
        lm, _ = get_lm(run, opts, note)
    points = lm_weight_points(model, run, reviews, opts, lm, weights)
    fig = lm_figure_path(opts)
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
              [[f"{p['lm_weight']:g}", pct(p["changed"]), pct(p["flip_dec"]), pct(p["flip_emb"])] for p in points])
    section = "\n".join(doc.parts)
    if opts.format == "md":
        return text + "\n" + section + f"\n![tokens changed and flip rates against lm_weight]({fig.name})\n"
    return text.replace("\n</body></html>\n", "\n" + section + "\n</body></html>\n")


@cli_entry
def main(argv):
    if wants_help(argv):
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
                   + (f", cached as {cache_place(path)}" if path else ", not cached"))
    from ...core.compiled import Model   # PyTensor is imported only when a model is needed (--help stays fast)

    limit_blas_threads(1)

    # Model compiles its training update only on first use, so never here.
    model = Model(run.cfg, run.n_words, run.params, word_counts=run.word_counts)
    res = analyse(model, run, reviews, opts, lm)
    summary = summarize(res, opts)
    if summary["one_class"] is not None:
        note(one_class_warning(summary, run))
    pairs, flipped = choose_pairs(res, opts)
    text = render(res, opts, run, summary, pairs, flipped, lm_info, bench=bool(opts.bench))
    if opts.lm_weights:
        text = _with_lm_weight_section(text, model, run, reviews, opts, lm, note)
    if opts.out:
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

"""Table 1 of the paper from a folder of run directories: Markdown, CSV, a plot and significance tests.

Usage::

    python -m lstm_adv.results RUNS_DIR [RUNS_DIR ...] [out=DIR] [plot=0|1]

Every ``config.json`` under the given folders (searched recursively) marks one run; its
``metrics.json`` (written by ``lstm_adv.train``) holds the status and the errors. Runs with the
paper's Table 1 setting (``alpha=0.5``) are grouped by ``eps``, one column per eps: the paper's
grid 0.0, 0.1, ..., 1.0, 15.0 plus any other eps present. Runs at other ``alpha`` values are
summarised in a separate section of ``table1.md`` and never mixed into Table 1.

Files written to ``out`` (default: the first RUNS_DIR), all atomically:

- with ``by=KEY,KEY``: ``ablation.md`` instead of the printed Table 1: runs grouped by those
  configuration keys and eps, with the epoch each left the one-class plateau and its errors.
- ``table1.md``: the table in the paper's layout (rows dev, test, average; the paper's value
  beside ours), then a Welch t-test and a Mann-Whitney U test of each eps against eps=0 on test
  error, the run counts per eps, the robustness table (if runs report ``attack`` errors) and
  the runs at other alpha values. Also printed to stdout.
- ``table1.csv``: long format, one row per (eps, split).
- ``table1.png``: error against eps with sd error bars, every run a dot, chance and n per column,
  ours and the paper's (``plot=0`` skips the figures).
- ``learning_curves.png``: validation error against epoch for every run, one panel per eps.
- ``attacks.png``: robust error against attack radius, one line per training eps (when runs
  report attacks).
- ``runs.csv``: long format, one row per validation per run (`lstm_adv.analysis.figures.runs_csv`).
- with ``pick=KEY``: nothing; prints KEY's value in the finished run with the lowest validation
  error (`lstm_adv.analysis.runs.pick`), e.g. the eps a script carries on with.
- ``random_search.png`` in a RUNS_DIR that holds a random search (``draw=NNN/{adv,plain}``):
  adversarial against plain test error per draw, with the diagonal.

Only runs whose ``metrics.json`` says ``"status": "ok"`` and holds finite errors contribute
numbers. All others (nan, interrupted, failed, running, no metrics.json yet, an unreadable
metrics.json) are counted as not ok and shown as counts, never as numbers.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

from ..common import checks
from ..common.errors import UserError
from ..common.lifecycle import cli_entry
from ..common.options import help_text, option, parse_with_rest, positional_arg, unknown_key, wants_help
from ..common.utils import atomic_write_text, short_number
from ..config import FIELDS
from .figures import (plot, plot_attacks, plot_learning_curves, random_search_pairs, random_search_scatter,
                      write_runs_csv)
from .runs import find_runs, pick
from .summary import summarise
from .tables import ablation_markdown, to_csv, to_markdown

USAGE = "python -m lstm_adv.results RUNS_DIR [RUNS_DIR ...] [key=value ...]"


@dataclass(frozen=True)
class ResultsOptions:
    """The keys of ``python -m lstm_adv.results``."""

    out: str = option("", "where the files go (default: the first RUNS_DIR)")
    plot: bool = option(True, "the figures (0 = tables and CSV only)")
    by: tuple[str, ...] = option((), "training keys: the grouped table ablation.md instead of Table 1")
    pick: str = option("", "a training key: print its value in the finished run with the lowest validation "
                            "error (ties: the smaller value) and write nothing (model selection in scripts)")


def write_table(summary, out_dir, make_plot=True):
    """Write ``table1.md``, ``table1.csv`` and (unless ``make_plot`` is False) ``table1.png``.

    Returns
    -------
    list of Path
        The files written.
    """
    out_dir = Path(out_dir)
    files = [out_dir / "table1.md", out_dir / "table1.csv"]
    atomic_write_text(files[0], to_markdown(summary))
    atomic_write_text(files[1], to_csv(summary))
    if make_plot:
        files.append(out_dir / "table1.png")
        plot(summary, files[2])
        if plot_learning_curves(summary, out_dir / "learning_curves.png"):
            files.append(out_dir / "learning_curves.png")
        if plot_attacks(summary, out_dir / "attacks.png"):
            files.append(out_dir / "attacks.png")
    return files


# --------------------------------------------------------------------------- CLI
@cli_entry
def main(argv):
    if wants_help(argv):
        print(help_text(ResultsOptions, USAGE, __doc__))
        return 0
    opts, dirs = parse_with_rest(ResultsOptions, argv, positional=positional_arg)
    bad = [k for k in opts.by if k not in FIELDS]
    if bad:
        raise UserError(f"by={','.join(opts.by)}: {', '.join(bad)} is not a training key; see python -m lstm_adv.train --help")
    out, make_plot, by = opts.out or None, opts.plot, list(opts.by)
    if not dirs:
        raise UserError("no RUNS_DIR given; usage: " + USAGE)
    for d in dirs:
        checks.readable_dir("RUNS_DIR", d)
    if opts.pick:
        if opts.pick not in FIELDS:
            raise unknown_key(opts.pick, list(FIELDS))
        value = pick(find_runs(dirs)[0], opts.pick)
        print(short_number(value) if isinstance(value, float) else value)
        return 0
    if by:
        names = ("ablation.md", "runs.csv") + (("learning_curves.png",) if make_plot else ())
    else:
        names = ("table1.md", "table1.csv", "runs.csv") + (
            ("table1.png", "learning_curves.png", "attacks.png") if make_plot else ())
    checks.writable_files("out", out or dirs[0], names)
    if make_plot and not by:   # a random search's scatter goes into its own folder
        for d in dirs:
            if random_search_pairs(d):
                checks.writable_files("RUNS_DIR", d, ("random_search.png",))
    summary = summarise(dirs)
    for note in summary["warnings"]:
        if not by:
            print(f"warning: {note}", file=sys.stderr)
    if by:   # the grouped table instead of Table 1, with the learning curves and runs.csv
        dest = Path(out or dirs[0])
        text = ablation_markdown(summary["runs"], by)
        try:
            atomic_write_text(dest / "ablation.md", text)
            files = [dest / "ablation.md", write_runs_csv(dirs, dest)]
            if make_plot and plot_learning_curves(summary, dest / "learning_curves.png", by):
                files.append(dest / "learning_curves.png")
        except OSError as err:
            raise UserError(f"cannot write to {dest}: {err}") from None
        print(text, end="")
        print("wrote " + ", ".join(map(str, files)), file=sys.stderr)
        return 0
    try:
        files = write_table(summary, out or dirs[0], make_plot)
        files.append(write_runs_csv(dirs, out or dirs[0]))
        if make_plot:   # a random search among the folders: its scatter, next to its summary
            files += [f for f in (random_search_scatter(d) for d in dirs) if f]
    except OSError as err:
        raise UserError(f"cannot write the table to {out or dirs[0]}: {err}") from None
    print(to_markdown(summary), end="")
    print("wrote " + ", ".join(map(str, files)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

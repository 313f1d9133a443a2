"""Figures and long-format tables from files every run already writes.

- `runs_csv`: ``runs.csv``, one row per validation per run (``history.csv`` rows), with the
  run's status, eps, alpha, seed and every configuration key that varies between the runs,
  for pandas users (``pd.read_csv("runs.csv")``).
- `random_search_scatter`: ``random_search.png``, adversarial against plain test error per draw
  of the random search (`lstm_adv.sweeps.random_search`), with the diagonal: points below it are draws where
  the adversarial twin did better.
- `lm_weight_figure`: the visualiser's tokens changed and flip rates against ``lm_weight``.
- `plot`, `plot_learning_curves`, `plot_attacks`: Table 1's figures (``table1.png``,
  ``learning_curves.png``, ``attacks.png``; see `lstm_adv.analysis.results`).

Every figure is written with matplotlib's Agg backend, atomically.
"""

import csv
import io
import json
import math
import os
from pathlib import Path

import numpy as np

from ..common.errors import UserError
from ..common.utils import atomic_write_bytes, atomic_write_text
from ..config import NEUTRAL_KEYS
from ..rundir import HISTORY_COLUMNS, find_runs, read_run
from .runs import is_finite, setting_label
from .summary import corpus_label, eps_label



def runs_csv(paths, root=None):
    """``runs.csv`` text: one row per validation per run under ``paths``.

    Columns: ``run`` (the run directory relative to ``root``, default the folder the paths share), ``status``,
    ``eps``, ``alpha``, ``seed``, every other configuration key whose value differs between the
    runs, then the ``history.csv`` columns. A run without validations yet gets one row with empty
    history fields, so failed runs are not silently missing.
    """
    root = Path(root or os.path.commonpath([str(Path(x).resolve()) for x in paths]))
    runs = [(rec.path, rec.config, rec.status, rec.history) for rec in find_runs(paths)[0]]
    keys = []
    for _, cfg, _, _ in runs:
        keys += [k for k in cfg if k not in keys]
    varying = [k for k in keys if k not in NEUTRAL_KEYS and k not in ("eps", "alpha", "seed")
               and len({json.dumps(cfg.get(k)) for _, cfg, _, _ in runs}) > 1]
    header = ["run", "status", "eps", "alpha", "seed"] + varying + list(HISTORY_COLUMNS)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for d, cfg, status, history in runs:
        try:
            name = str(d.resolve().relative_to(root.resolve()))
        except ValueError:
            name = d.name
        fixed = [name, status] + [cfg.get(k, "") for k in ("eps", "alpha", "seed")] + [cfg.get(k, "") for k in varying]
        for row in history or [{}]:
            w.writerow(fixed + [row.get(c, "") for c in HISTORY_COLUMNS])
    return buf.getvalue()


def write_runs_csv(paths, out_dir):
    path = Path(out_dir) / "runs.csv"
    atomic_write_text(path, runs_csv(paths))
    return path


def _figure(size):
    # matplotlib is slow to import: only when a figure is drawn (--help and the tables stay fast).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def random_search_pairs(root):
    """``[(draw, adversarial test error, plain test error)]`` for the draws with both runs ok."""
    out = []
    for draw in sorted(p for p in Path(root).glob("draw=*") if p.is_dir()):
        errs = {}
        for kind in ("adv", "plain"):
            try:
                m = read_run(draw / kind, strict=False).metrics
            except UserError:   # not trained yet
                continue
            t = m.get("test_err") if m and m["status"] == "ok" else None
            if isinstance(t, (int, float)) and math.isfinite(t):
                errs[kind] = float(t)
        if len(errs) == 2:
            out.append((draw.name, errs["adv"], errs["plain"]))
    return out


def random_search_scatter(root, path=None):
    """``random_search.png`` in ``root`` (or ``path``): adversarial vs plain test error per draw.

    Returns the path, or None when no draw has both runs finished (nothing to plot).
    """
    pairs = random_search_pairs(root)
    if not pairs:
        return None
    adv = np.array([p[1] for p in pairs])
    plain = np.array([p[2] for p in pairs])
    fig = _figure((5.2, 5.0))
    ax = fig.add_subplot()
    lo = min(adv.min(), plain.min())
    hi = max(adv.max(), plain.max())
    pad = 0.05 * max(hi - lo, 0.01)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="gray", linestyle="--", linewidth=1,
            label="equal error")
    better = adv < plain
    ax.scatter(plain[better], adv[better], color="tab:green", s=25,
               label=f"adversarial lower ({int(better.sum())})")
    ax.scatter(plain[~better], adv[~better], color="tab:red", s=25,
               label=f"adversarial not lower ({int((~better).sum())})")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("plain model: test error")
    ax.set_ylabel("adversarial twin: test error")
    ax.set_title(f"Random search: {len(pairs)} draws, same hyperparameters")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, Path(path) if path else Path(root) / "random_search.png")


def lm_weight_figure(points, path, eps_vis=None):
    """Tokens changed and flip rates of row 5 against ``lm_weight`` (categorical axis, 0 included).

    Parameters
    ----------
    points : list of dict
        ``lm_weight``, ``changed``, ``flip_dec`` (fractions) and ``flip_emb`` (the continuous
        perturbation's flip rate, the same for every weight).
    """
    fig = _figure((6.4, 4.0))
    ax = fig.add_subplot()
    x = np.arange(len(points))
    pct = lambda key: [100 * p[key] if p[key] is not None else np.nan for p in points]  # noqa: E731
    ax.plot(x, pct("changed"), "o-", color="tab:blue", label="tokens changed")
    ax.plot(x, pct("flip_dec"), "s-", color="tab:red", label="flip rate, decoded text")
    ax.plot(x, pct("flip_emb"), ":", color="gray",
            label="flip rate, perturbed embeddings" + (f" (eps_vis={eps_vis:g})" if eps_vis is not None else ""))
    ax.set_xticks(x, [f"{p['lm_weight']:g}" for p in points])
    ax.set_xlabel("lm_weight (bigram smoothing, row 5)")
    ax.set_ylabel("%")
    ax.set_ylim(bottom=0)
    ax.set_title("Row 5 of Table 2 against the language model's weight")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot(summary, path):
    """``table1.png``: dev and test error against eps (categorical axis), ours ± sd and, for IMDB runs, the paper's."""
    cols, cells, paper_table = summary["columns"], summary["cells"], summary["paper"]
    # Categorical axis; eps beyond the paper's 0..1 range (its 15.0) sit after a visible gap.
    x = np.arange(len(cols)) + 0.6 * (np.array(cols) > 1.0)
    fig = _figure((max(7.0, 0.65 * len(cols) + 2), 4.2))
    ax = fig.add_subplot()
    for i, (split, color, dx) in enumerate([("dev", "tab:blue", -0.1), ("test", "tab:red", 0.1)]):
        mean = np.array([cells[e][split]["mean"] for e in cols])
        sd = np.nan_to_num(np.array([cells[e][split]["sd"] for e in cols]))
        ax.errorbar(x + dx, mean, yerr=sd, fmt="o", color=color, capsize=3, label=f"ours, {split} (mean ± sd)")
        for xi, e in zip(x, cols):
            v = cells[e][split]["values"]
            ax.plot(np.full(len(v), xi + dx), v, ".", color=color, alpha=0.3, markersize=4)
        if paper_table:
            paper = [paper_table[e][i] if paper_table.get(e) else np.nan for e in cols]
            ax.plot(x + 2.5 * dx, paper, "x" if split == "dev" else "s", color=color, mfc="none", markersize=7,
                    label=f"paper, {split} (one run)")
    if any(e > 1.0 for e in cols) and any(e <= 1.0 for e in cols):
        gap = x[np.array(cols) > 1.0][0] - 0.8
        ax.axvline(gap, color="gray", linestyle=(0, (2, 4)), linewidth=0.8)
    for xi, e in zip(x, cols):
        if e in paper_table and paper_table[e] is None:
            ax.annotate("paper\nfailed", (xi, 0), xycoords=("data", "axes fraction"), xytext=(0, 4),
                        textcoords="offset points", ha="center", fontsize=7, color="gray")
    if paper_table:
        ax.axhline(0.5, color="gray", linewidth=0.8, linestyle=":", label="chance")
    else:   # K classes, maybe unbalanced: always predicting the majority class is the line to beat
        ax.axhline(_plateau_rate(summary["runs"]), color="gray", linewidth=0.8, linestyle=":",
                   label="one-class rate")
    for xi, e in zip(x, cols):
        ax.annotate(f"n={cells[e]['n_ok']}", (xi, 1), xycoords=("data", "axes fraction"), xytext=(0, -10),
                    textcoords="offset points", ha="center", fontsize=7, color="dimgray")
    ax.set_xticks(x, [eps_label(e) for e in cols])
    ax.set_xlabel("eps (categorical axis)")
    ax.set_ylabel("error")
    ax.set_title(f"Table 1: error against eps at alpha = {summary['alpha']:g}" if paper_table else
                 f"Error against eps at alpha = {summary['alpha']:g}, data={corpus_label(summary['data'])}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    atomic_write_bytes(path, buf.getvalue())


def _plateau_rate(runs):
    """The error of always predicting the training majority class (median over the runs; 0.5 if none say)."""
    rates = [r["plateau_err"] for r in runs if r.get("plateau_err") is not None]
    return float(np.median(rates)) if rates else 0.5


def plot_learning_curves(summary, path, keys=()):
    """``learning_curves.png``: validation error against epoch for every run, one panel per eps
    (per configuration ``keys`` and eps when given)."""
    by_eps = {}
    for r in summary["runs"]:
        if r["history"] and (keys or r["alpha"] == summary["alpha"]):
            label = tuple(str(v) for v in setting_label(r["config"], keys)) + (r["eps"],)
            by_eps.setdefault(label, []).append(r)
    eps_list = sorted(by_eps)
    if not eps_list:
        return False
    ncol = min(4, len(eps_list))
    nrow = int(math.ceil(len(eps_list) / ncol))
    # IMDB: two balanced classes. Another corpus: K classes, whose one-class plateau (1 - the
    # majority's share) may lie above IMDB's 0.6 ceiling.
    line, top = 0.5, 0.6
    if not summary["paper"]:
        line = _plateau_rate(summary["runs"])
        top = max(0.6, line + 0.1, *(h["valid_err"] for rs in by_eps.values() for r in rs for h in r["history"]
                                     if is_finite(h["valid_err"])))
    fig = _figure((3.2 * ncol, 2.5 * nrow))
    for k, e in enumerate(eps_list):
        ax = fig.add_subplot(nrow, ncol, k + 1)
        for r in by_eps[e]:
            ep = [h["epoch"] for h in r["history"]]
            ax.plot(ep, [h["valid_err"] for h in r["history"]], linewidth=0.9, label=f"seed {r['seed']}")
            if r["escape_epoch"] is not None:
                ax.axvline(r["escape_epoch"], color=ax.lines[-1].get_color(), linewidth=0.5, linestyle=":")
        ax.axhline(line, color="gray", linewidth=0.6, linestyle=":")
        ax.set_ylim(0, top)
        name = ", ".join(f"{k}={v}" for k, v in zip(keys, e[:-1]))
        ax.set_title((name + "\n" if name else "") + f"eps = {eps_label(e[-1])} ({len(by_eps[e])} runs)", fontsize=8)
        ax.tick_params(labelsize=7)
        if k % ncol == 0:
            ax.set_ylabel("valid error", fontsize=8)
        if k >= (nrow - 1) * ncol:
            ax.set_xlabel("epoch", fontsize=8)
        ax.legend(fontsize=6, loc="lower left")
    fig.suptitle("Validation error (dotted: left the plateau)", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())
    return True


def plot_attacks(summary, path, name="iter_sign_pred"):
    """``attacks.png``: robust error against attack radius, one line per training eps."""
    d = summary["attacks"].get(name)
    if not d:
        return False
    fig = _figure((6, 4))
    ax = fig.add_subplot()
    for e, per in d.items():
        st = sorted(per)
        ax.errorbar(st, [per[a]["mean"] for a in st], yerr=np.nan_to_num([per[a]["sd"] for a in st]), marker="o",
                    markersize=3, capsize=2, linewidth=1, label=f"train eps {eps_label(e)} (n={per[st[0]]['n']})")
    ax.set_xscale("log")
    ax.axhline(0.5, color="gray", linewidth=0.8, linestyle=":")
    ax.set_xlabel("attack radius (L-inf, embedding units)")
    ax.set_ylabel("robust error (clean or attacked wrong)")
    ax.set_title(f"Robust test error under {name}", fontsize=10)
    ax.legend(fontsize=6, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())
    return True

"""Figures and long-format tables from files every run already writes.

- `runs_csv`: ``runs.csv``, one row per validation per run (``history.csv`` rows), with the
  run's status, eps, alpha, seed and every configuration key that varies between the runs,
  for pandas users (``pd.read_csv("runs.csv")``).
- `random_search_scatter`: ``random_search.png``, adversarial against plain test error per draw
  of the random search (`lstm_adv.sweep`), with the diagonal: points below it are draws where
  the adversarial twin did better.
- `lm_weight_figure`: the visualiser's tokens changed and flip rates against ``lm_weight``.

Every figure is written with matplotlib's Agg backend, atomically.
"""

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from .rundir import HISTORY_COLUMNS
from .utils import atomic_write_bytes, atomic_write_text

# Keys that never describe what a run computed (paths, logging, resuming).
_NOT_SETTINGS = {"saveto", "runs_dir", "resume", "progress", "dispFreq", "saveFreq", "data_path", "download",
                 "reload_model", "w2v_path"}


def _read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _run_dirs(paths):
    dirs = []
    for p in paths:
        dirs += [c.parent for c in sorted(Path(p).rglob("config.json"))]
    return list(dict.fromkeys(dirs))


def runs_csv(paths, root=None):
    """``runs.csv`` text: one row per validation per run under ``paths``.

    Columns: ``run`` (the run directory relative to ``root``, default the folder the paths share), ``status``,
    ``eps``, ``alpha``, ``seed``, every other configuration key whose value differs between the
    runs, then the ``history.csv`` columns. A run without validations yet gets one row with empty
    history fields, so failed runs are not silently missing.
    """
    import os
    root = Path(root or os.path.commonpath([str(Path(x).resolve()) for x in paths]))
    runs = []
    for d in _run_dirs(paths):
        record = _read_json(d / "config.json")
        if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
            continue
        metrics = _read_json(d / "metrics.json")
        status = metrics.get("status", "corrupt") if isinstance(metrics, dict) else "no metrics"
        try:
            with open(d / "history.csv", newline="") as fh:
                history = list(csv.DictReader(fh))
        except OSError:
            history = []
        runs.append((d, record["config"], status, history))
    keys = []
    for _, cfg, _, _ in runs:
        keys += [k for k in cfg if k not in keys]
    varying = [k for k in keys if k not in _NOT_SETTINGS and k not in ("eps", "alpha", "seed")
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
            m = _read_json(draw / kind / "metrics.json")
            t = m.get("test_err") if isinstance(m, dict) and m.get("status") == "ok" else None
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

"""The random search's statistics: the best adversarial and the best plain run, and the draws paired.

``python -m lstm_adv.sweep summary SWEEP_DIR`` writes ``summary.md``, ``runs.csv`` and
``random_search.png`` for a search planned by `lstm_adv.sweeps.random_search`.
"""

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common import checks
from ..common.errors import UserError
from ..common.options import parse_with_rest, positional_arg
from ..common.utils import atomic_write_text, short_number
from ..rundir import find_runs
from .figures import random_search_scatter, write_runs_csv

_SHOWN = ("hdim", "wdim", "reg", "clip", "optimizer", "lrate", "batch_size", "use_dropout", "alpha", "eps",
          "adv_emb_grad", "seed")


def _read_runs(root):
    """The search's runs (`lstm_adv.rundir.find_runs`; an unreadable config.json: left out) as dicts."""
    try:
        records, _ = find_runs([root])
    except UserError:
        return []
    runs = []
    for rec in records:
        d, cfg, metrics = rec.path, rec.config, rec.metrics or {}
        adversarial = rec.saved.get("adversarial", cfg.get("eps", 0) > 0)
        runs.append({"dir": d, "config": cfg, "adversarial": bool(adversarial), "metrics": metrics,
                     "status": rec.status, "valid": metrics.get("valid_err"),
                     "test": metrics.get("test_err"), "draw": d.parent.name if d.name in ("adv", "plain") else d.name})
    return runs


def _ok(r):
    return r["status"] == "ok" and all(isinstance(r[k], (int, float)) and math.isfinite(r[k]) for k in ("valid", "test"))


def random_summary(root):
    """Markdown comparing the best adversarial and the best plain run of a random search (chosen on validation)."""
    from scipy import stats  # slow to import: `python -m lstm_adv.sweep --help` need not pay

    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root} is not a sweep folder")
    runs = _read_runs(root)
    if not runs:
        raise UserError(f"no runs (no config.json) under {root}")
    out = [f"# Random search under {root}", "",
           "Best configuration of each kind chosen on validation error (ties: the earlier draw); its "
           "test error is reported once, never used for selection.", ""]
    rows = []
    best = {}
    for kind, adv in (("adversarial", True), ("plain", False)):
        group = [r for r in runs if r["adversarial"] == adv]
        ok = [r for r in group if _ok(r)]
        if ok:
            b = min(ok, key=lambda r: (r["valid"], str(r["dir"])))
            best[kind] = b
            attack = b["metrics"].get("attack") or {}
            rows.append([kind, b["draw"], f"{b['valid']:.4f}", f"{b['test']:.4f}",
                         ", ".join(f"{a}: {v:.3f}" for a, v in attack.items()) or "-",
                         " ".join(f"{k}={short_number(b['config'][k])}" for k in _SHOWN if k in b["config"]
                                  and not (k == "lrate" and b["config"].get("optimizer") != "sgd")
                                  and not (not adv and k in ("alpha", "eps", "adv_emb_grad"))),
                         f"{len(ok)} of {len(group)}"])
        else:
            rows.append([kind, "-", "-", "-", "-", "no finished run", f"0 of {len(group)}"])
    out += ["| model | draw | valid err | test err | test err under attack | configuration | runs ok |",
            "|---|---|---|---|---|---|---|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]

    pairs = {}
    for r in runs:
        pairs.setdefault((r["dir"].parent, r["draw"]), {})["adv" if r["adversarial"] else "plain"] = r
    both = [(p["adv"], p["plain"]) for p in pairs.values() if "adv" in p and "plain" in p
            and _ok(p["adv"]) and _ok(p["plain"])]
    out += [""]
    if both:
        diff = np.array([a["test"] - p["test"] for a, p in both])
        line = (f"Paired by draw ({len(both)} draws with both runs ok): the adversarial run has the lower test "
                f"error in {int((diff < 0).sum())}, the higher in {int((diff > 0).sum())}; mean test error "
                f"difference (adversarial - plain) {diff.mean():+.4f}")
        if len(both) >= 2 and np.any(diff != 0):
            line += f", Wilcoxon signed-rank p = {stats.wilcoxon(diff).pvalue:.3g}"
        out.append(line + ".")
    if "adversarial" in best and "plain" in best:
        d = best["adversarial"]["test"] - best["plain"]["test"]
        out.append(f"Best adversarial vs best plain: test error {best['adversarial']['test']:.4f} vs "
                   f"{best['plain']['test']:.4f} ({d:+.4f}).")
    failed = [r for r in runs if not _ok(r)]
    if failed:
        out += ["", f"Not ok: {len(failed)} run(s): "
                + ", ".join(f"{r['dir'].relative_to(root)} ({r['status']})" for r in failed[:20])
                + (" ..." if len(failed) > 20 else "")]
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class SummaryOptions:
    """``sweep summary`` takes no keys: only its SWEEP_DIR."""


def summary(argv):
    """``sweep summary SWEEP_DIR``: print the summary and write it with ``runs.csv`` and the scatter; returns 0."""
    _, dirs = parse_with_rest(SummaryOptions, argv, positional=positional_arg)
    if len(dirs) != 1:
        raise UserError("usage: python -m lstm_adv.sweep summary SWEEP_DIR")
    root = dirs[0]
    checks.readable_dir("SWEEP_DIR", root)
    path = Path(root) / "summary.md"
    checks.writable_files("SWEEP_DIR", root, (path.name, "runs.csv", "random_search.png"))
    text = random_summary(root)
    atomic_write_text(path, text)
    written = [path, write_runs_csv([root], root)]
    scatter = random_search_scatter(root)   # None until a draw has both runs finished
    print(text, end="")
    print("wrote " + ", ".join(map(str, written + ([scatter] if scatter else []))), file=sys.stderr)
    return 0

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
- ``runs.csv``: long format, one row per validation per run (`lstm_adv.figures.runs_csv`).
- ``random_search.png`` in a RUNS_DIR that holds a random search (``draw=NNN/{adv,plain}``):
  adversarial against plain test error per draw, with the diagonal.

Only runs whose ``metrics.json`` says ``"status": "ok"`` and holds finite errors contribute
numbers. All others (nan, interrupted, failed, running, no metrics.json yet, an unreadable
metrics.json) are counted as not ok and shown as counts, never as numbers.
"""

import csv
import io
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

from . import checks
from .errors import UserError, cli_entry
from .utils import atomic_write_bytes, atomic_write_text

TABLE1_ALPHA = 0.5
SPLITS = ("dev", "test", "average")

# SPEC section 5: the paper's Table 1 (alpha = 0.5, one unseeded run per cell) as (dev, test,
# average). The eps=0.1 run printed 0.00 everywhere: a failed run, kept as None.
PAPER = {
    0.0: (.14, .19, .17), 0.1: None, 0.2: (.15, .23, .19), 0.3: (.12, .24, .18),
    0.4: (.16, .19, .18), 0.5: (.14, .18, .16), 0.6: (.14, .20, .17), 0.7: (.16, .20, .18),
    0.8: (.14, .22, .18), 0.9: (.16, .18, .17), 1.0: (.14, .21, .18), 15.0: (.13, .17, .15),
}

# Config keys that do not change what a run computes; ignored when checking that all runs of
# the table share one setting.
_NOT_SETTINGS = {"eps", "seed", "saveto", "runs_dir", "resume", "progress", "dispFreq", "saveFreq",
                 "data_path", "download", "valid_test", "device", "mode", "reload_model"}

USAGE = "usage: python -m lstm_adv.results RUNS_DIR [RUNS_DIR ...] [out=DIR] [plot=0|1] [by=KEY,KEY]"


# --------------------------------------------------------------------------- reading runs
def _finite(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return None, f"{type(err).__name__}: {err}".splitlines()[0]


def read_run(run_dir):
    """One run directory as a flat dict.

    Returns
    -------
    dict
        ``dir``, ``config`` (the saved ``config`` entry), ``eps``, ``alpha``, ``seed``,
        ``status`` (``ok``, ``nan``, ``interrupted``, ``failed``, ``running``, ``no metrics``
        or ``corrupt``), ``dev``, ``test``, ``average`` (floats, or None unless status is ok),
        ``attack`` ({attack eps: test error}), ``wall_time_s`` and ``problem`` (why a run
        is ``corrupt``, else None).

    Raises
    ------
    UserError
        If ``config.json`` is unreadable or has no usable ``eps``/``alpha`` (the run cannot be
        placed in the table).
    """
    run_dir = Path(run_dir)
    saved, err = _read_json(run_dir / "config.json")
    cfg = saved.get("config") if isinstance(saved, dict) else None
    if err or not isinstance(cfg, dict):
        raise UserError(f"{run_dir / 'config.json'} is not a run configuration ({err or 'no config entry'})")
    eps, alpha = cfg.get("eps", 0.0), cfg.get("alpha", TABLE1_ALPHA)
    if not (_finite(eps) and _finite(alpha)):
        raise UserError(f"{run_dir / 'config.json'} has eps={eps!r}, alpha={alpha!r}; both must be numbers")
    run = {"dir": str(run_dir), "config": cfg, "eps": round(float(eps), 9), "alpha": round(float(alpha), 9),
           "seed": cfg.get("seed"), "status": "no metrics", "dev": None, "test": None, "average": None,
           "attack": {}, "attacks": {}, "wall_time_s": None, "problem": None}
    run["history"] = read_history(run_dir / "history.csv")
    pos = (saved.get("data") or {}).get("train_pos_fraction") if isinstance(saved.get("data"), dict) else None
    run["escape_epoch"], run["plateau_err"] = escape_epoch(run["history"], pos)
    if not (run_dir / "metrics.json").exists():
        return run
    metrics, err = _read_json(run_dir / "metrics.json")
    if err or not isinstance(metrics, dict) or not isinstance(metrics.get("status"), str):
        run.update(status="corrupt", problem=err or "no status entry")
        return run
    run["status"] = metrics["status"]
    run["wall_time_s"] = metrics.get("wall_time_s") if _finite(metrics.get("wall_time_s")) else None
    if run["status"] != "ok":
        return run
    dev, test = metrics.get("valid_err"), metrics.get("test_err")
    if not (_finite(dev) and _finite(test)):
        # A NaN error in an "ok" run is a diverged run; a missing one is a broken file.
        nan = any(isinstance(v, float) and math.isnan(v) for v in (dev, test))
        run.update(status="nan" if nan else "corrupt",
                   problem=None if nan else f"status ok but valid_err={dev!r}, test_err={test!r}")
        return run
    run.update(dev=float(dev), test=float(test), average=(float(dev) + float(test)) / 2)
    if isinstance(metrics.get("attacks"), dict):
        run["attacks"] = metrics["attacks"]
    attack = metrics.get("attack") or {}
    if isinstance(attack, dict):
        for k, v in attack.items():
            try:
                key = round(float(k), 9)
            except ValueError:
                continue
            if _finite(v):
                run["attack"][key] = float(v)
    return run


#: A run has left the one-class plateau at the first validation whose training error is below
#: the minority-class rate (the error of always predicting the majority class) minus this margin.
PLATEAU_MARGIN = 0.05


def read_history(path):
    """``history.csv`` as a list of dicts of floats (empty if missing or unreadable)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        try:
            rows.append({k: float(v) if v not in ("", None) else None for k, v in row.items()})
        except (TypeError, ValueError):
            return []
    return rows


def escape_epoch(history, pos_fraction=None):
    """The epoch at which a run left the one-class plateau (`PLATEAU_MARGIN`), or None (never).

    Parameters
    ----------
    history : list of dict
        Validation rows with ``epoch`` and ``train_err``.
    pos_fraction : float, optional
        Fraction of positive training reviews (``config.json``, ``data.train_pos_fraction``);
        without it the plateau's error is taken as the largest training error seen (at most 0.5).

    Returns
    -------
    (epoch or None, plateau error or None)
    """
    errs = [r.get("train_err") for r in history if r.get("train_err") is not None]
    if not errs:
        return None, None
    plateau = min(pos_fraction, 1 - pos_fraction) if _finite(pos_fraction) else min(0.5, max(errs))
    for r in history:
        if r.get("train_err") is not None and r["train_err"] < plateau - PLATEAU_MARGIN:
            return int(r["epoch"]), plateau
    return None, plateau


def find_runs(paths):
    """Every run under ``paths`` (folders searched recursively for ``config.json``).

    Returns
    -------
    runs : list of dict
        As `read_run`, sorted by (alpha, eps, seed, dir); each directory once.
    warnings : list of str
        One line per run that could not be placed (unreadable config) or is corrupt.

    Raises
    ------
    UserError
        If a path is not an existing folder, no ``config.json`` is found, or no run could be read.
    """
    dirs = []
    for p in paths:
        p = Path(p)
        if not p.is_dir():
            raise UserError(f"{p} is not a folder of run directories ({'a file' if p.exists() else 'not found'})")
        dirs += [c.parent.resolve() for c in sorted(p.rglob("config.json"))]
    dirs = list(dict.fromkeys(dirs))
    if not dirs:
        raise UserError(f"no runs (no config.json) under {', '.join(map(str, paths))}")
    runs, notes = [], []
    for d in dirs:
        try:
            run = read_run(d)
        except UserError as err:
            notes.append(f"skipped: {err}")
            continue
        if run["status"] == "corrupt":
            notes.append(f"{d / 'metrics.json'} is unreadable, counted as failed ({run['problem']})")
        runs.append(run)
    if not runs or all(r["status"] == "corrupt" for r in runs):
        raise UserError(f"none of the {len(dirs)} run(s) under {', '.join(map(str, paths))} could be read "
                        f"(first problem: {notes[0]})")
    runs.sort(key=lambda r: (r["alpha"], r["eps"], str(r["seed"]), r["dir"]))
    return runs, notes


# --------------------------------------------------------------------------- statistics
def _mean_sd(values):
    """Mean and sample standard deviation (ddof=1); sd is nan for fewer than 2 values."""
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else math.nan


def compare(a, b):
    """Two-sided Welch t-test and Mann-Whitney U test of samples ``a`` against ``b``.

    Returns
    -------
    (p_welch, p_mwu) : tuple of float
        nan when either sample has fewer than 2 values; ``p_welch`` is also nan when both
        samples have zero spread and equal means (the t statistic is 0/0).
    """
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p_welch = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
        p_mwu = float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    return p_welch, p_mwu


def holm(pvalues):
    """Holm-Bonferroni adjusted p-values (nan entries are left out of the family and stay nan)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(~np.isnan(p))
    order = idx[np.argsort(p[idx])]
    m, running = len(order), 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out.tolist()


def _cell(runs):
    ok = [r for r in runs if r["status"] == "ok"]
    cell = {"n_ok": len(ok), "n_failed": len(runs) - len(ok), "not_ok": {},
            "seeds": [r["seed"] for r in ok], "dirs": [r["dir"] for r in runs],
            "wall_time_s": [r["wall_time_s"] for r in runs if r["wall_time_s"] is not None]}
    for r in runs:
        if r["status"] != "ok":
            cell["not_ok"][r["status"]] = cell["not_ok"].get(r["status"], 0) + 1
    for split in SPLITS:
        values = [r[split] for r in ok]
        mean, sd = _mean_sd(values)
        cell[split] = {"values": values, "mean": mean, "sd": sd, "p_welch": math.nan, "p_mwu": math.nan}
    return cell


def _settings(runs):
    """Non-default setting keys shared by all runs (key -> value), keys that differ (key -> values)."""
    from .config import Config

    defaults = Config().to_dict()
    keys = {k for r in runs for k in r["config"]} - _NOT_SETTINGS
    values = {}
    for k in sorted(keys, key=lambda k: (k not in defaults, list(defaults).index(k) if k in defaults else k)):
        for r in runs:
            v = r["config"].get(k, defaults.get(k))
            values.setdefault(k, {})[json.dumps(v, sort_keys=True)] = v
    shared = {k: next(iter(v.values())) for k, v in values.items()
              if len(v) == 1 and (k not in defaults or next(iter(v.values())) != defaults[k])}
    mixed = {k: list(v.values()) for k, v in values.items() if len(v) > 1}
    return shared, mixed


def summarise(run_dirs, alpha=TABLE1_ALPHA):
    """Table 1 from the runs under ``run_dirs``.

    Parameters
    ----------
    run_dirs : str, Path or list of them
        Folders searched recursively for run directories (a run directory itself works too).
    alpha : float
        The runs that make up the table (the paper's Table 1 is alpha=0.5).

    Returns
    -------
    dict
        ``alpha``; ``columns``: the eps values in order (the paper's grid plus any other eps
        present); ``cells``: eps -> {``n_ok``, ``n_failed``, ``not_ok`` (status -> count),
        ``seeds``, ``dirs``, ``wall_time_s``, and per split ``dev``/``test``/``average``:
        {``values``, ``mean``, ``sd`` (ddof=1), ``paper``, ``p_welch``, ``p_mwu``}} where the
        p-values test that eps against eps=0 (nan for eps=0 and where either side has < 2 ok
        runs); ``p_holm``: eps -> Holm-adjusted Welch p on test error; ``attack``: eps ->
        attack eps -> {``mean``, ``sd``, ``n``}; ``other_alpha``: alpha -> eps -> cell;
        ``shared``/``mixed``: the setting keys common to / differing between the table's runs;
        ``warnings``: lines worth showing the user; ``runs``: every run read.
    """
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    runs, notes = find_runs(run_dirs)
    alpha = round(float(alpha), 9)
    table_runs = [r for r in runs if r["alpha"] == alpha]
    by_eps = {}
    for r in table_runs:
        by_eps.setdefault(r["eps"], []).append(r)
    columns = sorted(set(PAPER) | set(by_eps))
    cells = {eps: _cell(by_eps.get(eps, [])) for eps in columns}

    for eps, cell in cells.items():
        paper = PAPER.get(eps)
        for i, split in enumerate(SPLITS):
            cell[split]["paper"] = paper[i] if paper else None
            if eps != 0.0:
                cell[split]["p_welch"], cell[split]["p_mwu"] = compare(cell[split]["values"],
                                                                       cells[0.0][split]["values"])
    tested = [eps for eps in columns if eps != 0.0]
    p_holm = dict(zip(tested, holm([cells[e]["test"]["p_welch"] for e in tested])))

    attack = {}
    for eps in columns:
        per_strength = {}
        for r in by_eps.get(eps, []):
            for strength, err in r["attack"].items():
                per_strength.setdefault(strength, []).append(err)
        if per_strength:
            attack[eps] = {s: dict(zip(("mean", "sd"), _mean_sd(v)), n=len(v))
                           for s, v in sorted(per_strength.items())}

    other = {}
    for r in runs:
        if r["alpha"] != alpha:
            other.setdefault(r["alpha"], {}).setdefault(r["eps"], []).append(r)
    other_alpha = {a: {e: _cell(rs) for e, rs in sorted(d.items())} for a, d in sorted(other.items())}

    shared, mixed = _settings(table_runs)
    if not table_runs:
        notes.append(f"no run has alpha={alpha:g}; Table 1 shows no runs of ours")
    if mixed:
        notes.append("Table 1 mixes runs with different settings: "
                     + "; ".join(f"{k} in {sorted(map(str, v))}" for k, v in mixed.items()))
    for eps, rs in by_eps.items():
        seeds = [r["seed"] for r in rs]
        dup = sorted({str(s) for s in seeds if seeds.count(s) > 1})
        if dup and not mixed:
            notes.append(f"eps={_eps(eps)} has several runs with seed {', '.join(dup)}")
    plateau = {}
    for eps in columns:
        done = [r for r in by_eps.get(eps, []) if r["status"] == "ok"]
        if not done:
            continue
        learned = [r for r in done if r["escape_epoch"] is not None]
        plateau[eps] = {"n": len(done), "never": len(done) - len(learned),
                        "epochs": {str(r["seed"]): r["escape_epoch"] for r in done},
                        "test_learned": dict(zip(("mean", "sd"), _mean_sd([r["test"] for r in learned])),
                                             n=len(learned))}
    attacks = {}
    for eps in columns:
        for r in by_eps.get(eps, []):
            if r["status"] != "ok":
                continue
            for name, per in r["attacks"].items():
                if not isinstance(per, dict) or name in ("relative",):
                    continue
                for strength, fig in per.items():
                    if isinstance(fig, dict) and _finite(fig.get("robust_err")):
                        attacks.setdefault(name, {}).setdefault(eps, {}).setdefault(
                            round(float(strength), 9), []).append(fig["robust_err"])
    attacks = {name: {e: {st: dict(zip(("mean", "sd"), _mean_sd(v)), n=len(v)) for st, v in sorted(d.items())}
                      for e, d in per_eps.items()} for name, per_eps in attacks.items()}
    relative = {}
    for r in runs:
        for st, rel in ((r["attacks"] or {}).get("relative") or {}).items():
            if _finite(rel):
                relative.setdefault(round(float(st), 9), []).append(rel)
    relative = {st: float(np.median(v)) for st, v in relative.items()}

    return {"alpha": alpha, "columns": columns, "cells": cells, "p_holm": p_holm, "attack": attack,
            "plateau": plateau, "attacks": attacks, "relative": relative,
            "other_alpha": other_alpha, "shared": shared, "mixed": mixed, "warnings": notes, "runs": runs}


# --------------------------------------------------------------------------- formatting
def _eps(eps):
    return f"{eps:.1f}" if float(eps).is_integer() else f"{eps:g}"


def _num(x, digits=3):
    return f"{x:.{digits}f}" if _finite(x) else ""


def _pnum(p):
    return f"{p:.6g}" if _finite(p) else ""


def _p(p):
    if not _finite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _paper(eps, split_index):
    if eps not in PAPER:
        return ""
    if PAPER[eps] is None:
        return " (paper failed)"
    return f" (paper {PAPER[eps][split_index]:.2f})".replace("0.", ".", 1)


def _ours(stat, cell):
    if cell["n_ok"] == 0:
        # Name the statuses: a run still going or not started is not a failure.
        return _not_ok(cell) if cell["n_failed"] else "no runs"
    if cell["n_ok"] == 1:
        return f"{stat['mean']:.3f} (n=1)"
    return f"{stat['mean']:.3f} ± {stat['sd']:.3f}"


def _not_ok(cell):
    return ", ".join(f"{n} {status}" for status, n in sorted(cell["not_ok"].items())) or "-"


def _md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return lines


def to_markdown(summary):
    """``table1.md`` as a string (see the module docstring for its sections)."""
    s, cols, cells = summary, summary["columns"], summary["cells"]
    out = [f"# Table 1: error at alpha = {s['alpha']:g} (eps = 0 is the plain model)", "",
           "Ours: mean ± sd (ddof=1) over seeds, ok runs only; the paper's single unseeded run in "
           "brackets (its eps=0.1 run printed 0.00, a failed run). Average = mean of dev and test.", ""]
    rows = [[split] + [_ours(cells[e][split], cells[e]) + _paper(e, i) for e in cols]
            for i, split in enumerate(SPLITS)]
    out += _md_table(["eps"] + [_eps(e) for e in cols], rows)
    if s["shared"]:
        out += ["", "Settings shared by these runs: "
                + ", ".join(f"{k}={v}" for k, v in s["shared"].items()) + "."]
    if s["mixed"]:
        out += ["", "**Warning: these runs differ in** "
                + "; ".join(f"{k} ({', '.join(map(str, v))})" for k, v in s["mixed"].items()) + "."]

    out += ["", "## Does any eps differ from eps = 0? (test error)", "",
            "Two-sided Welch t-test (`scipy.stats.ttest_ind(equal_var=False)`) of each eps against "
            "eps = 0, its Holm-Bonferroni adjustment over all eps tested, and a Mann-Whitney U "
            "test as a non-parametric check; n/a where either group has fewer than 2 ok runs.", ""]
    base = cells[0.0]["test"]
    rows, significant = [], []
    for e in (e for e in cols if e != 0.0):
        t = cells[e]["test"]
        diff = t["mean"] - base["mean"] if cells[e]["n_ok"] and cells[0.0]["n_ok"] else math.nan
        rows.append([_eps(e), f"{cells[e]['n_ok']} vs {cells[0.0]['n_ok']}",
                     f"{diff:+.3f}" if _finite(diff) else "", _p(t["p_welch"]),
                     _p(s["p_holm"].get(e)), _p(t["p_mwu"])])
        if _finite(s["p_holm"].get(e)) and s["p_holm"][e] < 0.05:
            significant.append(f"eps={_eps(e)} ({'worse' if diff > 0 else 'better'})")
    out += _md_table(["eps", "n ok (eps vs 0)", "test err - eps 0", "Welch p", "Welch p (Holm)",
                      "Mann-Whitney p"], rows)
    n_tested = sum(_finite(p) for p in s["p_holm"].values())
    out += ["", (f"Differs from eps = 0 at the 5% level after Holm's correction: {', '.join(significant)}."
                 if significant else
                 f"No eps differs from eps = 0 at the 5% level after Holm's correction "
                 f"({n_tested} eps tested).")]

    out += ["", "## Runs per eps", "",
            "ok: finished with finite errors. Not ok: every other run (nan, interrupted, failed, "
            "running, no metrics = not started or still running, corrupt = unreadable metrics.json).", ""]
    rows = [[_eps(e), cells[e]["n_ok"], cells[e]["n_failed"], _not_ok(cells[e]),
             _num(np.median(cells[e]["wall_time_s"]) / 60, 1) if cells[e]["wall_time_s"] else ""]
            for e in cols]
    out += _md_table(["eps", "ok", "not ok", "not ok by status", "median wall time (min)"], rows)
    total = sum(sum(c["wall_time_s"]) for c in cells.values())
    if total:
        out += ["", f"Total run time, summed over runs: {total / 3600:.2f} h."]

    if s["plateau"]:
        out += ["", "## Leaving the one-class plateau", "",
                f"A run has left the plateau at the first validation whose training error is below the "
                f"minority-class rate minus {PLATEAU_MARGIN} (always predicting the majority class); "
                "never = not within its epochs. Test error of the runs that left it: mean ± sd (n).", ""]
        rows = []
        for e, d in s["plateau"].items():
            t = d["test_learned"]
            epochs = ", ".join(f"s{k}: {v if v is not None else 'never'}" for k, v in d["epochs"].items())
            rows.append([_eps(e), d["n"], d["never"], epochs,
                         (f"{t['mean']:.3f}" + (f" ± {t['sd']:.3f}" if t["n"] > 1 else "") + f" ({t['n']})")
                         if t["n"] else "-"])
        out += _md_table(["eps", "ok runs", "never left", "epoch left (by seed)", "test err, runs that left"],
                         rows)

    for name, title in (("iter_sign_pred", "iterative sign attack (10 steps, L-inf ball) on the predicted label"),
                        ("onestep_pred", "one-step attack on the predicted label"),
                        ("onestep_true", "one-step attack on the TRUE label (leaks the label; for comparison)")):
        if name not in s["attacks"]:
            continue
        d = s["attacks"][name]
        strengths = sorted({a for per in d.values() for a in per})
        rel = s["relative"]
        out += ["", f"## Robust error: {title}", "",
                "A review counts as wrong if its clean or its attacked prediction is wrong. Rows: training "
                "eps; columns: attack radius (in brackets: x the median |Wemb| coordinate of the trained "
                "models); mean ± sd over ok runs (n).", ""]
        rows = [[_eps(e)] + [(f"{per[a]['mean']:.3f}" + (f" ± {per[a]['sd']:.3f}" if per[a]["n"] > 1 else "")
                              + f" ({per[a]['n']})") if a in per else "" for a in strengths]
                for e, per in d.items()]
        out += _md_table(["train eps \\ attack"] + [_eps(a) + (f" (x{rel[a]:.2g})" if a in rel else "")
                                                     for a in strengths], rows)

    if s["attack"] and not s["attacks"]:
        strengths = sorted({a for d in s["attack"].values() for a in d})
        out += ["", "## Robustness: test error under a fast gradient sign attack (true label)", "",
                "Rows: training eps; columns: attack strength; mean ± sd over ok runs (n).", ""]
        rows = []
        for e, d in s["attack"].items():
            rows.append([_eps(e)] + [(f"{d[a]['mean']:.3f}" + (f" ± {d[a]['sd']:.3f}" if d[a]["n"] > 1 else "")
                                      + f" ({d[a]['n']})") if a in d else "" for a in strengths])
        out += _md_table(["train eps \\ attack"] + [_eps(a) for a in strengths], rows)

    if s["other_alpha"]:
        out += ["", "## Runs at other alpha values (not part of Table 1)", ""]
        rows = [[f"{a:g}", _eps(e), _ours(c["dev"], c), _ours(c["test"], c), c["n_ok"], c["n_failed"]]
                for a, d in s["other_alpha"].items() for e, c in d.items()]
        out += _md_table(["alpha", "eps", "dev", "test", "ok", "not ok"], rows)
    return "\n".join(out) + "\n"


CSV_COLUMNS = ("eps", "split", "mean", "sd", "n_ok", "n_failed", "paper", "p_welch", "p_mwu", "paper_note")


def to_csv(summary):
    """``table1.csv``: one row per (eps, split), columns `CSV_COLUMNS`; empty = not available.

    ``split`` is dev, test or average; ``p_welch``/``p_mwu`` test that split's error against
    eps=0; ``paper_note`` is ``failed`` for the paper's eps=0.1 and ``not in paper`` for eps
    outside its grid.
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for e in summary["columns"]:
        c = summary["cells"][e]
        note = "not in paper" if e not in PAPER else ("failed" if PAPER[e] is None else "")
        for split in SPLITS:
            st = c[split]
            w.writerow([_eps(e), split, _num(st["mean"], 6), _num(st["sd"], 6), c["n_ok"], c["n_failed"],
                        _num(st["paper"], 2), _pnum(st["p_welch"]), _pnum(st["p_mwu"]), note])
    return buf.getvalue()


def plot(summary, path):
    """``table1.png``: dev and test error against eps (categorical axis), ours ± sd and the paper's."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols, cells = summary["columns"], summary["cells"]
    # Categorical axis; eps beyond the paper's 0..1 range (its 15.0) sit after a visible gap.
    x = np.arange(len(cols)) + 0.6 * (np.array(cols) > 1.0)
    fig = Figure(figsize=(max(7.0, 0.65 * len(cols) + 2), 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, (split, color, dx) in enumerate([("dev", "tab:blue", -0.1), ("test", "tab:red", 0.1)]):
        mean = np.array([cells[e][split]["mean"] for e in cols])
        sd = np.nan_to_num(np.array([cells[e][split]["sd"] for e in cols]))
        ax.errorbar(x + dx, mean, yerr=sd, fmt="o", color=color, capsize=3, label=f"ours, {split} (mean ± sd)")
        for xi, e in zip(x, cols):
            v = cells[e][split]["values"]
            ax.plot(np.full(len(v), xi + dx), v, ".", color=color, alpha=0.3, markersize=4)
        paper = [PAPER[e][i] if PAPER.get(e) else np.nan for e in cols]
        ax.plot(x + 2.5 * dx, paper, "x" if split == "dev" else "s", color=color, mfc="none", markersize=7,
                label=f"paper, {split} (one run)")
    if any(e > 1.0 for e in cols) and any(e <= 1.0 for e in cols):
        gap = x[np.array(cols) > 1.0][0] - 0.8
        ax.axvline(gap, color="gray", linestyle=(0, (2, 4)), linewidth=0.8)
    for xi, e in zip(x, cols):
        if e in PAPER and PAPER[e] is None:
            ax.annotate("paper\nfailed", (xi, 0), xycoords=("data", "axes fraction"), xytext=(0, 4),
                        textcoords="offset points", ha="center", fontsize=7, color="gray")
    ax.axhline(0.5, color="gray", linewidth=0.8, linestyle=":", label="chance")
    for xi, e in zip(x, cols):
        ax.annotate(f"n={cells[e]['n_ok']}", (xi, 1), xycoords=("data", "axes fraction"), xytext=(0, -10),
                    textcoords="offset points", ha="center", fontsize=7, color="dimgray")
    ax.set_xticks(x, [_eps(e) for e in cols])
    ax.set_xlabel("eps (categorical axis)")
    ax.set_ylabel("error")
    ax.set_title(f"Table 1: error against eps at alpha = {summary['alpha']:g}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    atomic_write_bytes(path, buf.getvalue())


def plot_learning_curves(summary, path, keys=()):
    """``learning_curves.png``: validation error against epoch for every run, one panel per eps
    (per configuration ``keys`` and eps when given)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    by_eps = {}
    for r in summary["runs"]:
        if r["history"] and (keys or r["alpha"] == summary["alpha"]):
            label = tuple(str(r["config"].get(k)) for k in keys) + (r["eps"],)
            by_eps.setdefault(label, []).append(r)
    eps_list = sorted(by_eps)
    if not eps_list:
        return False
    ncol = min(4, len(eps_list))
    nrow = int(math.ceil(len(eps_list) / ncol))
    fig = Figure(figsize=(3.2 * ncol, 2.5 * nrow))
    FigureCanvasAgg(fig)
    for k, e in enumerate(eps_list):
        ax = fig.add_subplot(nrow, ncol, k + 1)
        for r in by_eps[e]:
            ep = [h["epoch"] for h in r["history"]]
            ax.plot(ep, [h["valid_err"] for h in r["history"]], linewidth=0.9, label=f"seed {r['seed']}")
            if r["escape_epoch"] is not None:
                ax.axvline(r["escape_epoch"], color=ax.lines[-1].get_color(), linewidth=0.5, linestyle=":")
        ax.axhline(0.5, color="gray", linewidth=0.6, linestyle=":")
        ax.set_ylim(0, 0.6)
        name = ", ".join(f"{k}={v}" for k, v in zip(keys, e[:-1]))
        ax.set_title((name + "\n" if name else "") + f"eps = {_eps(e[-1])} ({len(by_eps[e])} runs)", fontsize=8)
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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    d = summary["attacks"].get(name)
    if not d:
        return False
    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for e, per in d.items():
        st = sorted(per)
        ax.errorbar(st, [per[a]["mean"] for a in st], yerr=np.nan_to_num([per[a]["sd"] for a in st]), marker="o",
                    markersize=3, capsize=2, linewidth=1, label=f"train eps {_eps(e)} (n={per[st[0]]['n']})")
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


def ablation_markdown(runs, keys):
    """A table of runs grouped by the configuration ``keys`` and eps: the plateau and the errors.

    Parameters
    ----------
    runs : list of dict
        As `find_runs` returns.
    keys : list of str
        Configuration keys that name a group (e.g. ``wemb_init``, ``w2v_std``).

    Returns
    -------
    str (Markdown)
    """
    groups = {}
    for r in runs:
        label = tuple(r["config"].get(k) for k in keys)
        groups.setdefault((label, r["eps"]), []).append(r)
    out = [f"# Runs grouped by {', '.join(keys)} and eps", "",
           f"Left the plateau: epoch of the first validation with training error below the minority-class "
           f"rate minus {PLATEAU_MARGIN}, by seed (never = not within the run's epochs; running = not "
           "finished). Errors: mean ± sd over finished runs (n).", ""]
    rows = []
    for (label, eps), rs in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        ok = [r for r in rs if r["status"] == "ok"]
        learned = [r for r in ok if r["escape_epoch"] is not None]
        epochs = ", ".join(f"s{r['seed']}: " + (str(r["escape_epoch"]) if r["escape_epoch"] is not None else
                                                ("never" if r["status"] == "ok" else r["status"]))
                           for r in sorted(rs, key=lambda r: str(r["seed"])))

        def stat(values):
            m, sd = _mean_sd(values)
            return (f"{m:.3f}" + (f" ± {sd:.3f}" if len(values) > 1 else "") + f" ({len(values)})") if values else "-"

        last = [int(r["history"][-1]["epoch"]) for r in ok if r["history"]]
        rows.append([", ".join(f"{k}={v}" for k, v in zip(keys, label)), _eps(eps), f"{len(ok)}/{len(rs)}",
                     len(ok) - len(learned), epochs, stat([r["dev"] for r in ok]), stat([r["test"] for r in ok]),
                     stat([r["test"] for r in learned]), max(last) if last else "-"])
    out += _md_table(["setting", "eps", "finished", "never left", "left the plateau at epoch",
                      "dev err", "test err", "test err (runs that left)", "last epoch"], rows)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- CLI
@cli_entry
def main(argv):
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    def exists(arg):
        try:
            return Path(arg).exists()
        except OSError:   # a name too long for the file system: not a folder of runs
            return False

    dirs, out, make_plot, given, by = [], None, True, [], []
    for arg in argv:
        key, _, value = arg.partition("=")
        if key in ("out", "plot", "by") and not exists(arg):
            given.append((key, value))
            checks.no_duplicates(given)
        if key == "out" and value and not exists(arg):
            out = value
        elif key == "plot" and not exists(arg):
            make_plot = checks.choice("plot", value, ("0", "1")) == "1"
        elif key == "by" and value and not exists(arg):
            from .config import FIELDS
            by = [k.strip() for k in value.split(",") if k.strip()]
            bad = [k for k in by if k not in FIELDS]
            if bad:
                raise UserError(f"by={value}: {', '.join(bad)} is not a training key; see python -m lstm_adv.train --help")
        elif "=" in arg and not exists(arg):
            raise UserError(f"unknown option {arg!r}; options are out=DIR, plot=0|1 and by=KEY,KEY")
        else:
            dirs.append(arg)
    if not dirs:
        raise UserError("no RUNS_DIR given; " + USAGE)
    for d in dirs:
        checks.readable_dir("RUNS_DIR", d)
    checks.writable_dir("out", out or dirs[0])
    for name in ("table1.md", "table1.csv") + (("table1.png",) if make_plot else ()):
        checks.writable_file("out", Path(out or dirs[0]) / name)
    summary = summarise(dirs)
    for note in summary["warnings"]:
        if not by:
            print(f"warning: {note}", file=sys.stderr)
    if by:   # the grouped table instead of Table 1, with the learning curves and runs.csv
        from .figures import write_runs_csv
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
        from .figures import random_search_scatter, write_runs_csv
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

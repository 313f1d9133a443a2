"""Table 1's numbers: runs grouped by eps, means and spreads, tests against eps = 0 (`summarise`).

The paper's values (`lstm_adv.common.paper.PAPER`) sit beside ours for IMDB runs only (the paper
measured IMDB); `lstm_adv.analysis.tables` formats the result.
"""

import json
import math
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

from ..common.paper import PAPER, TABLE1_ALPHA
from ..config import NEUTRAL_KEYS, Config, is_corpus_path
from .runs import find_runs, is_finite

SPLITS = ("dev", "test", "average")

# Ignored when checking that all runs of the table share one setting: the table's own axes and
# the keys that change nothing a run computes (`lstm_adv.config.NEUTRAL_KEYS`: backend, paths, logging).
_NOT_SETTINGS = {"eps", "seed", *NEUTRAL_KEYS}


def eps_label(eps):
    """An eps as the tables write it: 0.0, 0.5, 15.0, 0.05."""
    return f"{eps:.1f}" if float(eps).is_integer() else f"{eps:g}"


def mean_sd(values):
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


def welch_ci(a, b, level=0.95):
    """Confidence interval of mean(a) - mean(b) from Welch's t (Welch-Satterthwaite degrees of freedom).

    Says which differences the runs rule out, where a p-value says only whether 0 is ruled out.

    Returns
    -------
    (low, high) : tuple of float
        nan when either sample has fewer than 2 values or both have zero spread.
    """
    if len(a) < 2 or len(b) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):   # no spread: no degrees of freedom
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(level)
    return float(ci.low), float(ci.high)


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


def corpus_of(runs):
    """The ``data=`` the runs were trained on: one value, ``"mixed"``, or ``"imdb"`` for no runs.

    A run saved before ``data=`` existed trained on IMDB.
    """
    names = {str(r["config"].get("data", "imdb")) for r in runs}
    return names.pop() if len(names) == 1 else ("mixed" if names else "imdb")


def corpus_label(data):
    """`corpus_of`'s value as titles write it: imdb, toy, mixed, or the name of a user's file or folder."""
    return Path(data).name if is_corpus_path(data) and data != "mixed" else data


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
        mean, sd = mean_sd(values)
        cell[split] = {"values": values, "mean": mean, "sd": sd, "p_welch": math.nan, "p_mwu": math.nan}
    return cell


#: Keys of the adversarial term, read by no run without one (eps=0, vat=0, ascc=0): such a run (the
#: leak-free table's shared eps=0 baseline, say) does not make them "differ".
STEP_KEYS = ("alpha", "adv_norm", "adv_label", "adv_grad", "adv_emb_grad")


def _settings(runs):
    """Non-default setting keys shared by all runs (key -> value), keys that differ (key -> values)."""
    defaults = Config().to_dict()
    keys = {k for r in runs for k in r["config"]} - _NOT_SETTINGS
    values = {}
    for k in sorted(keys, key=lambda k: (k not in defaults, list(defaults).index(k) if k in defaults else k)):
        for r in runs:
            c = r["config"]
            if k in STEP_KEYS and not float(c.get("eps", defaults["eps"])) and not c.get("vat", defaults["vat"]) \
                    and not c.get("ascc", defaults["ascc"]):
                continue
            v = c.get(k, defaults.get(k))
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
        ``alpha``; ``data``: the table's corpus (`corpus_of`); ``paper``: the paper's Table 1
        (`PAPER`) for IMDB runs, else empty; ``columns``: the eps values in order (the paper's grid,
        for IMDB runs, plus every eps present); ``cells``: eps -> {``n_ok``, ``n_failed``, ``not_ok`` (status -> count),
        ``seeds``, ``dirs``, ``wall_time_s``, and per split ``dev``/``test``/``average``:
        {``values``, ``mean``, ``sd`` (ddof=1), ``paper``, ``p_welch``, ``p_mwu``}} where the
        p-values test that eps against eps=0 (nan for eps=0 and where either side has < 2 ok
        runs); ``p_holm``: eps -> Holm-adjusted Welch p on test error; ``attack``: eps ->
        attack eps -> {``mean``, ``sd``, ``n``} (the earlier runs' true-label attack);
        ``plateau``: eps -> the escape epochs and never-left counts; ``attacks``: attack name ->
        eps -> radius -> {``mean``, ``sd``, ``n``} of ``robust_err``, ``attacks_adv`` the same of
        ``adv_err``; ``relative``: radius -> median multiple of a |Wemb| coordinate; ``attack_k``:
        the iterative attacks' step counts; ``other_alpha``: alpha -> eps -> cell;
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
    data = corpus_of(table_runs or runs)
    # The paper's numbers are IMDB's: beside another corpus's errors they would compare nothing, and
    # its grid's empty columns would crowd out the eps the runs have.
    paper_table = PAPER if data == "imdb" else {}
    columns = sorted(set(paper_table) | set(by_eps))
    cells = {eps: _cell(by_eps.get(eps, [])) for eps in columns}

    for eps, cell in cells.items():
        paper = paper_table.get(eps)
        for i, split in enumerate(SPLITS):
            cell[split]["paper"] = paper[i] if paper else None
            if eps != 0.0 and 0.0 in cells:
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
            attack[eps] = {s: dict(zip(("mean", "sd"), mean_sd(v)), n=len(v))
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
            notes.append(f"eps={eps_label(eps)} has several runs with seed {', '.join(dup)}")
    plateau = {}
    for eps in columns:
        done = [r for r in by_eps.get(eps, []) if r["status"] == "ok"]
        if not done:
            continue
        learned = [r for r in done if r["escape_epoch"] is not None]
        plateau[eps] = {"n": len(done), "never": len(done) - len(learned),
                        "epochs": {str(r["seed"]): r["escape_epoch"] for r in done},
                        "test_learned": dict(zip(("mean", "sd"), mean_sd([r["test"] for r in learned])),
                                             n=len(learned))}
    attacks, attacks_adv = {}, {}
    for eps in columns:
        for r in by_eps.get(eps, []):
            if r["status"] != "ok":
                continue
            for name, per in r["attacks"].items():
                if not isinstance(per, dict) or name in ("relative",):
                    continue
                for strength, fig in per.items():
                    for figure, into in (("robust_err", attacks), ("adv_err", attacks_adv)):
                        if isinstance(fig, dict) and is_finite(fig.get(figure)):
                            into.setdefault(name, {}).setdefault(eps, {}).setdefault(
                                round(float(strength), 9), []).append(fig[figure])

    def cell_stats(figures):
        return {name: {e: {st: dict(zip(("mean", "sd"), mean_sd(v)), n=len(v)) for st, v in sorted(d.items())}
                       for e, d in per_eps.items()} for name, per_eps in figures.items()}
    attacks, attacks_adv = cell_stats(attacks), cell_stats(attacks_adv)
    # The iterative attacks' step counts (attack_k), for the tables' titles.
    attack_k = sorted({r["attacks"]["k"] for r in runs if r["status"] == "ok" and isinstance(r["attacks"].get("k"), int)
                       and r["attacks"]["k"] > 0})
    relative = {}
    for r in runs:
        for st, rel in ((r["attacks"] or {}).get("relative") or {}).items():
            if is_finite(rel):
                relative.setdefault(round(float(st), 9), []).append(rel)
    relative = {st: float(np.median(v)) for st, v in relative.items()}

    return {"alpha": alpha, "data": data, "paper": paper_table, "columns": columns, "cells": cells, "p_holm": p_holm, "attack": attack,
            "plateau": plateau, "attacks": attacks, "attacks_adv": attacks_adv, "relative": relative, "attack_k": attack_k,
            "other_alpha": other_alpha, "shared": shared, "mixed": mixed, "warnings": notes, "runs": runs}

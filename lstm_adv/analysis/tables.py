"""Table 1 and the grouped (ablation) table as Markdown and CSV, from `lstm_adv.analysis.summary`."""

import csv
import io
import math

import numpy as np

from .runs import PLATEAU_MARGIN, is_finite, setting_label
from .word_tables import is_plain, setting_of, word_attack_markdown
from .summary import SPLITS, compare, corpus_label, eps_label, holm, mean_sd, welch_ci

def _num(x, digits=3):
    return f"{x:.{digits}f}" if is_finite(x) else ""


def _pnum(p):
    return f"{p:.6g}" if is_finite(p) else ""


def _p(p):
    if not is_finite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _paper(paper, eps, split_index):
    """The paper's value beside ours (``paper``: the summary's, empty for a corpus other than IMDB)."""
    if eps not in paper:
        return ""
    if paper[eps] is None:
        return " (paper failed)"
    return f" (paper {paper[eps][split_index]:.2f})".replace("0.", ".", 1)


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
    s, cols, cells, paper = summary, summary["columns"], summary["cells"], summary["paper"]
    if paper:
        out = [f"# Table 1: error at alpha = {s['alpha']:g} (eps = 0 is the plain model)", "",
               "Ours: mean ± sd (ddof=1) over seeds, ok runs only; the paper's single unseeded run in "
               "brackets (its eps=0.1 run printed 0.00, a failed run). Average = mean of dev and test.", ""]
    else:
        out = [f"# Error against eps at alpha = {s['alpha']:g} on data={corpus_label(s['data'])} "
               "(eps = 0 is the plain model)", "",
               "Mean ± sd (ddof=1) over seeds, ok runs only, at the eps the runs have. Average = mean of dev and "
               "test. The paper's Table 1 measured IMDB: its numbers are shown beside IMDB runs only.", ""]
    rows = [[split] + [_ours(cells[e][split], cells[e]) + _paper(paper, e, i) for e in cols]
            for i, split in enumerate(SPLITS)]
    out += _md_table(["eps"] + [eps_label(e) for e in cols], rows)
    if s["shared"]:
        out += ["", "Settings shared by these runs: "
                + ", ".join(f"{k}={v}" for k, v in s["shared"].items()) + "."]
    if s["mixed"]:
        out += ["", "**Warning: these runs differ in** "
                + "; ".join(f"{k} ({', '.join(map(str, v))})" for k, v in s["mixed"].items()) + "."]

    out += ["", "## Does any eps differ from eps = 0? (test error)", "",
            "Two-sided Welch t-test (`scipy.stats.ttest_ind(equal_var=False)`) of each eps against "
            "eps = 0, its Holm-Bonferroni adjustment over all eps tested, and a Mann-Whitney U "
            "test as a non-parametric check; n/a where either group has fewer than 2 ok runs. The "
            "95% interval of the difference (Welch, not adjusted) bounds the effects the runs leave possible.", ""]
    rows, significant = [], []
    for e in (e for e in cols if e != 0.0 and 0.0 in cells):
        base = cells[0.0]["test"]
        t = cells[e]["test"]
        diff = t["mean"] - base["mean"] if cells[e]["n_ok"] and cells[0.0]["n_ok"] else math.nan
        rows.append([eps_label(e), f"{cells[e]['n_ok']} vs {cells[0.0]['n_ok']}",
                     f"{diff:+.3f}" if is_finite(diff) else "", _ci(welch_ci(t["values"], base["values"])),
                     _p(t["p_welch"]),
                     _p(s["p_holm"].get(e)), _p(t["p_mwu"])])
        if is_finite(s["p_holm"].get(e)) and s["p_holm"][e] < 0.05:
            significant.append(f"eps={eps_label(e)} ({'worse' if diff > 0 else 'better'})")
    out += _md_table(["eps", "n ok (eps vs 0)", "test err - eps 0", "95% interval", "Welch p", "Welch p (Holm)",
                      "Mann-Whitney p"], rows)
    n_tested = sum(is_finite(p) for p in s["p_holm"].values())
    if 0.0 not in cells:   # only another corpus's tables lack the column (IMDB's always show the grid)
        out += ["", "No run at eps = 0: nothing to test against."]
    out += ["", (f"Differs from eps = 0 at the 5% level after Holm's correction: {', '.join(significant)}."
                 if significant else
                 f"No eps differs from eps = 0 at the 5% level after Holm's correction "
                 f"({n_tested} eps tested).")]

    out += ["", "## Runs per eps", "",
            "ok: finished with finite errors. Not ok: every other run (nan, interrupted, failed, "
            "running, no metrics = not started or still running, corrupt = unreadable metrics.json).", ""]
    rows = [[eps_label(e), cells[e]["n_ok"], cells[e]["n_failed"], _not_ok(cells[e]),
             _num(np.median(cells[e]["wall_time_s"]) / 60, 1) if cells[e]["wall_time_s"] else ""]
            for e in cols]
    out += _md_table(["eps", "ok", "not ok", "not ok by status", "median wall time (min)"], rows)
    total = sum(sum(c["wall_time_s"]) for c in cells.values())
    if total:
        out += ["", f"Total run time, summed over runs: {total / 3600:.2f} h."]

    if s["plateau"]:
        out += ["", "## Leaving the one-class plateau", "",
                f"A run has left the plateau at the first validation whose training error is below the error "
                f"of always predicting the majority class (two classes: the minority-class rate) minus "
                f"{PLATEAU_MARGIN}; "
                "never = not within its epochs. Test error of the runs that left it: mean ± sd (n).", ""]
        rows = []
        for e, d in s["plateau"].items():
            t = d["test_learned"]
            epochs = ", ".join(f"s{k}: {v if v is not None else 'never'}" for k, v in d["epochs"].items())
            rows.append([eps_label(e), d["n"], d["never"], epochs,
                         (f"{t['mean']:.3f}" + (f" ± {t['sd']:.3f}" if t["n"] > 1 else "") + f" ({t['n']})")
                         if t["n"] else "-"])
        out += _md_table(["eps", "ok runs", "never left", "epoch left (by seed)", "test err, runs that left"],
                         rows)

    steps = "/".join(map(str, s.get("attack_k", []))) or "k"
    robust = ("Robust error: {}", "A review counts as wrong if its clean or its attacked prediction is wrong.")
    for name, title, figures, (head, what) in (
            ("iter_sign_pred", f"iterative sign attack ({steps} steps, L-inf ball) on the predicted label",
             "attacks", robust),
            ("onestep_pred", "one-step attack on the predicted label", "attacks", robust),
            # Its robust error is the predicted-label attack's by construction: where the clean
            # prediction is right, the predicted label is the true one. The leak shows in adv_err.
            ("onestep_true", "one-step attack on the TRUE label (leaks the label; for comparison)", "attacks_adv",
             ("Error on the attacked reviews: {}",
              "The attacked prediction alone (adv_err): its robust error equals the predicted-label attack's "
              "(where the clean prediction is right, the predicted label is the true one), while this error "
              "falls below the clean one where the step gives the label away."))):
        if name not in s.get(figures, {}):
            continue
        d = s[figures][name]
        strengths = sorted({a for per in d.values() for a in per})
        rel = s["relative"]
        out += ["", "## " + head.format(title), "",
                what + " Rows: training eps; columns: attack radius (in brackets: x the median |Wemb| coordinate "
                "of the trained models); mean ± sd over ok runs (n).", ""]
        rows = [[eps_label(e)] + [(f"{per[a]['mean']:.3f}" + (f" ± {per[a]['sd']:.3f}" if per[a]["n"] > 1 else "")
                              + f" ({per[a]['n']})") if a in per else "" for a in strengths]
                for e, per in d.items()]
        out += _md_table(["train eps \\ attack"] + [eps_label(a) + (f" (x{rel[a]:.2g})" if a in rel else "")
                                                     for a in strengths], rows)
        if figures == "attacks":
            out += _masking_note({eps_label(e): [per[a]["mean"] for a in sorted(per)] for e, per in d.items()},
                                 "train eps ")

    if s["attack"] and not s["attacks"]:
        strengths = sorted({a for d in s["attack"].values() for a in d})
        out += ["", "## Robustness: test error under a fast gradient sign attack (true label)", "",
                "Rows: training eps; columns: attack strength; mean ± sd over ok runs (n).", ""]
        rows = []
        for e, d in s["attack"].items():
            rows.append([eps_label(e)] + [(f"{d[a]['mean']:.3f}" + (f" ± {d[a]['sd']:.3f}" if d[a]["n"] > 1 else "")
                                      + f" ({d[a]['n']})") if a in d else "" for a in strengths])
        out += _md_table(["train eps \\ attack"] + [eps_label(a) for a in strengths], rows)

    if s["other_alpha"]:
        out += ["", "## Runs at other alpha values (not part of Table 1)", ""]
        rows = [[f"{a:g}", eps_label(e), _ours(c["dev"], c), _ours(c["test"], c), c["n_ok"], c["n_failed"]]
                for a, d in s["other_alpha"].items() for e, c in d.items()]
        out += _md_table(["alpha", "eps", "dev", "test", "ok", "not ok"], rows)
    return "\n".join(out) + "\n"


CSV_COLUMNS = ("eps", "split", "mean", "sd", "n_ok", "n_failed", "paper", "p_welch", "p_mwu", "paper_note")


def to_csv(summary):
    """``table1.csv``: one row per (eps, split), columns `CSV_COLUMNS`; empty = not available.

    ``split`` is dev, test or average; ``p_welch``/``p_mwu`` test that split's error against
    eps=0; ``paper_note`` is ``failed`` for the paper's eps=0.1 and ``not in paper`` for eps
    outside its grid; ``paper`` and ``paper_note`` are empty for a corpus other than IMDB.
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for e in summary["columns"]:
        c = summary["cells"][e]
        paper = summary["paper"]
        note = ("" if not paper else "not in paper" if e not in paper else "failed" if paper[e] is None else "")
        for split in SPLITS:
            st = c[split]
            w.writerow([eps_label(e), split, _num(st["mean"], 6), _num(st["sd"], 6), c["n_ok"], c["n_failed"],
                        _num(st["paper"], 2), _pnum(st["p_welch"]), _pnum(st["p_mwu"]), note])
    return buf.getvalue()


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
    # eps has its own column (and is part of every group's key): not also in the setting.
    keys = [k for k in keys if k != "eps"]
    groups = {}
    for r in runs:
        label = setting_label(r["config"], keys)
        groups.setdefault((label, r["eps"]), []).append(r)
    out = [f"# Runs grouped by {', '.join(keys)} and eps", "",
           f"Left the plateau: epoch of the first validation with training error below the error of "
           f"always predicting the majority class (two classes: the minority-class rate) minus {PLATEAU_MARGIN}, by seed (never = not within the run's epochs; running = not "
           "finished). Errors: mean ± sd over finished runs (n).", ""]
    # CPU time (cpu_time_s), unlike wall time, leaves out waiting for a shared core or a pause;
    # its column appears once some run recorded it.
    with_cpu = any(is_finite(r.get("cpu_time_s")) for r in runs)
    if with_cpu:
        out[-2] += " CPU time: the training process's (n where fewer runs recorded it)."
    rows = []
    for (label, eps), rs in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        ok = [r for r in rs if r["status"] == "ok"]
        learned = [r for r in ok if r["escape_epoch"] is not None]
        epochs = ", ".join(f"s{r['seed']}: " + (str(r["escape_epoch"]) if r["escape_epoch"] is not None else
                                                ("never" if r["status"] == "ok" else r["status"]))
                           for r in sorted(rs, key=lambda r: str(r["seed"])))

        def stat(values):
            m, sd = mean_sd(values)
            return (f"{m:.3f}" + (f" ± {sd:.3f}" if len(values) > 1 else "") + f" ({len(values)})") if values else "-"

        last = [int(r["history"][-1]["epoch"]) for r in ok if r["history"]]
        wall = [r["wall_time_s"] / 60 for r in ok if is_finite(r["wall_time_s"])]
        cpu = [r["cpu_time_s"] / 60 for r in ok if is_finite(r.get("cpu_time_s"))]
        rows.append([_setting(keys, label), eps_label(eps), f"{len(ok)}/{len(rs)}",
                     len(ok) - len(learned), epochs, stat([r["dev"] for r in ok]), stat([r["test"] for r in ok]),
                     stat([r["test"] for r in learned]), max(last) if last else "-",
                     f"{np.mean(wall):.0f}" if wall else "-"]
                    + ([(f"{np.mean(cpu):.0f}" + (f" ({len(cpu)})" if len(cpu) < len(ok) else "")) if cpu else "-"]
                       if with_cpu else []))
    out += _md_table(["setting", "eps", "finished", "never left", "left the plateau at epoch",
                      "dev err", "test err", "test err (runs that left)", "last epoch", "wall time (min, mean)"]
                     + (["CPU time (min, mean)"] if with_cpu else []), rows)
    out += _against_plain(groups, keys)
    out += _grouped_attacks(groups, keys)
    out += word_attack_markdown(groups, keys, _setting, eps_label, _md_table, _p)
    return "\n".join(out) + "\n"


def plain_baseline(groups, keys=()):
    """For each group that is not plain, the groups of plain runs it is compared with.

    Plain: eps 0 and no method that trains at eps 0 (`word_tables.is_plain`: ASCC and synonym
    augmentation are methods, compared with plain like the eps > 0 groups, never taken as plain).
    The plain group of the same setting label (Table 1's eps sweep); where there is none, the plain
    groups of the same setting (`word_tables.SETTING_KEYS` among ``keys``: the study's truncated
    runs against its truncated plain runs, not the Table 1 model's); where there is none either,
    every plain group (in the VAT comparison: Miyato's and VAT's runs against the plain model and
    against the plain model with normalised embeddings, which tells the normalisation's share from
    the perturbation's).

    Parameters
    ----------
    groups : dict (label tuple, eps) -> runs
    keys : sequence of str
        The configuration keys of the labels, in order.

    Returns
    -------
    dict: group key -> list of plain group keys (sorted by label)
    """
    plain = sorted((key for key in groups if is_plain(keys, *key)), key=lambda k: str(k[0]))
    out = {}
    for key in groups:
        if key in plain:
            continue
        out[key] = ([p for p in plain if p[0] == key[0]]
                    or [p for p in plain if setting_of(keys, p[0]) == setting_of(keys, key[0])] or plain)
    return out


def _against_plain(groups, keys):
    """Test error of each adversarial group against its plain runs: difference and Welch / Mann-Whitney p."""
    rows, welch_p = [], []
    pairs = [(key, base) for key, bases in plain_baseline(groups, keys).items() for base in bases]
    for key, base in sorted(pairs, key=lambda kv: (str(kv[0][0]), kv[0][1], str(kv[1][0]))):
        a = [r["test"] for r in groups[key] if r["status"] == "ok"]
        b = [r["test"] for r in groups[base] if r["status"] == "ok"]
        if not a or not b:
            continue
        p_welch, p_mwu = compare(a, b)
        welch_p.append(p_welch)
        rows.append([_setting(keys, key[0]), eps_label(key[1]), _setting(keys, base[0]), f"{len(a)} vs {len(b)}",
                     f"{np.mean(a) - np.mean(b):+.3f}", _ci(welch_ci(a, b)), _p(p_welch), None, _p(p_mwu)])
    if not rows:
        return []
    # The family for Holm's correction: every row with a Welch p, as one question ("does any
    # setting differ from its plain runs?") is asked of all of them.
    adjusted = holm(welch_p)
    for row, p in zip(rows, adjusted):
        row[7] = _p(p)
    n_tested = sum(is_finite(p) for p in adjusted)
    differ = [f"{row[0]} eps {row[1]} against {row[2]} ({'higher' if row[4].startswith('+') else 'lower'}, "
              f"{row[7]})" for row, p in zip(rows, adjusted) if is_finite(p) and p < 0.05]
    tested = f"{n_tested} row{'' if n_tested == 1 else 's'} tested"
    closing = (f"Differs from its plain runs at the 5% level after Holm's correction ({tested}): "
               + "; ".join(differ) + "." if differ else
               f"No row differs from its plain runs at the 5% level after Holm's correction ({tested}).")
    return ["", "## Test error against the plain runs", "",
            "Each group that is not plain (eps > 0, or ASCC or augmentation at eps 0) against the plain runs "
            "(eps = 0, neither ASCC nor augmentation) of the same setting label; where it has none, those "
            "of the same data setting (maxlen_mode and the like, where grouped by), or else of every "
            "setting that has them. Two-sided Welch t-test and Mann-Whitney U test on the "
            "test error, and the 95% interval of the difference (Welch, not adjusted); Welch p (Holm): "
            "adjusted over every row with a Welch p; n/a with fewer than 2 runs on a side.", ""] + \
        _md_table(["setting", "eps", "plain runs", "n (vs plain)", "test err - plain", "95% interval", "Welch p",
                   "Welch p (Holm)", "Mann-Whitney p"], rows) + ["", closing]


MASKING_DROP = 0.05


def _masking_note(rows, prefix=""):
    """A line naming the rows whose mean robust error falls as the attack radius grows.

    ``rows``: row name -> the robust errors in the order of increasing radius. The larger ball holds
    every perturbation of the smaller one, so a robust error that falls (by more than
    `MASKING_DROP`) from a smaller radius to a larger one says the attack missed adversarial
    examples that exist: the sign of gradient masking (Athalye, Carlini & Wagner 2018).
    """
    flagged = [name for name, means in rows.items()
               if any(later < max(means[:i + 1]) - MASKING_DROP for i, later in enumerate(means[1:]))]
    if not flagged:
        return []
    return ["", f"**Robust error falls as the radius grows** (by more than {MASKING_DROP}) for "
            f"{prefix}{', '.join(flagged)}: a larger radius allows every perturbation a smaller one does, so the "
            "attack misses adversarial examples there (gradient masking)."]


def _ci(interval):
    low, high = interval
    return f"[{low:+.3f}, {high:+.3f}]" if is_finite(low) and is_finite(high) else "n/a"


def _setting(keys, label):
    return ", ".join(f"{k}={v}" for k, v in zip(keys, label))


GROUPED_ATTACKS = (("iter_sign_pred", "sign"), ("iter_l2_pred", "L2"))


def _grouped_attacks(groups, keys):
    """The grouped table's robust errors under the predicted-label iterative attacks, if runs have them."""
    cells, units = {}, set()
    for (label, eps), rs in groups.items():
        for r in rs:
            a = r["attacks"] if r["status"] == "ok" else {}
            for name, short in GROUPED_ATTACKS:
                for st, fig in (a.get(name) or {}).items():
                    if isinstance(fig, dict) and is_finite(fig.get("robust_err")):
                        units.add(a.get("strength_units", "absolute"))
                        cells.setdefault((label, eps), {}).setdefault((short, round(float(st), 9)), []).append(
                            fig["robust_err"])
    if not cells:
        return []
    cols = sorted({c for per in cells.values() for c in per}, key=lambda c: (c[0] != "sign", c[1]))
    unit = units.pop() if len(units) == 1 else "mixed: some runs absolute, some relative"
    out = ["", "## Robust test error under the predicted-label iterative attacks", "",
           "A review counts as wrong if its clean or any attacked prediction is wrong (no label leaking: the "
           f"attacks raise the loss of the model's own prediction). Columns: attack norm and strength ({unit}); "
           "mean ± sd over finished runs (n).", ""]
    rows = []
    for (label, eps), per in sorted(cells.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        row = [_setting(keys, label), eps_label(eps)]
        for c in cols:
            v = per.get(c, [])
            m, sd = mean_sd(v)
            row.append((f"{m:.3f}" + (f" ± {sd:.3f}" if len(v) > 1 else "") + f" ({len(v)})") if v else "")
        rows.append(row)
    trend = {f"{_setting(keys, label)}, eps {eps_label(eps)} ({short})":
             [mean_sd(per[c])[0] for c in cols if c[0] == short and c in per]
             for (label, eps), per in sorted(cells.items(), key=lambda kv: (str(kv[0][0]), kv[0][1]))
             for short in sorted({c[0] for c in per})}
    return out + _md_table(["setting", "eps"] + [f"{short} {eps_label(st)}" for short, st in cols], rows) + \
        _masking_note(trend)

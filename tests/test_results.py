"""Table 1 generator (lstm_adv.analysis: results, summary, tables, runs) on hand-made run directories."""

import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from lstm_adv.analysis import results, runs, summary, tables
from lstm_adv.common.errors import UserError

REPO = Path(__file__).resolve().parents[1]

# Test errors per eps (one value per seed); dev errors are derived from them.
TEST_ERR = {
    0.0: [0.190, 0.200, 0.185, 0.210, 0.195],
    0.5: [0.180, 0.205, 0.190, 0.200, 0.188],
    15.0: [0.300, 0.310, 0.305, 0.320, 0.298],   # clearly worse
}


def make_run(root, name, eps, seed, status="ok", dev=0.15, test=0.2, alpha=0.5, metrics=True,
             attack=None, raw_metrics=None, **config):
    d = Path(root) / name
    d.mkdir(parents=True)
    cfg = {"eps": eps, "alpha": alpha, "seed": seed, "adv": -1, "adv_norm": "sign", "encoder": "lstm",
           "data": "imdb", **config}
    (d / "config.json").write_text(json.dumps({"config": cfg, "versions": {}, "pytensor": {"mode": "NUMBA"}}))
    if raw_metrics is not None:
        (d / "metrics.json").write_text(raw_metrics)
    elif metrics:
        m = {"status": status, "train_err": 0.05, "valid_err": dev, "test_err": test, "best_update": 10,
             "n_updates": 20, "n_epochs": 2, "wall_time_s": 60.0, "ms_per_update": 3.0}
        if status != "ok":
            m.update(valid_err=None, test_err=None)
        if attack:
            m["attack"] = attack
        (d / "metrics.json").write_text(json.dumps(m))
    return d


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "runs"
    for eps, errs in TEST_ERR.items():
        for seed, t in enumerate(errs):
            make_run(root, f"eps={eps}/seed={seed}", eps, seed, dev=round(t - 0.05, 3), test=t,
                     attack={"0.1": t + 0.1, "0.5": t + 0.3 - eps / 100})
    # eps=0.2: two good seeds plus every kind of run that must not give numbers.
    make_run(root, "eps=0.2/seed=0", 0.2, 0, dev=0.14, test=0.21)
    make_run(root, "eps=0.2/seed=1", 0.2, 1, dev=0.16, test=0.23)
    make_run(root, "eps=0.2/seed=2", 0.2, 2, status="nan")
    make_run(root, "eps=0.2/seed=3", 0.2, 3, status="interrupted")
    make_run(root, "eps=0.2/seed=4", 0.2, 4, metrics=False)
    # eps=0.3: nothing but failures, with error values that must never be shown.
    make_run(root, "eps=0.3/seed=0", 0.3, 0, status="nan")
    make_run(root, "eps=0.3/seed=1", 0.3, 1, raw_metrics="{not json")
    make_run(root, "eps=0.3/seed=2", 0.3, 2, raw_metrics=json.dumps(
        {"status": "ok", "valid_err": float("nan"), "test_err": 0.777}))
    # an eps outside the paper's grid, and a run at another alpha
    make_run(root, "eps=0.05/seed=0", 0.05, 0, dev=0.15, test=0.2)
    make_run(root, "alpha=0.25", 0.5, 0, alpha=0.25, dev=0.111, test=0.666)
    return root


def md_table(md):
    """The first Markdown table in ``md`` as a list of rows of cells."""
    lines = [l for l in md.split("\n## ")[0].splitlines() if l.startswith("|") and not l.startswith("|---")]
    return [[c.strip() for c in l.strip("|").split("|")] for l in lines]


def test_layout_rows_columns_and_paper_values(sweep):
    s = summary.summarise(sweep)
    expected = sorted(set(summary.PAPER) | {0.05})
    assert s["columns"] == expected
    table = md_table(tables.to_markdown(s))
    header, rows = table[0], table[1:]
    assert header == ["eps", "0.0", "0.05", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9",
                      "1.0", "15.0"]
    assert [r[0] for r in rows] == ["dev", "test", "average"]
    cell = dict(zip(header, rows[1]))
    t0 = np.array(TEST_ERR[0.0])
    assert cell["0.0"] == f"{t0.mean():.3f} ± {t0.std(ddof=1):.3f} (paper .19)"
    assert cell["15.0"].endswith("(paper .17)")
    assert cell["0.1"] == "no runs (paper failed)"          # the paper's eps=0.1 run printed 0.00
    assert cell["0.05"] == "0.200 (n=1)"                     # not in the paper's grid: no paper value
    assert cell["0.4"] == "no runs (paper .19)"
    assert dict(zip(header, rows[0]))["0.3"] == "1 corrupt, 2 nan (paper .12)"


def test_means_and_sd_match_numpy(sweep):
    s = summary.summarise(sweep)
    for eps, errs in TEST_ERR.items():
        test = np.array(errs)
        dev = np.round(test - 0.05, 3)
        c = s["cells"][eps]
        assert c["n_ok"] == len(errs) and c["n_failed"] == 0
        assert c["test"]["mean"] == pytest.approx(test.mean(), abs=1e-12)
        assert c["test"]["sd"] == pytest.approx(test.std(ddof=1), abs=1e-12)
        assert c["dev"]["mean"] == pytest.approx(dev.mean(), abs=1e-12)
        avg = (dev + test) / 2
        assert c["average"]["mean"] == pytest.approx(avg.mean(), abs=1e-12)
        assert c["average"]["sd"] == pytest.approx(avg.std(ddof=1), abs=1e-12)
    c = s["cells"][0.05]
    assert c["n_ok"] == 1 and math.isnan(c["test"]["sd"])


def test_welch_and_mann_whitney_equal_scipy(sweep):
    s = summary.summarise(sweep)
    for eps in (0.5, 15.0):
        a, b = TEST_ERR[eps], TEST_ERR[0.0]
        t = s["cells"][eps]["test"]
        assert t["p_welch"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)
        assert t["p_mwu"] == pytest.approx(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue, rel=1e-12)
    assert s["cells"][15.0]["test"]["p_welch"] < 1e-4           # clearly different group
    assert s["cells"][0.5]["test"]["p_welch"] > 0.05
    assert math.isnan(s["cells"][0.0]["test"]["p_welch"])         # eps=0 is the reference
    assert math.isnan(s["cells"][0.05]["test"]["p_welch"])        # one ok run: n/a
    md = tables.to_markdown(s)
    sig = md.split("## Does any eps differ")[1].split("\n## ")[0]
    rows = {r[0]: r for r in md_table("|" + sig.split("\n|", 1)[1])[1:]}
    assert rows["0.05"][3:] == ["n/a", "n/a", "n/a", "n/a"]
    assert rows["15.0"][4] == "<0.001"
    low, high = summary.welch_ci(TEST_ERR[15.0], TEST_ERR[0.0])
    assert rows["15.0"][3] == f"[{low:+.3f}, {high:+.3f}]" and 0 < low < high
    assert "eps=15.0 (worse)" in sig


def test_identical_and_degenerate_groups():
    for same in ([0.2, 0.2, 0.2], [0.25, 0.25]):              # no spread: t = 0/0 (or 0 by rounding)
        p_welch, p_mwu = summary.compare(same, same)
        assert (math.isnan(p_welch) or p_welch == pytest.approx(1.0)) and p_mwu == pytest.approx(1.0)
    assert math.isnan(summary.compare([0.25, 0.25], [0.25, 0.25])[0])
    p_welch, p_mwu = summary.compare([0.1, 0.12, 0.11], [0.1, 0.12, 0.11])
    assert p_welch == pytest.approx(1.0) and p_mwu == pytest.approx(1.0)
    assert all(math.isnan(p) for p in summary.compare([0.1], [0.2, 0.3]))
    assert tables._p(math.nan) == "n/a"


def test_welch_interval_is_the_textbook_one():
    a, b = [0.18, 0.17, 0.20, 0.19, 0.175], [0.171, 0.174, 0.185]
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))   # Welch-Satterthwaite
    half = stats.t.ppf(0.975, df) * np.sqrt(va + vb)
    d = np.mean(a) - np.mean(b)
    assert summary.welch_ci(a, b) == pytest.approx((d - half, d + half), rel=1e-9)
    low, high = summary.welch_ci(b, a)                      # the difference's sign follows the order
    assert (low, high) == pytest.approx((-d - half, -d + half), rel=1e-9)
    assert summary.welch_ci(a, b, 0.5)[1] - summary.welch_ci(a, b, 0.5)[0] < 2 * half
    assert all(math.isnan(v) for v in summary.welch_ci([0.1], a))
    assert all(math.isnan(v) for v in summary.welch_ci([0.25, 0.25], [0.25, 0.25]))


def test_robust_error_that_falls_with_the_radius_is_flagged():
    # "b": the Table 1 pattern (0.9 at radius 0.1, 0.15 at 0.5); "c" dips by 0.03 only.
    note = tables._masking_note({"a": [0.3, 0.9, 1.0], "b": [0.3, 0.9, 0.15], "c": [0.5, 0.6, 0.57]})
    assert "for b:" in note[-1] and "c" not in note[-1].split(":")[0] and "gradient masking" in note[-1]
    assert tables._masking_note({"a": [0.3, 0.9, 1.0]}) == []
    # A fall after a rise counts from the highest value before it, not only the neighbour.
    assert "for d:" in tables._masking_note({"d": [0.9, 0.88, 0.8]})[-1]


def test_grouped_attack_table_flags_a_robust_error_that_falls_with_the_radius():
    def run(sign, l2):
        return {"status": "ok", "attacks": {"iter_sign_pred": {str(r): {"robust_err": v} for r, v in zip((0.1, 1), sign)},
                                            "iter_l2_pred": {str(r): {"robust_err": v} for r, v in zip((0.1, 1), l2)}}}
    groups = {(("l2",), 1.0): [run([0.4, 0.9], [0.3, 0.2]), run([0.5, 0.9], [0.3, 0.1])],   # L2 falls 0.3 -> 0.15
              (("sign",), 0.5): [run([0.4, 0.42], [0.3, 0.5])]}
    out = "\n".join(tables._grouped_attacks(groups, ["adv_norm"]))
    # Columns: sign 0.1, sign 1, L2 0.1, L2 1.
    assert "| adv_norm=l2 | 1.0 | 0.450 ± 0.071 (2) | 0.900 ± 0.000 (2) | 0.300 ± 0.000 (2) | 0.150 ± 0.071 (2) |" in out
    assert "falls as the radius grows** (by more than 0.05) for adv_norm=l2, eps 1.0 (L2):" in out


def test_holm():
    adj = summary.holm([0.01, math.nan, 0.04, 0.03])
    assert adj[0] == pytest.approx(0.03) and math.isnan(adj[1])
    assert adj[2] == pytest.approx(0.06) and adj[3] == pytest.approx(0.06)


def test_failed_runs_are_counts_never_numbers(sweep):
    s = summary.summarise(sweep)
    c = s["cells"][0.2]
    assert (c["n_ok"], c["n_failed"]) == (2, 3)
    assert c["not_ok"] == {"nan": 1, "interrupted": 1, "no metrics": 1}
    assert c["test"]["mean"] == pytest.approx(0.22)              # from the two ok runs only
    c = s["cells"][0.3]
    assert (c["n_ok"], c["n_failed"]) == (0, 3)
    assert c["not_ok"] == {"nan": 2, "corrupt": 1}               # an "ok" run with a NaN error is nan
    assert math.isnan(c["test"]["mean"])
    md, text = tables.to_markdown(s), tables.to_csv(s)
    assert "0.777" not in md and "0.777" not in text
    assert any("unreadable, counted as failed" in w for w in s["warnings"])
    runs_rows = {r[0]: r for r in md_table("|" + md.split("## Runs per eps")[1].split("\n|", 1)[1])[1:]}
    assert runs_rows["0.2"][1:4] == ["2", "3", "1 interrupted, 1 nan, 1 no metrics"]


def test_other_alpha_kept_out_of_table1(sweep):
    s = summary.summarise(sweep)
    assert s["cells"][0.5]["n_ok"] == len(TEST_ERR[0.5])
    assert s["other_alpha"][0.25][0.5]["n_ok"] == 1
    md = tables.to_markdown(s)
    assert "0.666" not in md.split("## Runs at other alpha")[0]
    assert "| 0.25 | 0.5 | 0.111 (n=1) | 0.666 (n=1) | 1 | 0 |" in md


def test_attack_table(sweep):
    s = summary.summarise(sweep)
    a = s["attack"][15.0][0.5]
    assert a["n"] == 5 and a["mean"] == pytest.approx(np.mean(TEST_ERR[15.0]) + 0.3 - 0.15)
    assert 0.2 not in s["attack"] or s["attack"][0.2][0.1]["n"] == 0
    assert "## Robustness" in tables.to_markdown(s)


def test_csv_content(sweep):
    s = summary.summarise(sweep)
    rows = list(csv.DictReader(io.StringIO(tables.to_csv(s))))
    assert tuple(rows[0]) == tables.CSV_COLUMNS
    assert len(rows) == 3 * len(s["columns"])
    by = {(r["eps"], r["split"]): r for r in rows}
    r = by[("0.0", "test")]
    assert float(r["mean"]) == pytest.approx(np.mean(TEST_ERR[0.0]), abs=1e-6)
    assert float(r["sd"]) == pytest.approx(np.std(TEST_ERR[0.0], ddof=1), abs=1e-6)
    assert (r["n_ok"], r["n_failed"], r["paper"], r["p_welch"], r["p_mwu"]) == ("5", "0", "0.19", "", "")
    r = by[("15.0", "test")]
    p = stats.ttest_ind(TEST_ERR[15.0], TEST_ERR[0.0], equal_var=False).pvalue
    assert float(r["p_welch"]) == pytest.approx(p, rel=1e-5, abs=1e-9)
    assert by[("0.3", "dev")]["mean"] == "" and by[("0.3", "dev")]["n_failed"] == "3"
    assert by[("0.1", "average")]["paper_note"] == "failed"
    assert by[("0.05", "test")]["paper_note"] == "not in paper"


def test_write_table_files(sweep, tmp_path):
    files = results.write_table(summary.summarise(sweep), tmp_path / "out")
    assert [f.name for f in files] == ["table1.md", "table1.csv", "table1.png"]
    assert (tmp_path / "out" / "table1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "out" / "table1.md").read_text().startswith("# Table 1")


def test_cli_writes_files_and_prints_table(sweep, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "lstm_adv.results", str(sweep), f"out={out}"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "| dev |" in proc.stdout and "Traceback" not in proc.stderr
    assert "warning:" in proc.stderr                           # the corrupt metrics.json
    assert {p.name for p in out.iterdir()} == {"table1.md", "table1.csv", "table1.png", "runs.csv"}
    proc = subprocess.run([sys.executable, "-m", "lstm_adv.results", str(sweep), "plot=0"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and (sweep / "table1.csv").exists() and not (sweep / "table1.png").exists()


def other_corpus(root, data="toy", eps_errs=((0.0, (0.30, 0.32)), (0.5, (0.25, 0.27)))):
    for eps, errs in eps_errs:
        for seed, t in enumerate(errs, 1):
            d = make_run(root, f"eps={eps}/seed={seed}", eps, seed, dev=t - 0.01, test=t, data=data)
            _history(d, [0.66, 0.5, t])   # 3 classes: a plateau above the IMDB curves' 0.6 ceiling
    return root


@pytest.mark.parametrize("data, title", [("toy", "data=toy"), ("/somewhere/reviews.csv", "data=reviews.csv")])
def test_another_corpus_shows_its_eps_and_not_the_paper(data, title, tmp_path):
    s = summary.summarise(other_corpus(tmp_path / "runs", data))
    assert s["columns"] == [0.0, 0.5] and s["paper"] == {} and s["data"] == data
    md = tables.to_markdown(s)
    assert md.splitlines()[0] == f"# Error against eps at alpha = 0.5 on {title} (eps = 0 is the plain model)"
    table = md_table(md)
    assert table[0] == ["eps", "0.0", "0.5"]
    assert dict(zip(table[0], table[2]))["0.5"] == "0.260 ± 0.014"   # no "(paper .18)"
    assert "(paper" not in md
    tests = md.split("## Does any eps differ")[1].split("\n## ")[0]
    assert [r[0] for r in md_table("\n" + tests)[1:]] == ["0.5"]      # one test row, not the grid's 11
    rows = list(csv.DictReader(io.StringIO(tables.to_csv(s))))
    assert {r["eps"] for r in rows} == {"0.0", "0.5"} and {(r["paper"], r["paper_note"]) for r in rows} == {("", "")}
    files = results.write_table(s, tmp_path / "out")   # the figures, without the paper's points
    assert [f.name for f in files] == ["table1.md", "table1.csv", "table1.png", "learning_curves.png"]


def test_imdb_runs_keep_the_paper_grid_and_a_mixed_table_drops_it(tmp_path):
    root = other_corpus(tmp_path / "imdb", "imdb")
    s = summary.summarise(root)
    assert s["columns"] == sorted(summary.PAPER) and s["paper"] == summary.PAPER
    assert "(paper .18)" in tables.to_markdown(s)
    make_run(root, "toy/eps=0.5/seed=1", 0.5, 1, data="toy")
    s = summary.summarise(root)
    assert s["data"] == "mixed" and s["columns"] == [0.0, 0.5] and "data" in s["mixed"]


def test_a_shared_eps_0_baseline_does_not_make_the_step_keys_differ(tmp_path):
    """The leak-free table shares Table 1's eps=0 runs (adv_label=true, read by no run without a
    step): adv_label is then shared, not "mixed"; a real difference between stepped runs still is."""
    for seed in (1, 2):
        make_run(tmp_path, f"eps=0.0/seed={seed}", 0.0, seed, adv_label="true")
        make_run(tmp_path, f"eps=0.5/seed={seed}", 0.5, seed, adv_label="predicted")
    s = summary.summarise(tmp_path)
    assert s["mixed"] == {} and s["shared"]["adv_label"] == "predicted"
    assert "differ in" not in tables.to_markdown(s)
    make_run(tmp_path, "eps=0.5/seed=3", 0.5, 3, adv_label="true")
    assert sorted(summary.summarise(tmp_path)["mixed"]["adv_label"]) == ["predicted", "true"]


def test_another_corpus_without_eps_0_has_nothing_to_test_against(tmp_path):
    s = summary.summarise(other_corpus(tmp_path / "runs", eps_errs=((0.5, (0.2, 0.3)), (1.0, (0.3, 0.4)))))
    md = tables.to_markdown(s)
    assert s["columns"] == [0.5, 1.0] and "No run at eps = 0: nothing to test against." in md


def test_plain_baseline_of_each_group():
    a, b, c = ("a",), ("b",), ("c",)
    groups = {(a, 0.0): [], (a, 0.5): [], (b, 1.0): [], (c, 0.0): [], (c, 2.0): []}
    # A setting with plain runs is compared with its own; one without, with every setting's.
    assert tables.plain_baseline(groups) == {(a, 0.5): [(a, 0.0)], (b, 1.0): [(a, 0.0), (c, 0.0)],
                                             (c, 2.0): [(c, 0.0)]}
    del groups[(c, 0.0)]
    assert tables.plain_baseline(groups) == {(a, 0.5): [(a, 0.0)], (b, 1.0): [(a, 0.0)], (c, 2.0): [(a, 0.0)]}
    del groups[(a, 0.0)]
    assert tables.plain_baseline(groups) == {(a, 0.5): [], (b, 1.0): [], (c, 2.0): []}


def test_pick_selects_on_validation_error(tmp_path):
    make_run(tmp_path, "a", 1.0, 1, dev=0.20)
    make_run(tmp_path, "b", 5.0, 1, dev=0.10, test=0.4)   # selection ignores the test error
    make_run(tmp_path, "c", 2.0, 1, dev=0.10)
    make_run(tmp_path, "d", 0.5, 1, status="nan")          # not finished: never picked
    found = runs.find_runs([tmp_path])[0]
    assert runs.pick(found, "eps") == 2.0                    # tie on dev: the smaller eps
    proc = subprocess.run([sys.executable, "-m", "lstm_adv.results", str(tmp_path / "a"), str(tmp_path / "b"),
                           "pick=eps"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "5.0\n", proc.stderr
    assert not list(tmp_path.glob("*.md"))                   # pick writes nothing
    for args, message in (([tmp_path, "pick=epss"], "did you mean eps"),
                          ([tmp_path / "d", "pick=eps"], "none of the 1 run(s) has finished")):
        proc = subprocess.run([sys.executable, "-m", "lstm_adv.results", *map(str, args)], cwd=REPO,
                              capture_output=True, text=True)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("setup", ["missing", "empty", "all_corrupt", "bad_option"])
def test_cli_bad_input_exits_2(tmp_path, setup):
    args = ["/nonexistent/runs"]
    if setup == "empty":
        args = [str(tmp_path)]
    elif setup == "all_corrupt":
        make_run(tmp_path, "r", 0.0, 1, raw_metrics="[1, 2")
        args = [str(tmp_path)]
    elif setup == "bad_option":
        make_run(tmp_path, "r", 0.0, 1)
        args = [str(tmp_path), "colour=red"]
    proc = subprocess.run([sys.executable, "-m", "lstm_adv.results", *args], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_summarise_raises_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        summary.summarise(tmp_path / "nope")
    with pytest.raises(UserError, match="no runs"):
        summary.summarise(tmp_path)


def test_identical_groups_through_the_table(tmp_path):
    for eps in (0.0, 0.5):
        for seed in range(3):
            make_run(tmp_path, f"e{eps}s{seed}", eps, seed, dev=0.125, test=0.25)
    s = summary.summarise(tmp_path)
    t = s["cells"][0.5]["test"]
    assert math.isnan(t["p_welch"]) and t["p_mwu"] == pytest.approx(1.0)
    md = tables.to_markdown(s)
    assert "| 0.5 | 3 vs 3 | +0.000 | n/a | n/a | n/a | 1.000 |" in md
    assert "No eps differs from eps = 0" in md
    assert "0.250 ± 0.000 (paper .18)" in md


def _history(d, train_errs, first_epoch=2, step=3):
    lines = ["update,epoch,train_cost,train_err,valid_err,test_err"]
    for i, t in enumerate(train_errs):
        lines.append(f"{(i + 1) * 370},{first_epoch + i * step},0.6,{t},{min(t + 0.05, 0.5)},")
    (Path(d) / "history.csv").write_text("\n".join(lines) + "\n")


def test_escape_epoch_rule():
    h = [{"epoch": 2, "train_err": 0.42}, {"epoch": 5, "train_err": 0.40}, {"epoch": 8, "train_err": 0.36}]
    # Minority-class rate 0.42 (58% positive): left at the first train error below 0.37.
    assert runs.escape_epoch(h, 0.58) == (8, pytest.approx(0.42))
    assert runs.escape_epoch(h[:2], 0.58) == (None, pytest.approx(0.42))
    # Without the class balance: the largest training error seen stands for the plateau.
    assert runs.escape_epoch(h, None) == (8, 0.42)
    assert runs.escape_epoch([], 0.5) == (None, None)


def test_plateau_ablation_and_attack_tables(tmp_path):
    root = tmp_path / "runs"
    for seed, (errs, test) in enumerate([([0.42, 0.42, 0.2], 0.18), ([0.42] * 3, 0.49), ([0.1, 0.05], 0.17)]):
        eps = 0.0 if seed == 2 else 0.5
        d = make_run(root, f"r{seed}", eps, seed, test=test, wemb_init="word2vec" if seed else "random")
        _history(d, errs)
        m = json.loads((d / "metrics.json").read_text())
        m["attacks"] = {"n": 10, "k": 10, "relative": {"0.01": 2.0},
                        "iter_sign_pred": {"0.01": {"adv_err": 0.5, "robust_err": 0.6 + seed / 10}},
                        "iter_l2_pred": {"0.01": {"adv_err": 0.2, "robust_err": 0.3}},
                        "onestep_true": {"0.01": {"adv_err": 0.1, "robust_err": 0.2}}}
        m["wall_time_s"] = 600.0 * (seed + 1)
        if seed == 2:
            m["cpu_time_s"] = 300.0    # the runs of the other seeds predate the field
        (d / "metrics.json").write_text(json.dumps(m))
    s = summary.summarise(root)
    assert s["plateau"][0.5]["never"] == 1 and s["plateau"][0.5]["epochs"] == {"0": 8, "1": None}
    assert s["plateau"][0.5]["test_learned"]["n"] == 1 and s["plateau"][0.5]["test_learned"]["mean"] == 0.18
    assert s["attacks"]["iter_sign_pred"][0.5][0.01]["mean"] == pytest.approx(0.65)
    assert s["relative"][0.01] == 2.0
    md = tables.to_markdown(s)
    assert "## Leaving the one-class plateau" in md and "s1: never" in md
    assert "iterative sign attack (10 steps, L-inf ball)" in md and "0.01 (x2)" in md
    # The true-label attack by its adv_err (0.1): its robust error (0.2) is the predicted-label attack's.
    assert "## Robust error: one-step attack on the TRUE" not in md
    leak = md.split("## Error on the attacked reviews: one-step attack on the TRUE label")[1].split("\n## ")[0]
    assert "| 0.5 | 0.100 ± 0.000 (2) |" in leak and "| 0.0 | 0.100 (1) |" in leak and "0.200" not in leak
    table = tables.ablation_markdown(s["runs"], ["wemb_init"])
    assert "| wemb_init=random | 0.5 | 1/1 | 0 | s0: 8 |" in table
    assert "| wemb_init=word2vec | 0.5 | 1/1 | 1 | s1: never |" in table
    # Wall and CPU time in minutes (600 s x (seed + 1); 300 s), and the iterative attacks per group: sign then L2.
    rows = {}
    for line in table.split("## Test error against")[0].split("\n"):
        rows[" | ".join(line.split(" | ")[:2])] = line
    assert rows["| wemb_init=word2vec | 0.0"].endswith("| 30 | 5 |")
    assert rows["| wemb_init=word2vec | 0.5"].endswith("| 20 | - |")
    # Runs without the field (all made before it): no CPU column at all.
    for r in s["runs"]:
        r["cpu_time_s"] = None
    assert "CPU time" not in tables.ablation_markdown(s["runs"], ["wemb_init"])
    # Against the plain runs: word2vec's own eps=0 runs, and for random (no eps=0 of its own) every plain setting.
    plain = table.split("## Test error against the plain runs")[1].split("## Robust")[0]
    assert "| wemb_init=word2vec | 0.5 | wemb_init=word2vec | 1 vs 1 | +0.320 | n/a | n/a |" in plain
    assert "| wemb_init=random | 0.5 | wemb_init=word2vec | 1 vs 1 | +0.010 | n/a | n/a |" in plain
    attack_rows = table.split("## Robust test error under the predicted-label iterative attacks")[1]
    assert "| setting | eps | sign 0.01 | L2 0.01 |" in attack_rows and "(absolute)" in attack_rows
    assert "| wemb_init=word2vec | 0.5 | 0.700 (1) | 0.300 (1) |" in attack_rows
    files = results.write_table(s, tmp_path / "out")
    names = {f.name for f in files}
    assert {"learning_curves.png", "attacks.png"} <= names
    for f in files:
        assert f.stat().st_size > 1000 or f.suffix != ".png"


def test_grouped_table_marks_keys_vat_does_not_read(tmp_path):
    # A VAT run ignores adv_norm and alpha: its row says "-", not the paper's sign step, and it is
    # compared with every plain setting (it has no eps=0 runs of its own).
    root = tmp_path / "runs"
    make_run(root, "plain", 0.0, 1, test=0.20, emb_norm=0, vat=0)
    make_run(root, "paper", 1.0, 1, test=0.22, emb_norm=0, vat=0)
    make_run(root, "vat", 3.0, 1, test=0.15, emb_norm=1, vat=1, adv_norm="sign")
    s = summary.summarise(root)
    table = tables.ablation_markdown(s["runs"], ["adv_norm", "emb_norm", "vat"])
    assert "| adv_norm=-, emb_norm=1, vat=1 | 3.0 | 1/1 |" in table
    assert "| adv_norm=sign, emb_norm=0, vat=0 | 1.0 | 1/1 |" in table
    assert "adv_norm=sign, emb_norm=1, vat=1" not in table
    plain = table.split("## Test error against the plain runs")[1].split("## Robust")[0]
    assert "| adv_norm=-, emb_norm=1, vat=1 | 3.0 | adv_norm=sign, emb_norm=0, vat=0 | 1 vs 1 | -0.050 |" in plain
    assert "| adv_norm=sign, emb_norm=0, vat=0 | 1.0 | adv_norm=sign, emb_norm=0, vat=0 | 1 vs 1 | +0.020 |" in plain


def test_grouped_table_adjusts_welch_p_over_its_rows(tmp_path):
    # Two adversarial settings against one plain setting, 3 seeds each: the Holm column multiplies
    # the smaller Welch p by 2 and keeps the larger (Holm's step-down for 2 tests), and the closing
    # line names the row that stays below 0.05 after it.
    from scipy import stats

    root = tmp_path / "runs"
    errs = {("plain", 0.0): [0.200, 0.210, 0.205], ("far", 1.0): [0.180, 0.190, 0.185],
            ("near", 0.5): [0.195, 0.190, 0.215]}
    for (name, eps), tests in errs.items():
        for seed, t in enumerate(tests):
            make_run(root, f"{name}/s{seed}", eps, seed, test=t, wemb_init=name if eps else "far")
    table = tables.ablation_markdown(summary.summarise(root)["runs"], ["wemb_init"])
    rows = {line.split(" | ")[1]: line.split(" | ") for line in
            table.split("## Test error against the plain runs")[1].splitlines() if line.startswith("| wemb_init=")}
    p = {eps: stats.ttest_ind(errs[key], errs[("plain", 0.0)], equal_var=False).pvalue
         for key, eps in [(("far", 1.0), "1.0"), (("near", 0.5), "0.5")]}
    assert p["1.0"] < p["0.5"] and 2 * p["1.0"] < 0.05 < p["0.5"]
    assert float(rows["1.0"][6]) == pytest.approx(p["1.0"], abs=5e-4)
    assert float(rows["1.0"][7]) == pytest.approx(2 * p["1.0"], abs=5e-4)
    assert float(rows["0.5"][7]) == pytest.approx(max(p["0.5"], 2 * p["1.0"]), abs=5e-4)
    assert ("after Holm's correction (2 rows tested): wemb_init=far eps 1.0 against wemb_init=far (lower, "
            in table)
    assert "wemb_init=near eps 0.5 against" not in table


def test_plain_baseline_never_takes_a_method_at_eps_0_as_plain():
    # The word-substitution study's groups, by ascc, synonym_aug, adv_norm, maxlen_mode: ASCC and
    # augmentation train at eps 0 but are methods; Miyato's (truncate) is compared with the truncated
    # plain runs, not with ASCC's or the Table 1 (filter) model's; Table 1's eps 0.5 with its own eps 0.
    keys = ["ascc", "synonym_aug", "adv_norm", "maxlen_mode"]
    plain, ascc, aug = (0, 0.0, "-", "truncate"), (1, 0.0, "-", "truncate"), (0, 0.5, "-", "truncate")
    miyato, table1 = (0, 0.0, "l2", "truncate"), (0, 0.0, "-", "filter")
    groups = {(plain, 0.0): [], (ascc, 0.0): [], (aug, 0.0): [], (miyato, 3.0): [], (table1, 0.0): [],
              (table1, 0.5): []}
    assert tables.plain_baseline(groups, keys) == {(ascc, 0.0): [(plain, 0.0)], (aug, 0.0): [(plain, 0.0)],
                                                   (miyato, 3.0): [(plain, 0.0)], (table1, 0.5): [(table1, 0.0)]}


COMMITTED_TABLES = sorted((REPO / "experiments" / "results").glob("*/table1.md")) + sorted(
    (REPO / "experiments" / "results").glob("*/ablation.md"))


def _grouped_by(header):
    """``# Runs grouped by a, b and c`` (ablation.md's first line) -> ["a", "b", "c"]."""
    keys = header.removeprefix("# Runs grouped by ").replace(" and ", ", ")
    return keys.split(", ")


@pytest.mark.parametrize("table", COMMITTED_TABLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_tables_are_what_the_code_writes_from_the_committed_runs(table):
    """A committed table1.md or ablation.md is the output of ``python -m lstm_adv.results`` on its folder
    now: not one written by a sweep's older worktree, nor one that a change to the table code would
    silently rewrite (regenerate: the command in the study's README)."""
    written = table.read_text()
    s = summary.summarise([table.parent])
    if table.name == "ablation.md":
        by = _grouped_by(written.splitlines()[0])
        regenerated = tables.ablation_markdown(s["runs"], by)
        command = f"python -m lstm_adv.results {table.parent.relative_to(REPO)} by={','.join(by)}"
    else:
        regenerated = tables.to_markdown(s)
        command = f"python -m lstm_adv.results {table.parent.relative_to(REPO)}"
    assert regenerated == written, f"{table.relative_to(REPO)} is not what the code writes now; run: {command}"

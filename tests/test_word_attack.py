"""Word-substitution attacks: the searches on models whose answer we know, the resumable runner,
the command line, and training's ``word_attack=``."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY, assert_one_line_error, load_npz, merge, run_cli
from lstm_adv import config
from lstm_adv.common.errors import UserError
from lstm_adv.data import Split
from lstm_adv.data.synonyms import SubstitutionTable, load_synonyms
from lstm_adv.wordattack import runner, search

REPO = Path(__file__).resolve().parents[1]
FAST_ENV = {"OPENBLAS_NUM_THREADS": "1", "LSTM_ADV_OFFLINE": "1"}
WORDS = ["<pad>", "<unk>", "the", "movie", "film", "flick", "plot", "zebra", "good", "great", "awful", "terrible"]
ID = {w: i for i, w in enumerate(WORDS)}


def table():
    return SubstitutionTable(load_synonyms("wordnet"), WORDS, len(WORDS))


class KeysOn:
    """A model that says class 1 with probability 0.9 when word ``key`` is in the review ``needs``
    times, 0.4 when it is not there, and in between (above 0.5) for fewer occurrences: so every
    occurrence must go to flip it."""

    def __init__(self, key, needs=1):
        self.key, self.needs, self.calls = ID[key], needs, 0

    def __call__(self, x, mask):
        self.calls += x.shape[1]
        count = np.minimum((x == self.key).sum(axis=0), self.needs)
        p1 = 0.4 + 0.5 * count / self.needs
        return np.stack([1 - p1, p1], axis=1)


def review(*words):
    return np.array([ID[w] for w in words], dtype=np.int64)


@pytest.mark.parametrize("method", sorted(search.SEARCHES))
def test_a_model_keyed_on_a_word_with_a_synonym_is_flipped(method):
    ids = review("the", "plot", "movie", "the", "zebra")
    model = KeysOn("movie")
    got = search.SEARCHES[method](model, ids, 1, table())
    assert got.flipped and got.n_changed == 1
    changed = np.flatnonzero(got.adv != ids)
    assert changed.tolist() == [2] and WORDS[got.adv[2]] in ("film", "flick")
    assert got.probs.argmax() == 0
    assert got.queries == model.calls   # every review the search asked about is counted


@pytest.mark.parametrize("method", sorted(search.SEARCHES))
@pytest.mark.parametrize("key", ["the", "zebra"])   # a stopword; a word without a synonym
def test_a_model_keyed_on_a_word_without_substitutes_is_never_flipped(method, key):
    ids = review("the", "movie", "zebra", "good", "plot")
    got = search.SEARCHES[method](KeysOn(key), ids, 1, table())
    assert not got.flipped and got.adv is None and got.n_changed == 0


def test_only_words_with_substitutes_change_and_only_to_vocabulary_words():
    t = table()
    ids = review("the", "movie", "good", "zebra", "film", "the", "terrible", "movie")
    got = search.pwws(KeysOn("movie", needs=2), ids, 1, t)
    assert got.flipped
    for i in np.flatnonzero(got.adv != ids):
        assert got.adv[i] in t.subs[ids[i]]
        assert WORDS[ids[i]] not in ("the", "zebra")


def test_the_budget_of_changed_words_is_kept():
    ids = review("movie", "movie", "movie", "plot", "zebra", "the", "the", "the", "the", "the")
    model = KeysOn("movie", needs=3)   # all three must go to flip it
    assert search.pwws(model, ids, 1, table(), max_change=1.0).n_changed == 3
    assert not search.pwws(model, ids, 1, table(), max_change=0.2).flipped   # 2 words of 10
    assert not search.beam(model, ids, 1, table(), max_change=0.2).flipped
    # the beam's query budget: a step that would pass it is not taken
    assert search.beam(model, ids, 1, table()).flipped
    capped = search.beam(model, ids, 1, table(), max_queries=12)
    assert not capped.flipped and capped.queries <= 12 + 1


@pytest.mark.parametrize("method", sorted(search.SEARCHES))
def test_each_search_says_why_it_stopped(method):
    run = search.SEARCHES[method]
    assert run(KeysOn("movie"), review("the", "movie"), 1, table()).stop == "flipped"
    assert run(KeysOn("zebra"), review("the", "movie", "zebra"), 1, table()).stop == "all_words"
    assert run(KeysOn("zebra"), review("the", "zebra"), 1, table()).stop == "no_substitutes"
    ids = review("movie", "movie", "movie", "plot", "zebra", "the", "the", "the", "the", "the")
    assert run(KeysOn("movie", needs=3), ids, 1, table(), max_change=0.2).stop == "all_words"   # its word budget
    if method == "beam":   # held by the query budget: a larger one would flip it
        assert search.beam(KeysOn("movie", needs=3), ids, 1, table(), max_queries=12).stop == "max_queries"
    assert set(search.STOPS) >= {"flipped", "all_words", "max_queries", "no_substitutes"}


def test_the_log_line_says_how_many_reviews_only_the_query_budget_kept():
    from lstm_adv.wordattack import summary_line
    s = {"method": "beam", "n": 10, "clean_acc": 0.8, "adv_acc": 0.4, "success_rate": 0.5, "words_changed": 0.03,
         "queries": 900.0, "seconds": 20.0, "held": {"all_words": 1, "max_queries": 3}}
    assert summary_line(s).endswith("; 3 held only by the query budget")
    assert "query budget" not in summary_line({**s, "held": {"all_words": 4}})
    assert "query budget" not in summary_line({**s, "held": None})   # records from before the stop field


def test_a_flip_of_the_search_model_that_the_model_does_not_make_is_recorded_as_held():
    def sure(x, mask):   # the model itself: class 1 whatever the words
        return np.tile([0.1, 0.9], (x.shape[1], 1))

    record = runner.attack_one(sure, search.pwws, review("the", "movie"), 1, table(), 1.0, search_probs=KeysOn("movie"))
    assert record["attacked"] and not record["flipped"] and record["stop"] == "unconfirmed"
    assert runner.held_by_stop([record]) == {"unconfirmed": 1}


def test_pwws_replaces_the_most_salient_word_first():
    """Of two words that each move the model, PWWS changes the one whose change moves it most."""
    ids = review("movie", "good", "plot")

    def model(x, mask):
        p1 = 0.2 + 0.5 * (x == ID["movie"]).any(axis=0) + 0.25 * (x == ID["good"]).any(axis=0)
        return np.stack([1 - p1, p1], axis=1)

    got = search.pwws(model, ids, 1, table())
    assert got.flipped and got.n_changed == 1 and np.flatnonzero(got.adv != ids).tolist() == [0]


def _split(*reviews, labels=None):
    seqs = [list(r) for r in reviews]
    return Split(seqs, np.array(labels if labels is not None else [1] * len(seqs)))


def test_the_runner_summary_and_its_records(tmp_path):
    test = _split(review("the", "movie"), review("zebra", "plot"), review("good", "plot"), labels=[1, 1, 0])
    settings = {"method": "pwws", "n": 3, "seed": 1, "max_change": 1.0}
    s = runner.run_attack(tmp_path, KeysOn("movie"), test, table(), settings, log=lambda line: None)
    # review 0: right, flipped; review 1: wrong (no movie -> class 0); review 2: right, no substitute to flip it
    assert (s["n"], s["n_right"], s["n_flipped"]) == (3, 2, 1)
    assert s["clean_acc"] == pytest.approx(2 / 3) and s["adv_acc"] == pytest.approx(1 / 3)
    assert s["adv_acc"] <= s["clean_acc"] and s["success_rate"] == 0.5 and s["words_changed"] == 0.5
    assert s["synonyms"] == "wordnet" and "stopwords.txt" in s["stopwords"]
    records = [json.loads(ln) for ln in (tmp_path / runner.REVIEWS).read_text().splitlines()]
    assert [r["attacked"] for r in records] == [True, False, True]
    assert records[0]["adv"][1] in (ID["film"], ID["flick"]) and records[1]["adv"] is None
    # why the right review that held was not flipped: none of its words has a substitute here
    assert [r.get("stop") for r in records] == ["flipped", None, "no_substitutes"]
    assert s["held"] == {"no_substitutes": 1}
    # records written before the stop field: not counted, said as None
    assert runner.held_by_stop([{k: v for k, v in r.items() if k != "stop"} for r in records if r["attacked"]]) is None


def test_a_rerun_continues_where_the_records_end_and_refuses_other_settings(tmp_path):
    test = _split(*[review("the", "movie", "plot")] * 4)
    settings = {"method": "pwws", "n": 4, "seed": 1, "max_change": 1.0}
    full = runner.run_attack(tmp_path / "a", KeysOn("movie"), test, table(), settings, log=lambda line: None)
    lines = (tmp_path / "a" / runner.REVIEWS).read_text().splitlines()
    part = tmp_path / "b"
    part.mkdir()
    (part / runner.SETTINGS).write_text(json.dumps(settings))
    (part / runner.REVIEWS).write_text("\n".join(lines[:2]) + "\n" + lines[2][:17])   # a kill mid-line
    said = []
    again = runner.run_attack(part, KeysOn("movie"), test, table(), settings, log=said.append)
    strip = [{k: v for k, v in json.loads(ln).items() if k != "seconds"} for ln in lines]
    assert [{k: v for k, v in json.loads(ln).items() if k != "seconds"}
            for ln in (part / runner.REVIEWS).read_text().splitlines()] == strip
    assert {k: v for k, v in again.items() if k not in ("seconds", "reviews_per_s")} == \
        {k: v for k, v in full.items() if k not in ("seconds", "reviews_per_s")}
    assert any("cut" in line for line in said) and any("resuming after 2" in line for line in said)
    with pytest.raises(UserError, match="other settings \\(n\\)"):
        runner.run_attack(part, KeysOn("movie"), test, table(), {**settings, "n": 3}, log=said.append)


def test_the_sample_is_seeded_and_independent_of_the_model():
    a, b = runner.sample_indices(1000, 50, 1), runner.sample_indices(1000, 50, 1)
    assert (a == b).all() and len(set(a.tolist())) == 50 and (np.diff(a) > 0).all()
    assert not (a == runner.sample_indices(1000, 50, 2)).all()
    assert runner.sample_indices(10, 50, 1).tolist() == list(range(10))


def test_word_attack_keys_are_checked():
    assert config.WORD_ATTACKS == tuple(search.SEARCHES)
    assert config.parse_args(["word_attack=pwws,beam"]).word_attacks == ("pwws", "beam")
    cfg = config.parse_args(["word_attack=pwws, beam:200"])
    assert cfg.word_attacks == ("pwws", "beam") and (cfg.word_attack_n("pwws"), cfg.word_attack_n("beam")) == (1000, 200)
    for bad in ("beam:0", "beam:x", "beam:2:3"):
        with pytest.raises(UserError, match="METHOD or METHOD:N"):
            config.parse_args([f"word_attack={bad}"])
    with pytest.raises(UserError, match="'pgd' is not a word attack"):
        config.parse_args(["word_attack=pwws,pgd"])
    with pytest.raises(UserError, match="word_attack_max_change"):
        config.parse_args(["word_attack_max_change=0"])
    # the word attack keys never change a derived run folder: a finished run rerun with one finds itself
    assert config.parse_args(["eps=0.5", "word_attack=pwws"]).run_dir() == config.parse_args(["eps=0.5"]).run_dir()


# ---------------------------------------------------------------------------------------------
# end to end, on a model trained on data=toy

def _records(folder):
    return [{k: v for k, v in json.loads(ln).items() if k != "seconds"}
            for ln in (Path(folder) / runner.REVIEWS).read_text().splitlines()]


@pytest.mark.slow
def test_the_command_line_end_to_end_and_killed_at_a_chosen_review(toy_run, tmp_path):
    args = [f"model={toy_run}", "n=12"]
    proc = run_cli("lstm_adv.attack", args + [f"out={tmp_path / 'a'}"], REPO, env=FAST_ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "word attack pwws (12 reviews)" in proc.stdout
    summary = json.loads((tmp_path / "a" / "attack.json").read_text())
    assert summary["n"] == 12 and summary["adv_acc"] <= summary["clean_acc"]
    assert (tmp_path / "a" / "attack.html").read_text().startswith("<!DOCTYPE html>")
    assert "# Word attack on" in (tmp_path / "a" / "attack.md").read_text()
    killed = run_cli("lstm_adv.attack", args + [f"out={tmp_path / 'b'}"], REPO,
                     env={**FAST_ENV, "LSTM_ADV_FAULT": "kill@review=5"})
    assert killed.returncode == -9 and len(_records(tmp_path / "b")) == 5
    again = run_cli("lstm_adv.attack", args + [f"out={tmp_path / 'b'}"], REPO, env=FAST_ENV)
    assert again.returncode == 0 and "resuming after 5 of 12" in again.stderr
    assert _records(tmp_path / "b") == _records(tmp_path / "a")
    # the same command, the same folder (default out=): the same result
    proc = run_cli("lstm_adv.attack", args, REPO, env=FAST_ENV)
    assert _records(toy_run / "word_attack" / "pwws-n12-seed1") == _records(tmp_path / "a")


@pytest.mark.slow
def test_params_last_attacks_the_checkpoints_parameters(toy_run, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(toy_run, run, ignore=shutil.ignore_patterns("word_attack"))
    ckpt = dict(np.load(run / "checkpoint.npz"))
    ckpt["param/U"] = ckpt["param/U"] + 0.5   # the last update's parameters differ from the best's
    np.savez(run / "checkpoint.npz", **ckpt)
    last = {k[len("param/"):]: v for k, v in ckpt.items() if k.startswith("param/")}
    proc = run_cli("lstm_adv.attack", [f"model={run}", "n=4", "params=last"], REPO, env=FAST_ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    settings = json.loads((run / "word_attack" / "pwws-n4-seed1-last" / "attack_settings.json").read_text())
    assert settings["model"] == runner.params_digest(last) != runner.params_digest(load_npz(run / "params.npz"))
    (run / "checkpoint.npz").unlink()
    assert_one_line_error(run_cli("lstm_adv.attack", [f"model={run}", "n=4", "params=last", f"out={tmp_path / 'o'}"],
                                  REPO, env=FAST_ENV), "has no checkpoint.npz")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_max_queries_bounds_the_beam_search_and_names_its_own_folder(toy_run, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(toy_run, run, ignore=shutil.ignore_patterns("word_attack"))
    outcomes = {}
    for budget in (6, search.BEAM_MAX_QUERIES):
        args = [f"model={run}", "method=beam", "n=12"] + ([f"max_queries={budget}"] if budget != search.BEAM_MAX_QUERIES else [])
        proc = run_cli("lstm_adv.attack", args, REPO, env=FAST_ENV)
        assert proc.returncode == 0, proc.stderr[-2000:]
        folder = run / "word_attack" / ("beam-n12-seed1" + (f"-q{budget}" if budget != search.BEAM_MAX_QUERIES else ""))
        assert json.loads((folder / "attack.json").read_text())["max_queries"] == budget
        outcomes[budget] = [json.loads(line) for line in (folder / "reviews.jsonl").read_text().splitlines()]
    small, full = outcomes[6], outcomes[search.BEAM_MAX_QUERIES]
    held_by_budget = [(s, f) for s, f in zip(small, full) if s["stop"] == "max_queries"]
    assert held_by_budget and all(s["queries"] <= 1 + 6 < f["queries"] and f["stop"] != "max_queries"
                                  for s, f in held_by_budget)
    # a larger budget only lets the search go further: a review the small one ended for another reason ends the same
    keys = ("flipped", "adv", "stop", "queries", "n_changed")
    assert all([s[k] for k in keys] == [f[k] for k in keys] for s, f in zip(small, full) if s["stop"] != "max_queries")


@pytest.mark.slow
def test_bad_input_is_one_line_and_writes_nothing(toy_run, tmp_path):
    bad_table = tmp_path / "subs.tsv"
    bad_table.write_text("good great\n")
    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = [([f"model={tmp_path / 'none'}"], "no such run directory"),
             ([f"model={toy_run}", "n=0"], "n=0 must be positive"),
             ([f"model={toy_run}", f"synonyms={bad_table}"], "line 1: expected a word, a tab"),
             ([f"model={toy_run}", f"out={blocker / 'x'}"], "is a file"),
             ([f"model={toy_run}", "method=genetik"], "is not one of pwws, beam"),
             ([f"model={toy_run}", "max_change=2"], "max_change=2.0 must be in (0, 1]"),
             ([f"model={toy_run}", "method=beam", "max_queries=0"], "max_queries=0 must be positive"),
             ([f"model={toy_run}", "max_queries=100"], "PWWS asks a fixed number of queries")]
    before = sorted(p.name for p in toy_run.rglob("*"))
    for args, fragment in cases:
        assert_one_line_error(run_cli("lstm_adv.attack", args + [f"out={tmp_path / 'out'}"] if "out=" not in
                                      " ".join(args) else args, REPO, env=FAST_ENV), fragment)
    assert sorted(p.name for p in toy_run.rglob("*")) == before and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_training_with_word_attack_and_a_finished_run_attacked_later(tmp_path):
    args = merge(TINY, [f"saveto={tmp_path / 'run'}"])
    proc = run_cli("lstm_adv.train", args + ["word_attack=pwws", "word_attack_size=8"], REPO, env=FAST_ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["word_attack"]["pwws"]["n"] == 8
    # the attack's part of the run's wall time is said (a later attack is not added to it, below)
    parts = metrics["eval_time_s"] + metrics.get("attack_time_s", 0) + metrics["word_attack_time_s"]
    assert metrics["word_attack_time_s"] >= metrics["word_attack"]["pwws"]["seconds"] and parts <= metrics["wall_time_s"]
    params = load_npz(tmp_path / "run" / "params.npz")
    # rerun, finished, with another attack: attacked, not trained again
    proc = run_cli("lstm_adv.train", args + ["word_attack=pwws,beam:6", "word_attack_size=8"], REPO, env=FAST_ENV)
    assert proc.returncode == 0 and "word attack beam on its best parameters" in proc.stdout
    later = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(later["word_attack"]) == {"pwws", "beam"} and later["word_attack"]["beam"]["n"] == 6 and later["word_attack"]["pwws"] == metrics["word_attack"]["pwws"]
    assert {k: v for k, v in later.items() if k != "word_attack"} == {k: v for k, v in metrics.items() if k != "word_attack"}
    after = load_npz(tmp_path / "run" / "params.npz")
    assert all((params[k] == after[k]).all() for k in params)
    # the command-line attack with the same settings finds the training's records
    proc = run_cli("lstm_adv.attack", [f"model={tmp_path / 'run'}", "n=8"], REPO, env=FAST_ENV)
    assert proc.returncode == 0 and "resuming after 8 of 8" in proc.stderr


@pytest.mark.slow
def test_a_sweep_attacks_a_finished_run_its_command_asks_a_word_attack_of(tmp_path):
    run = tmp_path / "runs" / "a"
    args = merge(TINY, [f"saveto={run}"])
    assert run_cli("lstm_adv.train", args, REPO, env=FAST_ENV).returncode == 0
    history = (run / "history.csv").read_text()
    commands = tmp_path / "runs" / "commands.txt"
    commands.write_text(f"python -m lstm_adv.train {' '.join(args)} word_attack=pwws word_attack_size=5\n")
    proc = run_cli("lstm_adv.sweep", ["run", str(commands), "jobs=1"], REPO, env=FAST_ENV)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "1 to run" in proc.stdout
    assert json.loads((run / "metrics.json").read_text())["word_attack"]["pwws"]["n"] == 5
    assert (run / "history.csv").read_text() == history   # attacked, not trained again
    again = run_cli("lstm_adv.sweep", ["run", str(commands), "jobs=1"], REPO, env=FAST_ENV)
    assert again.returncode == 0 and "1 already finished" in again.stdout


@pytest.mark.parametrize("keys", [[], ["encoder=rnn"], ["emb_norm=1"]])
def test_the_projected_forward_equals_the_models_own(keys):
    from lstm_adv.core.compiled import Model
    from lstm_adv.wordattack import ProjectedProbs

    cfg = config.parse_args(["data=toy", "wdim=6", "hdim=5", "mode=C", *keys])
    rng = np.random.default_rng(0)
    model = Model(cfg, 30, word_counts=list(rng.integers(1, 50, 30)) if cfg.emb_norm else None)
    x = rng.integers(0, 30, size=(7, 4))
    mask = np.ones((7, 4), dtype=cfg.floatX)
    fast = ProjectedProbs(model)(x, mask)
    assert fast.shape == (4, 2)
    np.testing.assert_allclose(fast, model.f_pred_prob(x, mask), rtol=1e-5, atol=1e-6)


def test_the_results_table_shows_word_attacks_against_the_plain_runs():
    from lstm_adv.analysis.tables import ablation_markdown

    def run(label, eps, seed, adv_acc):
        cfg = dict(zip(["adv_norm", "emb_norm", "maxlen_mode"], label), eps=eps, seed=seed)
        wa = {"pwws": {"n": 100, "clean_acc": 0.9, "adv_acc": adv_acc, "success_rate": 1 - adv_acc / 0.9,
                       "words_changed": 0.03}}
        return {"config": cfg, "eps": eps, "seed": seed, "status": "ok", "dev": 0.1, "test": 0.1, "history": [],
                "escape_epoch": 1, "wall_time_s": 60.0, "attacks": {}, "word_attack": wa}

    runs = [run(("sign", 0, "truncate"), 0.0, s, a) for s, a in ((1, 0.05), (2, 0.07))]
    runs += [run(("l2", 1, "truncate"), 3.0, s, a) for s, a in ((1, 0.30), (2, 0.34))]
    runs += [run(("sign", 0, "filter"), 0.0, 1, 0.01)]   # another setting's plain run: not compared with
    text = ablation_markdown(runs, ["adv_norm", "emb_norm", "maxlen_mode"])
    # eps is every group's own column: by=...,eps (the study's) gives the same table, plain rows found.
    assert ablation_markdown(runs, ["adv_norm", "emb_norm", "maxlen_mode", "eps"]) == text
    section = text.split("## Accuracy under word substitutions")[1]
    row = next(ln for ln in section.splitlines() if ln.startswith("| adv_norm=l2"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:5] == ["pwws", "2", "100"] and cells[6] == "0.320 ± 0.028" and cells[9] == "+0.260"
    assert cells[10] not in ("", "n/a") and float(cells[10]) < 0.05
    plain = next(ln for ln in section.splitlines() if ln.startswith("| adv_norm=sign, emb_norm=0, maxlen_mode=truncate"))
    assert plain.endswith("|  |  |")   # the plain row is not compared with itself


def test_a_run_saved_before_a_key_existed_groups_with_its_default():
    from lstm_adv.analysis.runs import setting_label

    old = {"eps": 0.0, "adv_norm": "sign"}   # config.json of a version without ascc, synonym_aug
    new = {"eps": 0.0, "adv_norm": "sign", "ascc": 0, "synonym_aug": 0.0}
    keys = ["adv_norm", "ascc", "synonym_aug", "eps"]
    assert setting_label(old, keys) == setting_label(new, keys) == ("sign", 0, 0.0, 0.0)


@pytest.mark.slow
def test_a_finished_run_stopped_in_its_late_word_attack_says_so_and_goes_on(tmp_path):
    args = merge(TINY, [f"saveto={tmp_path / 'run'}"])
    assert run_cli("lstm_adv.train", args, REPO, env=FAST_ENV).returncode == 0
    attack = ["word_attack=pwws", "word_attack_size=8"]
    stopped = run_cli("lstm_adv.train", args + attack, REPO, env={**FAST_ENV, "LSTM_ADV_FAULT": "term@review=3"})
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    assert "during the word attack of a finished run; its records so far are kept" in stopped.stderr
    assert "word_attack" not in json.loads((tmp_path / "run" / "metrics.json").read_text())
    again = run_cli("lstm_adv.train", args + attack, REPO, env=FAST_ENV)
    assert again.returncode == 0 and "resuming after 3 of 8" in again.stdout
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["word_attack"]["pwws"]["n"] == 8


def test_synonym_distance_measures_the_flipped_reviews_change_in_the_models_embeddings(toy_run, tmp_path):
    """experiments/synonym_distance.py: for each flipped review, the L2 norm and largest coordinate
    of embed(adversarial) - embed(original) in the rows the model reads; reviews not flipped are left out."""
    import importlib.util
    import shutil

    from lstm_adv import load_run

    spec = importlib.util.spec_from_file_location("synonym_distance", REPO / "experiments" / "synonym_distance.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    run = tmp_path / "run"
    shutil.copytree(toy_run, run, ignore=shutil.ignore_patterns("word_attack"))
    records = [{"flipped": True, "orig": [5, 6, 7], "adv": [5, 9, 7]},
               {"flipped": False, "orig": [5, 6], "adv": [5, 6]},
               {"flipped": True, "orig": [3, 4], "adv": [8, 2]}]
    (run / "word_attack" / "pwws-n3-seed1").mkdir(parents=True)
    (run / "word_attack" / "pwws-n3-seed1" / "reviews.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records))
    l2, linf, (_, replaced), cfg = script.distances(str(run), "pwws")
    rows = load_run(run).model().f_embed(np.arange(10, dtype=np.int64)[:, None])[:, 0, :].astype(np.float64)
    deltas = [rows[9] - rows[6], np.concatenate([rows[8] - rows[3], rows[2] - rows[4]])]
    np.testing.assert_allclose(l2, [np.linalg.norm(d) for d in deltas], rtol=1e-6)
    np.testing.assert_allclose(linf, [np.abs(d).max() for d in deltas], rtol=1e-6)
    assert replaced == pytest.approx(np.median(np.linalg.norm(rows[[6, 3, 4]], axis=1)), rel=1e-6)


def test_ascc_sets_tsv_round_trips_the_capped_sets_a_run_trains_on(toy_run, tmp_path):
    """experiments/ascc_sets_tsv.py: read back as synonyms=PATH, its table gives exactly the padded
    sets of the run's own table (the first ascc_max_subs - 1 substitutes of each word)."""
    import subprocess
    import sys

    from lstm_adv.data.synonyms import SubstitutionTable, load_synonyms

    words = json.loads((toy_run / "vocab.json").read_text())
    words = words["words"] if isinstance(words, dict) else words
    n_words = json.loads((toy_run / "config.json").read_text())["config"]["n_words"]
    full = SubstitutionTable(load_synonyms("wordnet"), words, n_words)
    w = next(i for i, s in enumerate(full.subs) if len(s))
    other = next(i for i in range(2, n_words) if i != w and i not in full.subs[w])
    # One flipped review with an in-set and an out-of-set substitution; one not flipped, ignored.
    reviews = tmp_path / "reviews.jsonl"
    reviews.write_text(json.dumps({"flipped": True, "orig": [w, w, 5], "adv": [int(full.subs[w][0]), other, 5]})
                       + "\n" + json.dumps({"flipped": False, "orig": [w], "adv": [other]}) + "\n")
    out = tmp_path / "sets.tsv"
    proc = subprocess.run([sys.executable, str(REPO / "experiments" / "ascc_sets_tsv.py"), str(toy_run), f"out={out}",
                           f"reviews={reviews}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "1 of 1 flipped reviews used a substitute outside the sets; 1 of 2 substitutions (50.0%)" in proc.stdout
    for m in (2, 16):
        # the file holds 15 a word; capped again at m, it gives what the run's table gives at m
        back = SubstitutionTable(load_synonyms(str(out)), words, n_words)
        for a, b in zip(full.padded(m), back.padded(m)):
            np.testing.assert_array_equal(a, b)


def test_attack_by_length_bins_the_records():
    """experiments/attack_by_length.py: reviews binned by their words, the clean and attacked
    accuracy and the flip rate of the right ones per bin."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("attack_by_length", REPO / "experiments" / "attack_by_length.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    def rec(n_words, right, flipped):
        return {"n_words": n_words, "attacked": right, "flipped": flipped}

    records = [rec(10, True, True), rec(50, True, False), rec(60, False, False), rec(200, True, False)]
    rows = script.by_length(records, [55, 100])
    assert rows == [("[0, 55)", 2, 1.0, 0.5, 0.5), ("[55, 100)", 1, 0.0, 0.0, None), (">= 100", 1, 1.0, 1.0, 0.0)]


def test_beam_stops_judges_old_records_as_the_search_stopped():
    """experiments/beam_stops.py: for a record without ``stop``, the query budget or every word
    changed, from the review and the table alone, never against what the search did."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("beam_stops", REPO / "experiments" / "beam_stops.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    t = table()
    ids = review("movie", "movie", "movie", "plot", "zebra", "the", "the", "the", "the", "the")
    for max_queries in (5, 12, 30):   # held by the budget at different steps
        got = search.beam(KeysOn("movie", needs=3), ids, 1, t, max_queries=max_queries)
        assert got.stop == "max_queries"
        assert script.judge(ids, got.queries + 1, t, max_queries) == "max_queries"
    few = review("the", "movie", "zebra", "plot")
    got = search.beam(KeysOn("zebra"), few, 1, t)
    assert got.stop == "all_words" and script.judge(few, got.queries + 1, t, search.BEAM_MAX_QUERIES) == "all_words"
    # the same review with a budget that its whole search just fits: the budget cannot be told apart
    assert script.judge(few, got.queries + 1, t, got.queries) in ("all_words", "undetermined")
    assert script.judge(review("the", "zebra"), 2, t, 100) == "no_substitutes"
    # beside PWWS on the same reviews: a review counts under both only if neither flipped it
    def rec(i, right, flipped):
        return {"test_index": i, "attacked": right, "flipped": flipped}

    beam = [rec(1, True, False), rec(2, True, True), rec(3, True, False), rec(4, False, False)]
    pwws = [rec(0, True, True), rec(1, True, True), rec(2, True, False), rec(3, True, False), rec(4, False, False)]
    assert script.against_pwws(beam, pwws) == (0.5, 0.5, 0.25)
    with pytest.raises(ValueError, match="lacks 1 of the beam's reviews"):
        script.against_pwws(beam + [rec(9, True, False)], pwws)


def test_word_substitution_table_rows_follow_the_studys_order(tmp_path):
    """experiments/word_substitution_table.py: one row per finished run, methods in the page's order,
    seeds in number order, a run still running left out, the beam column where a run has it."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("wst", REPO / "experiments" / "word_substitution_table.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    pwws = {"clean_acc": 0.9, "adv_acc": 0.1, "success_rate": 8 / 9, "n_flipped": 8, "n_right": 9,
            "words_changed": 0.03, "queries": 700.4}
    for name, status, attacks in [("ascc_seed=1", "ok", {"pwws": pwws}), ("plain_seed=10", "ok", {"pwws": pwws}),
                                  ("plain_seed=2", "ok", {"pwws": pwws, "beam": {**pwws, "adv_acc": 0.2}}),
                                  ("miyato_seed=1", "running", {})]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(
            {"status": status, "test_err": 0.1, "wall_time_s": 600, "word_attack": attacks}))
    rows = script.rows(tmp_path)
    assert [r[1] for r in rows] == ["`plain_seed=2`", "`plain_seed=10`", "`ascc_seed=1`"]
    assert rows[0][3:] == ("0.900 -> 0.100", "88.9% (8 of 9)", "3.0%", "700", "0.900 -> 0.200", "10")
    assert rows[1][7] == "-"


def test_polarity_filter_drops_substitutes_of_the_other_sentiment():
    """experiments/polarity_filtered_synonyms.py: a word's polarity is its log-odds in positive
    against negative reviews; a substitute further than tau from the word's is dropped."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("pfs", REPO / "experiments" / "polarity_filtered_synonyms.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    # word 2 only in positive reviews, 3 only in negative ones, 4 in both alike; 9 is beyond n_words
    seqs = [[2, 2, 4, 9], [2, 2, 4], [3, 3, 4], [3, 3, 4, 9]]
    pol = script.polarity(seqs, [1, 1, 0, 0], 5)
    assert pol[2] > 1 and pol[3] < -1 and abs(pol[4]) < 1e-9 and pol.shape == (5,)
    subs = [np.array([], dtype=int)] * 2 + [np.array([3, 4]), np.array([2]), np.array([2, 3])]
    kept = script.keep(subs, pol, tau=2.0)   # 2 and 3: log 5 from neutral each, 2 log 5 apart
    assert kept[2].tolist() == [4] and kept[3].tolist() == [] and kept[4].tolist() == [2, 3]


@pytest.mark.slow
def test_a_run_stopped_in_its_end_of_training_word_attack_resumes_without_training_and_says_so(tmp_path):
    """Stopped after its last update, in the word attack: the rerun trains nothing, finishes the attack, and
    reports no update time rather than a 0.0 ms that reads as a measurement."""
    args = merge(TINY, [f"saveto={tmp_path / 'run'}", "word_attack=pwws", "word_attack_size=8"])
    stopped = run_cli("lstm_adv.train", args, REPO, env={**FAST_ENV, "LSTM_ADV_FAULT": "term@review=3"})
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    history = (tmp_path / "run" / "history.csv").read_text()
    again = run_cli("lstm_adv.train", args, REPO, env=FAST_ENV)
    assert again.returncode == 0 and "resuming after 3 of 8" in again.stdout, again.stdout[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["word_attack"]["pwws"]["n"] == 8
    assert metrics["ms_per_update"] is None and metrics["word_attack_time_s"] <= metrics["wall_time_s"]
    assert (tmp_path / "run" / "history.csv").read_text() == history
    done = [line for line in again.stdout.splitlines() if line.startswith("done:")]
    assert done and "no update in this attempt" in done[0]

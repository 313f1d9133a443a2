"""The adversarial-example visualiser (lstm_adv.analysis.visualize): decoder pieces by hand, then end to end."""

import html
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import HANG_GUARD, TINY, assert_one_line_error, run_cli
from lstm_adv import visualize
from lstm_adv.analysis.visualize import analyse, bigram, decode, inputs, options, render
from lstm_adv.common.errors import UserError
from lstm_adv.core.compiled import Model

REPO = Path(__file__).resolve().parents[1]
# Small matrix products are many times slower when OpenBLAS spreads them over threads on a
# busy 2-core machine; the subprocesses here do not need more than one.
FAST_ENV = {"OPENBLAS_NUM_THREADS": "1", "LSTM_ADV_OFFLINE": "1"}

WORDS = ["<pad>", "<unk>", "the", "movie", "good", "bad", "great", "awful", "plot", "zebra"]


@pytest.fixture(scope="module", autouse=True)
def cache_folder(tmp_path_factory):
    """The bigram model's cache (LSTM_ADV_CACHE) in a temporary folder, for this module and the
    commands it starts: the tests never write into the user's cache."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LSTM_ADV_CACHE", str(folder))
        yield folder


# ---------------------------------------------------------------------------------------------
# Viterbi and the bigram model

def brute_force(emit, start, trans, end, L):
    K = emit.shape[1]
    best, arg = -np.inf, None
    for path in itertools.product(range(K), repeat=L):
        s = start[path[0]] + sum(emit[t, path[t]] for t in range(L))
        s += sum(trans[t - 1, path[t - 1], path[t]] for t in range(1, L)) + end[path[L - 1]]
        if s > best:
            best, arg = s, path
    return list(arg)


def test_viterbi_beats_greedy_on_a_hand_made_table():
    # Candidates per position: 0 = "good", 1 = "bad". Greedy by emission takes "bad" at t=1,
    # but the transition table makes good -> good -> good far likelier.
    emit = np.array([[[1.0, 0.0], [0.4, 0.5], [1.0, 0.0]]])
    start = np.zeros((1, 2))
    trans = np.log(np.array([[[0.9, 0.1], [0.5, 0.5]], [[0.9, 0.1], [0.5, 0.5]]]))[None]
    end = np.zeros((1, 2))
    assert emit[0].argmax(axis=1).tolist() == [0, 1, 0]
    assert decode.viterbi(emit, start, trans, end, [3]).tolist() == [[0, 0, 0]]
    # With the transitions scaled down to nothing, the emissions win.
    assert decode.viterbi(emit, start, 1e-3 * trans, end, [3]).tolist() == [[0, 1, 0]]


def test_viterbi_matches_brute_force_on_a_ragged_batch():
    rng = np.random.default_rng(0)
    B, T, K = 5, 5, 3
    emit, start = rng.normal(size=(B, T, K)), rng.normal(size=(B, K))
    trans, end = rng.normal(size=(B, T - 1, K, K)), rng.normal(size=(B, K))
    lengths = np.array([5, 1, 3, 2, 4])
    paths = decode.viterbi(emit, start, trans, end, lengths)
    for b in range(B):
        L = lengths[b]
        assert paths[b, :L].tolist() == brute_force(emit[b], start[b], trans[b], end[b], L)
        assert (paths[b, L:] == -1).all()


def test_bigram_model_is_normalised_and_prefers_seen_bigrams():
    seqs = [[2, 3, 4], [2, 3, 5], [2, 3, 4, 4], [6, 1]]
    lm = bigram.BigramLM.fit(seqs, V=10)
    for a in range(10):
        total = np.exp(lm.logprob(a, np.arange(10)).astype(np.float64)).sum()
        assert total == pytest.approx(1.0, abs=1e-5)
    assert lm.logprob(3, 4) > lm.logprob(3, 5) > lm.logprob(3, 9)
    assert lm.logprob(0, 2) > lm.logprob(0, 6) > lm.logprob(0, 9)     # sentence starts
    assert lm.logprob(np.array([[3], [2]]), np.array([4, 5])).shape == (2, 2)


def test_bigram_decode_lets_the_language_model_break_near_ties(tmp_path):
    # Two reviews "the X movie" (X: 4 "good" vs 7 "awful", nearly tied by cosine); the LM has
    # only ever seen "the good movie".
    lm = bigram.BigramLM.fit([[2, 4, 3]] * 5 + [[7, 8]], V=10)
    cand = np.array([[2, 9], [7, 4], [3, 8]] * 2)
    sims = np.array([[0.9, 0.1], [0.52, 0.50], [0.9, 0.2]] * 2, dtype=np.float32)
    out = decode.bigram_decode(cand, sims, [3, 3], lm, lm_weight=0.1)
    assert out.tolist() == [2, 4, 3, 2, 4, 3]
    assert decode.bigram_decode(cand, sims, [3, 3], lm, lm_weight=1e-6).tolist() == [2, 7, 3, 2, 7, 3]
    # Round trip through the cache file, keyed by its metadata.
    lm.save(tmp_path / "lm.npz", {"v": 1})
    again = bigram.BigramLM.load(tmp_path / "lm.npz", {"v": 1})
    assert np.array_equal(again.logprob(2, np.arange(10)), lm.logprob(2, np.arange(10)))
    assert bigram.BigramLM.load(tmp_path / "lm.npz", {"v": 2}) is None


# ---------------------------------------------------------------------------------------------
# nearest neighbours with embeddings placed by hand

def test_cosine_neighbour_and_top_words_restriction():
    E = 4
    W = np.zeros((10, E), dtype=np.float32)
    W[0] = [1, 0, 0, 0]          # padding: exactly the query's direction, must never be chosen
    W[1] = [0, 0, 0, 1]          # UNK
    W[2] = [0, 1, 0, 0]
    W[3] = [0.8, 0.6, 0, 0]      # the nearest frequent word to the query
    W[4] = [0, 0, 1, 0]
    W[9] = [5.0, 0.3, 0, 0]      # the nearest word overall (rare: id 9), long vector: cosine ignores norm
    W[5:9] = [[0, -1, 0, 0], [0, 0, -1, 0], [-1, 0, 0, 0], [0, 0, 0, -1]]
    dec = decode.Decoder(W, top_words=3)                       # candidates: UNK and ids 2, 3, 4
    query = np.array([[1.0, 0.05, 0, 0], [0, 0.1, 0, 2.0]], dtype=np.float32)
    full, top = dec.nearest(query)
    assert full.tolist() == [9, 1]
    assert top.tolist() == [3, 1]
    ids, sims = dec.candidates(query, k=3)
    assert ids[0].tolist() == [3, 2, 1] or ids[0].tolist() == [3, 2, 4]
    assert ids[0, 0] == 3 and ids[1, 0] == 1
    assert (np.diff(sims, axis=1) <= 0).all()
    # k larger than the restricted set: every candidate, best first.
    ids, _ = dec.candidates(query, k=50)
    assert ids.shape == (2, 4) and sorted(ids[0].tolist()) == [1, 2, 3, 4]


def tiny_run(tmp_path, top_words_model=10):
    from lstm_adv.config import parse_args
    from lstm_adv.core.model import init_params

    cfg = parse_args(["data=toy", "wdim=4", "hdim=4", "mode=C", "progress=0"])
    params = init_params(cfg, len(WORDS))
    rng = np.random.default_rng(1)
    params["Wemb"] = rng.normal(size=(len(WORDS), 4)).astype(np.float32)
    params["U"] = rng.normal(size=params["U"].shape).astype(np.float32)
    return inputs.Run(Path(tmp_path), cfg, len(WORDS), params, list(WORDS))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    run = tiny_run(tmp_path_factory.mktemp("tiny"))
    return run, Model(run.cfg, run.n_words, run.params)


REVIEWS = [[2, 3, 4, 1, 6], [5, 9, 8], [7]]


def _reviews(labels=(1, 0, 0)):
    return [inputs.Review(f"r{i}", np.array(s, dtype=np.int64), lab) for i, (s, lab) in enumerate(zip(REVIEWS, labels))]


def test_eps_zero_decodes_every_row_to_the_original(tiny_model):
    run, model = tiny_model
    lm = bigram.BigramLM.fit(REVIEWS * 3, V=len(WORDS))
    for lm_weight in (0.0, 1e-4):
        opts = options.Options(model="x", eps_vis=0.0, eps_knn=0.0, lm_weight=lm_weight, top_words=5000, k=4)
        res = analyse.analyse(model, run, _reviews(), opts, lm)
        for key in options.ROW_KEYS:
            for orig, dec in zip(res.rows["original"], res.rows[key]):
                keep = orig != 1                               # UNK aside
                assert np.array_equal(dec[keep], orig[keep]), (key, orig, dec)
        # Unperturbed embeddings classify exactly like the text.
        assert np.allclose(res.p_emb[0.0], res.p_orig, atol=1e-5)
        assert np.allclose(res.p_dec["bigram"], res.p_orig, atol=1e-5)
        s = analyse.summarize(res, opts)
        assert [r["changed"] for r in s["rows"]] == [0.0] * 5


def test_top_words_restriction_and_perturbation_change_words(tiny_model):
    run, model = tiny_model
    # top_words=3: rows 3-5 may only use UNK and ids 2..4, so rarer words must change.
    opts = options.Options(model="x", eps_vis=0.0, eps_knn=0.0, lm_weight=0.0, top_words=3)
    res = analyse.analyse(model, run, _reviews(), opts)
    for key in ("knn_top", "scaled", "bigram"):
        dec = np.concatenate(res.rows[key])
        assert dec.max() <= 4 and dec.min() >= 1
    assert np.array_equal(np.concatenate(res.rows["knn"]), np.concatenate(res.rows["original"]))
    # A large step moves words; label -1 takes the model's prediction as the label.
    opts = options.Options(model="x", eps_vis=3.0, eps_knn=3.0, lm_weight=0.0)
    res = analyse.analyse(model, run, _reviews(labels=(-1, -1, -1)), opts)
    assert [r.label for r in res.reviews] == res.pred_orig.tolist()
    assert analyse.summarize(res, opts)["rows"][1]["changed"] > 0
    assert (res.p_emb[3.0] <= res.p_orig + 1e-6).all()      # the step increases the true label's loss


# ---------------------------------------------------------------------------------------------
# marking and rendering

def test_changed_words_are_marked_exactly():
    orig = np.array([2, 4, 3, 1])
    adv = np.array([2, 5, 3, 9])
    assert render.render_tokens(adv, orig, WORDS, "md") == "the **bad** movie **zebra**"
    assert render.render_tokens(adv, orig, WORDS, "html") == ('the <mark title="was: good">bad</mark> movie '
                                                          '<mark title="was: UNK">zebra</mark>')
    assert render.render_tokens(orig, None, WORDS, "md") == "the good movie UNK"
    assert render.render_tokens(adv, orig, WORDS, "md", max_tokens=2) == "the **bad** \\[...\\]"
    words = WORDS[:5] + ["<br", "a|b", "*", "x_y", "&"]
    assert render.render_tokens(np.array([5, 6, 7, 8, 9]), None, words, "md") == "&lt;br a\\|b \\* x\\_y &amp;"
    assert render.render_tokens(np.array([5, 9]), None, words, "html") == "&lt;br &amp;"


def test_line_breaks_excerpts_and_correct_examples_first():
    words = WORDS + ["<", "br", "/", ">"]          # ids 10-13: IMDB's "<br />" as the tokenizer splits it
    br = [10, 11, 12, 13]
    ids = np.array([2, 4] + br + br + [3])
    assert render.render_tokens(ids, None, words, "html") == "the good <br> movie"
    assert render.render_tokens(ids, None, words, "md") == "the good <br> movie"
    changed = ids.copy()
    changed[3] = 9                                 # "br" replaced: the tokens are shown, marked
    assert render.render_tokens(changed, ids, words, "html") == (
        'the good &lt; <mark title="was: br">zebra</mark> / &gt; <br> movie')
    long = np.array([9] * 30)
    md = render.render_collapsed(long, np.array([2] * 30), words, "md")
    assert md.count("**zebra**") == render.EXCERPT_TOKENS and md.endswith("\\[... 18 more tokens\\]")
    page = render.render_collapsed(long, np.array([2] * 30), words, "html")
    assert page.startswith("<details><summary>") and page.count("<mark") == render.EXCERPT_TOKENS + 30
    assert render.render_collapsed(long[:5], None, words, "html") == "zebra zebra zebra zebra zebra"
    res = analyse.Result([inputs.Review(f"r{i}", np.array([2]), lab) for i, lab in enumerate([1, 0, 1, 0])], {},
                     None, np.array([0, 0, 0, 0]), {}, {}, {}, {}, {}, 4)
    assert render.table2_indices(res, 3) == [1, 3, 0]   # correctly classified (1, 3) first, then the others


def fake_result(opts):
    orig = np.array([2, 4, 3])
    adv = np.array([2, 5, 3])
    rows = {"original": [orig], "knn": [np.array([9, 9, 9])], "knn_top": [np.array([2, 2, 2])], "scaled": [adv],
            "bigram": [adv]}
    e = {float(opts.eps_knn): np.array([0.1]), float(opts.eps_vis): np.array([0.3])}
    pred = {k: np.array([0]) for k in e}
    return analyse.Result([inputs.Review("test[0]", orig, 1)], rows, np.array([0.9]), np.array([1]), e, pred,
                      {k: np.array([0.4]) for k in options.ROW_KEYS[1:]}, {k: np.array([0]) for k in options.ROW_KEYS[1:]},
                      {"compiling": 0.0, "gradients": 0.1, "nearest neighbours": 0.01, "bigram Viterbi": 0.02,
                       "classifying decoded text": 0.1}, 3)


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_tables_and_summary(tmp_path, fmt):
    opts = options.Options(model="x", format=fmt)
    res = fake_result(opts)
    run = inputs.Run(tmp_path, tiny_run(tmp_path).cfg, len(WORDS), {}, WORDS)
    summary = analyse.summarize(res, opts)
    rows = {r["row"]: r for r in summary["rows"]}
    assert rows["knn"]["changed"] == 1.0 and rows["bigram"]["changed"] == pytest.approx(1 / 3)
    assert rows["scaled"]["flip_emb"] == 1.0 and rows["bigram"]["flip_dec"] == 1.0
    pairs, flipped = analyse.choose_pairs(res, opts)
    assert pairs == [0] and flipped
    text = render.render(res, opts, run, summary, pairs, flipped, "lm")
    if fmt == "md":
        assert "| adversarial | the **bad** movie |" in text
        assert "| original | the good movie |" in text
        for label in options.row_labels(opts).values():
            assert f"| {label} |" in text
    else:
        assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
        assert '<td>the <mark title="was: good">bad</mark> movie</td>' in text
        assert "<script" not in text and "http" not in text    # self-contained
    assert "P(true label): original text 0.900, perturbed embeddings 0.300, decoded text 0.400" in text
    # Rows are numbered as the page's "rows 2-3" and "rows 4-5" count them, and each is explained.
    if fmt == "md":
        assert "| 1 | original | the good movie |" in text and "| 5 | KNN top 5000 + scaled" in text
        assert "\n1. original: the review as the model reads it" in text
    else:
        assert "<tr><td>4</td><td>KNN top 5000 + scaled perturbation</td>" in text
        assert text.count("<li>") == 5
    for sentence in render.row_explanations(opts) + [render.FLIP_RATES]:
        assert (sentence if fmt == "md" else html.escape(sentence)) in text
    for term in ("KNN top 5000: ", "scaled perturbation: ", "bigram smoothing: ", "Flip rates, over the reviews"):
        assert term in text


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_table3_says_when_the_adversarial_text_is_the_original(tmp_path, fmt):
    # A toy model's only pair can decode to the original text word for word, with nothing flipped.
    opts = options.Options(model="x", format=fmt)
    res = fake_result(opts)
    res.rows["bigram"] = [res.rows["original"][0].copy()]
    res.pred_emb[float(opts.eps_vis)][:] = 1      # the prediction stays right
    res.pred_dec["bigram"][:] = 1
    run = inputs.Run(tmp_path, tiny_run(tmp_path).cfg, len(WORDS), {}, WORDS)
    pairs, flipped = analyse.choose_pairs(res, opts)
    assert pairs == [0] and not flipped
    text = render.render(res, opts, run, analyse.summarize(res, opts), pairs, flipped, "lm")
    assert "No word changed: at eps_vis=0.005 every perturbed embedding is still nearest its own word, so the " \
           "adversarial text is the original, and nothing flipped." in text
    assert "original = adversarial" in text and "| adversarial |" not in text and "<td>adversarial</td>" not in text
    # Table 2 flags its row 5 (the same decoding), and no row that changed a word.
    assert text.count("(= row 1: no word changed)") == sum(
        np.array_equal(res.rows[k][0], res.rows["original"][0]) for k in options.ROW_KEYS[1:]) >= 1
    # Only the embeddings flipped: said so.
    res.pred_emb[float(opts.eps_vis)][:] = 0
    text = render.render(res, opts, run, analyse.summarize(res, opts), [0], True, "lm")
    assert "only the perturbed embeddings flip the prediction, not the decoded text." in text


# ---------------------------------------------------------------------------------------------
# choosing the reviews: index=, sample=, text= (select_reviews, on the toy corpus)

@pytest.fixture(scope="module")
def toy_corpus_run(tmp_path_factory):
    """A Run over data=toy's own dictionary (select_reviews checks it against the data set's)."""
    from lstm_adv.config import parse_args
    from lstm_adv.data import load_dataset

    cfg = parse_args(["data=toy", "wdim=4", "hdim=4", "mode=C", "progress=0"])
    data = load_dataset(cfg)
    params = {"U": np.zeros((4, 2), dtype="float32")}   # the classes select_reviews reads (K = 2)
    return inputs.Run(tmp_path_factory.mktemp("toy_corpus"), cfg, len(data.words), params, list(data.words)), data


def _select(run, *args):
    return inputs.select_reviews(options.parse_options(["model=x", *args]), run)


def _assert_split_reviews(reviews, split, name, idx):
    assert [r.name for r in reviews] == [f"{name}[{i}]" for i in idx]
    for r, i in zip(reviews, idx):
        assert r.ids.tolist() == list(split.seqs[i]) and r.label == int(split.labels[i])


def test_index_chooses_those_reviews_in_that_order(toy_corpus_run):
    run, data = toy_corpus_run
    _assert_split_reviews(_select(run, "index=7,0,3"), data.test, "test", [7, 0, 3])
    _assert_split_reviews(_select(run, "split=valid", "index=2"), data.valid, "valid", [2])


def test_sample_is_a_seeded_random_choice_of_distinct_reviews(toy_corpus_run):
    run, data = toy_corpus_run
    picks = {seed: [int(r.name[5:-1]) for r in _select(run, "sample=6", f"seed={seed}")] for seed in (0, 1)}
    for seed, idx in picks.items():
        assert len(set(idx)) == 6 and all(0 <= i < len(data.test) for i in idx), (seed, idx)
        assert idx != list(range(6)) and idx != sorted(idx)   # not the first (shortest) reviews
        _assert_split_reviews(_select(run, "sample=6", f"seed={seed}"), data.test, "test", idx)   # same seed, same
    assert picks[0] != picks[1]
    with pytest.raises(UserError, match=f"sample={len(data.test) + 1} but split=test has only"):
        _select(run, f"sample={len(data.test) + 1}")


def test_text_is_one_review_tokenised_as_in_training(toy_corpus_run):
    run, _ = toy_corpus_run
    ids = {w: i for i, w in enumerate(run.words)}
    # Case and punctuation as a user types them: lowercased, "!" split off; a word the toy
    # corpus never saw is UNK (1).
    reviews = _select(run, "text=The plot and the music, zyzzyva!")
    assert len(reviews) == 1 and reviews[0].name == "text" and reviews[0].label == -1
    assert reviews[0].ids.tolist() == [ids["the"], ids["plot"], ids["and"], ids["the"], ids["music"], ids[","],
                                       1, ids["!"]]
    assert _select(run, "text=the plot", "label=1")[0].label == 1


# ---------------------------------------------------------------------------------------------
# bad input, in process (fast) ...

def _main_error(capsys, args):
    rc = visualize.main(args)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


def test_bad_options_and_model_files(tmp_path, capsys):
    assert "did you mean eps_vis" in _main_error(capsys, ["model=x", "eps_viz=0.1"])
    assert "model= is required" in _main_error(capsys, ["split=test"])
    assert "no such model" in _main_error(capsys, [f"model={tmp_path / 'none'}"])
    assert "text= is empty" in _main_error(capsys, ["model=x", "text="])
    assert "one way" in _main_error(capsys, ["model=x", "first=2", "index=1"])
    assert "is not one of" in _main_error(capsys, ["model=x", "split=train"])
    # A directory with an .npz that is not ours.
    d = tmp_path / "notours"
    d.mkdir()
    np.savez(d / "params.npz", weights=np.zeros(3))
    assert "no config.json" in _main_error(capsys, [f"model={d}"])
    (d / "config.json").write_text(json.dumps({"something": 1}))
    assert "not an lstm_adv run configuration" in _main_error(capsys, [f"model={d}"])
    run = tiny_run(tmp_path)
    (d / "config.json").write_text(json.dumps({"config": run.cfg.to_dict(), "n_words": len(WORDS)}))
    assert "not an lstm_adv parameter file" in _main_error(capsys, [f"model={d}"])
    (d / "params.npz").write_text("not a zip")
    assert "not a readable parameter" in _main_error(capsys, [f"model={d / 'params.npz'}"])
    # Our parameters, but a dictionary of another size.
    np.savez(d / "params.npz", **run.params)
    assert "no vocab.json" in _main_error(capsys, [f"model={d}"])
    (d / "vocab.json").write_text(json.dumps(WORDS[:-1]))
    assert "has 9 words but Wemb" in _main_error(capsys, [f"model={d}"])


# ---------------------------------------------------------------------------------------------
# ... and end to end on a model trained on data=toy

@pytest.mark.slow
def test_end_to_end_markdown_and_html(toy_run, tmp_path, cache_folder):
    proc = run_cli("lstm_adv.visualize", [f"model={toy_run}", "split=test", "first=5"], REPO, env=FAST_ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = proc.stdout
    opts = options.Options(model="x")
    for key, label in options.row_labels(opts).items():
        if key != "original":                          # (also a row of Table 3)
            # 5 reviews (a decoding equal to the original flagged in its label) + the summary
            assert md.count(f"| {label} |") + md.count(f"| {label} (= row 1: no word changed) |") == 6, label
    assert "## Table 3" in md and "per 1,000 reviews" in md
    # The bigram model is cached in the cache folder, and the page says so; the run directory is training's.
    cached = list((cache_folder / "bigram").glob("toy-*.npz"))
    assert len(cached) == 1 and not list(toy_run.glob("bigram*"))
    assert f"cached as bigram/{cached[0].name} in the lstm_adv cache folder ($LSTM_ADV_CACHE" in md

    # Text reviews (tokenised as in training), the .npz path, HTML to a file.
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("A wonderful, brilliant film!\n\nThe plot was dull and the acting awful.\n")
    out = tmp_path / "vis.html"
    proc = run_cli("lstm_adv.visualize", [f"model={toy_run / 'params.npz'}", f"text_file={reviews}", "pairs=1",
                                          f"out={out}"], REPO, env=FAST_ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<h3>line ") == 3   # 2 in Table 2, 1 in Table 3
    assert page.count("<td>KNN</td>") == 3 and "wonderful , brilliant film !" in page


@pytest.mark.slow
def test_end_to_end_index_sample_and_text(toy_run, capsys):
    # The command line's choice reaches the document: Table 2's headings name the chosen reviews.
    def headings(*args):
        assert visualize.main([f"model={toy_run}", "pairs=0", *args]) == 0
        md = capsys.readouterr().out
        return md, re.findall(r"^### (.+?): true label", md, flags=re.M)

    _, names = headings("index=4,1")
    assert sorted(names) == ["test[1]", "test[4]"]
    _, names = headings("sample=3", "seed=2")
    chosen = inputs.select_reviews(options.parse_options([f"model={toy_run}", "sample=3", "seed=2"]),
                                   inputs.load_run(str(toy_run)))
    assert sorted(names) == sorted(r.name for r in chosen) and len(set(names)) == 3
    md, names = headings("text=A wonderful film!", "label=1")
    assert names == ["text"] and "### text: true label positive, 4 tokens" in md
    assert "| original | a wonderful film ! |" in md


@pytest.mark.slow
def test_end_to_end_bad_inputs(toy_run, tmp_path, capsys):
    proc = run_cli("lstm_adv.visualize", [f"model={toy_run}", "index=100000"], REPO, env=FAST_ENV)
    assert_one_line_error(proc, "index=100000 is out of range")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "first=100000 but split=valid" in _main_error(capsys, [f"model={toy_run}", "split=valid", "first=100000"])
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    assert "has no review" in _main_error(capsys, [f"model={toy_run}", f"text_file={empty}"])
    # A dictionary that does not match Wemb's rows.
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("config.json", "params.npz"):
        (bad / name).write_bytes((toy_run / name).read_bytes())
    words = json.loads((toy_run / "vocab.json").read_text())
    (bad / "vocab.json").write_text(json.dumps(words + ["extra"]))
    proc = run_cli("lstm_adv.visualize", [f"model={bad}"], REPO, env=FAST_ENV)
    assert_one_line_error(proc, "does not belong to this model")
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_model_with_nan_or_inf_is_refused(toy_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "nan_run"
    shutil.copytree(toy_run, run, ignore=shutil.ignore_patterns("bigram_lm.npz", "checkpoint*"))
    with np.load(run / "params.npz") as f:
        params = {k: f[k] for k in f.files}
    params["U"][0, 0] = np.inf
    params["Wemb"][:] = np.nan
    np.savez(run / "params.npz", **params)
    before = sorted(p.name for p in run.iterdir())
    line = _main_error(capsys, [f"model={run}", "first=2"])
    assert "NaN/Inf" in line and "Wemb" in line
    assert sorted(p.name for p in run.iterdir()) == before   # no bigram cache written


def _chromium():
    import shutil
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.mark.browser
def test_page_renders_in_headless_chromium(toy_run, tmp_path):
    """Opt-in (pytest -m browser): the HTML page loads in a real browser, screenshot and DOM checked."""
    import subprocess
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    page = tmp_path / "vis.html"
    proc = run_cli("lstm_adv.visualize", [f"model={toy_run}", "split=test", "first=4", "show=2", f"out={page}"],
                   REPO, env=FAST_ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1600"]
    shot = tmp_path / "page.png"
    r = subprocess.run([browser, *flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True,
                       timeout=HANG_GUARD)
    assert r.returncode == 0, r.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=HANG_GUARD)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<h1>Adversarial examples decoded into words" in dom.stdout and "</table>" in dom.stdout
    assert dom.stdout.count("<h3>") >= 2 and "ERR_" not in dom.stdout


@pytest.mark.slow
def test_lm_weights_table_and_figure(toy_run, tmp_path):
    out = tmp_path / "vis.md"
    proc = run_cli("lstm_adv.visualize", [f"model={toy_run}", "first=6", "lm_weights=0,0.05,0.5", f"out={out}"],
                   REPO, env=FAST_ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fig = tmp_path / "vis-lm_weight.png"
    assert fig.read_bytes()[:4] == b"\x89PNG" and fig.stat().st_size > 5000
    md = out.read_text()
    assert "## Row 5 against lm_weight" in md and "![tokens changed and flip rates against lm_weight](vis-lm_weight.png)" in md
    assert [ln.split("|")[1].strip() for ln in md.splitlines() if ln.startswith("| 0")][-3:] == ["0", "0.05", "0.5"]

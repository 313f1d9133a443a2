"""Word-substitution attacks on a trained model: robustness to real words, not only to steps in
embedding space.

`attack_model` is the one path both ``python -m lstm_adv.attack model=RUN`` and training's
``word_attack=`` take: it builds the model's `lstm_adv.data.synonyms.SubstitutionTable`, attacks a
seeded sample of the test split with a search of `lstm_adv.wordattack.search` (PWWS, or a beam
search), records every review as it goes (`lstm_adv.wordattack.runner`, resumable) and writes the
summary (``attack.json``) and the page of adversarial examples (``attack.md``, ``attack.html``).
"""

from pathlib import Path

from ..common.utils import atomic_write_json, atomic_write_text
from ..data.synonyms import SubstitutionTable, load_synonyms
from .page import html_page, markdown
from .runner import REVIEWS, _read_done, params_digest, run_attack
from .search import BEAM_MAX_QUERIES, SEARCHES

METHODS = tuple(SEARCHES)


def attack_model(model, test, words, n_words, out, method="pwws", n=1000, synonyms="wordnet", max_change=1.0,
                 seed=1, params=None, names=None, examples=10, model_name="", log=None, max_queries=BEAM_MAX_QUERIES):
    """Attack a compiled model on its run's test split; write the folder ``out``; return the summary.

    Parameters
    ----------
    model : lstm_adv.core.compiled.Model
        With the parameters to attack loaded (its ``f_pred_prob`` is queried).
    test : lstm_adv.data.Split
        The run's test split, as its own evaluation prepared it.
    words : list of str
        The run's id -> word list (``vocab.json``).
    n_words : int
    out : path
    method : {"pwws", "beam"}
    n, seed : int
        ``n`` test reviews drawn with ``seed`` (`runner.sample_indices`: the same for every model).
    synonyms : str
        ``wordnet`` or a TSV file's path (`lstm_adv.data.synonyms.load_synonyms`).
    max_change : float
        The most words changed, as a fraction of a review's words.
    max_queries : int
        The beam search's query budget a review (a review whose next step would pass it holds).
    params : dict, optional
        The parameters, to tie the attack folder to the model (`runner.params_digest`).
    names : list of str, optional
        Class names for the page (default: the class ids).
    """
    table = SubstitutionTable(load_synonyms(synonyms), words, n_words)
    settings = {"method": method, "n": int(min(n, len(test))), "seed": int(seed), "max_change": float(max_change),
                "synonyms": table.source.name, "synonyms_sha256": table.source.sha256,
                "model": params_digest(params) if params is not None else None}
    if method == "beam":
        settings["max_queries"] = int(max_queries)
    summary = run_attack(out, model.f_pred_prob, test, table, settings, method, max_change, log,
                         search_probs=ProjectedProbs(model))
    out = Path(out)
    atomic_write_json(out / "attack.json", summary)
    records = _read_done(out / REVIEWS, log or (lambda line: None))
    K = len(records[0]["clean_probs"]) if records else 2
    names = [str(x) for x in names] if names else [str(k) for k in range(K)]
    atomic_write_text(out / "attack.md", markdown(records, summary, words, names, model_name, examples))
    atomic_write_text(out / "attack.html", html_page(records, summary, words, names, model_name, examples))
    return summary


class ProjectedProbs:
    """A model's class probabilities from its per-word input projections (``prob_fn(x, mask)``).

    ``Model.input_projection()`` once, then each batch is a row look-up and the recurrence
    (`lstm_adv.core.compiled.Model.f_prob_projected`): the product of every token's embedding with
    the encoder's input weights, most of a forward pass's arithmetic, is done once per word.
    Equal to ``f_pred_prob`` to float rounding (tests/test_word_attack.py).
    """

    def __init__(self, model):
        self.table = model.input_projection()
        self.f = model.f_prob_projected

    def __call__(self, x, mask):
        return self.f(self.table[x], mask)


def default_folder(run_path, method, n, seed, max_change, params="best", max_queries=BEAM_MAX_QUERIES):
    """Where an attack of a run goes unless told: ``RUN/word_attack/METHOD-nN-seedS[-maxM][-qQ][-last]``,
    one folder per setting, so that attacks of other settings never meet in one folder."""
    name = (f"{method}-n{n}-seed{seed}" + (f"-max{max_change:g}" if max_change < 1 else "")
            + (f"-q{max_queries}" if method == "beam" and max_queries != BEAM_MAX_QUERIES else "")
            + ("-last" if params == "last" else ""))
    return Path(run_path) / "word_attack" / name


def summary_line(s):
    """One line for a log: accuracy clean -> under attack, success rate, words changed, speed."""
    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}%"

    return (f"word attack {s['method']} ({s['n']} reviews): accuracy {s['clean_acc']:.3f} -> {s['adv_acc']:.3f}, "
            f"{pct(s['success_rate'])} of the right ones flipped, {pct(s['words_changed'])} of their words changed, "
            f"{s['queries'] or 0:.0f} queries and {s['seconds'] / max(s['n'], 1):.3f} s per review"
            + (f"; {s['held']['max_queries']} held only by the query budget" if (s.get("held") or {}).get("max_queries")
               else ""))

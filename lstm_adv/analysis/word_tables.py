"""The grouped table's word-attack section: accuracy under real word substitutions, per setting.

For runs whose metrics.json has ``word_attack`` (training's ``word_attack=``, `lstm_adv.wordattack`):
per setting and attack, the clean accuracy on the attacked sample, the accuracy under attack, the
success rate (flipped / right), the fraction of words changed, mean ± sd over runs, and a Welch
test of the accuracy under attack against the plain runs.
"""

import numpy as np

from ..config import FIELDS
from .summary import compare, mean_sd

#: Grouping keys that describe the setting a model is trained in rather than its method: a method's
#: runs are compared with the plain runs of the same setting.
SETTING_KEYS = ("maxlen_mode", "maxlen", "max_epochs", "preset", "data", "n_words", "wdim", "hdim")
FIGURES = (("clean_acc", "clean acc"), ("adv_acc", "acc under attack"), ("success_rate", "success rate"),
           ("words_changed", "words changed"))


def _is_default(key, value):
    return value in (None, "-") or key not in FIELDS or value == FIELDS[key].default


#: The methods that train at eps 0 (their strength is a key of their own): a group with one of them on
#: is a method, not plain, although its eps is 0.
EPS_FREE_METHODS = ("ascc", "synonym_aug")


def is_plain(keys, label, eps):
    """Whether a group is plain: eps 0 and no method that trains at eps 0 (ASCC, augmentation) on.

    A setting such as normalised embeddings at eps 0 (``emb_norm=1``) is plain: no adversarial or
    substitution term is trained.
    """
    return eps == 0 and all(_is_default(k, v) for k, v in zip(keys, label) if k in EPS_FREE_METHODS)


def setting_of(keys, label):
    return tuple(v for k, v in zip(keys, label) if k in SETTING_KEYS)


def _cell(values):
    m, sd = mean_sd(values)
    return (f"{m:.3f}" + (f" ± {sd:.3f}" if len(values) > 1 else "")) if values else ""


def word_attack_markdown(groups, keys, setting, eps_label, table, p_text):
    """The section (a list of Markdown lines; empty when no run has a word attack).

    Parameters
    ----------
    groups : dict (label tuple, eps) -> list of run dicts (`lstm_adv.analysis.runs.from_record`)
    keys : list of str
    setting, eps_label, table, p_text : callables of `lstm_adv.analysis.tables` (label text, eps text,
        Markdown table, p-value text), passed in so both sections read alike.
    """
    per = {}   # (group key, method) -> list of summaries
    for key, rs in groups.items():
        for r in rs:
            if r["status"] != "ok":
                continue
            for method, s in (r.get("word_attack") or {}).items():
                if isinstance(s, dict) and s.get("adv_acc") is not None:
                    per.setdefault((key, method), []).append(s)
    if not per:
        return []
    plain = {}
    for (key, method), ss in per.items():
        if is_plain(keys, *key):
            plain.setdefault((setting_of(keys, key[0]), method), []).extend(s["adv_acc"] for s in ss)
    rows = []
    for (key, method), ss in sorted(per.items(), key=lambda kv: (kv[0][1], str(kv[0][0][0]), kv[0][0][1])):
        label, eps = key
        cells = [_cell([s[f] for s in ss if s.get(f) is not None]) for f, _ in FIGURES]
        base = plain.get((setting_of(keys, label), method), [])
        adv = [s["adv_acc"] for s in ss]
        p = compare(adv, base)[0] if base and not is_plain(keys, *key) else None
        diff = f"{np.mean(adv) - np.mean(base):+.3f}" if base and not is_plain(keys, *key) else ""
        n = ss[0].get("n")
        rows.append([setting(keys, label), eps_label(eps), method, f"{len(ss)}", f"{n}", *cells, diff,
                     p_text(p) if p is not None else ""])
    out = ["", "## Accuracy under word substitutions", "",
           "Each run's word attacks (`word_attack=`: WordNet synonyms in the model's vocabulary, stopwords never "
           "changed) on a seeded sample of test reviews, the same for every run: clean accuracy on the sample, "
           "accuracy under attack, success rate (flipped / right), fraction of a flipped review's words "
           "changed; mean ± sd over runs. Against plain: the difference in accuracy under attack from the "
           "plain runs (eps 0, neither ASCC nor augmentation) of the same setting, and its Welch p "
           "(n/a with fewer than 2 runs on a side).", ""]
    return out + table(["setting", "eps", "attack", "runs", "reviews", *(name for _, name in FIGURES),
                        "vs plain", "Welch p"], rows)

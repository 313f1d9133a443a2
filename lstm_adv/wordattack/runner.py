"""A word attack over a seeded sample of test reviews: per-review records as it goes, resumable.

`run_attack` attacks ``n`` test reviews drawn by `sample_indices` and writes into its folder:

- ``attack_settings.json``: what the attack is (method, synonyms, sample, model digest); a rerun
  into a folder holding another attack's settings is refused, never mixed;
- ``reviews.jsonl``: one JSON line per review, appended and flushed as each ends: its test index,
  label, clean prediction and probabilities, whether it was attacked (the model had it right) and
  flipped, why its search stopped (``stop``), the original and adversarial ids, words changed,
  model queries and seconds. A rerun with the same settings reads the complete lines, drops a line
  cut by a kill (said on stderr), and goes on from the next review: the searches are
  deterministic, so the file ends the same;
- the summary (`summarize`): method, synonym source, n, clean accuracy, accuracy under attack,
  success rate (flipped / right), mean fraction of words changed over the successes, mean queries
  per attacked review, reviews per second (of the attack's own time, resumed parts summed), and
  why the right reviews that held were not flipped (``held``: a beam search's query budget, or
  every substitution tried).
"""

import functools
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from ..common import faults
from ..common.errors import UserError
from ..common.utils import atomic_write_json, make_rng
from .search import SEARCHES, batch_probs

REVIEWS = "reviews.jsonl"
SETTINGS = "attack_settings.json"


def sample_indices(n_test, n, seed):
    """The test reviews attacked: ``n`` of ``n_test`` (all if n >= n_test), drawn from a stream of
    ``seed`` that does not depend on the model's own seed, sorted (so every model of a study is
    attacked on the same reviews)."""
    if n >= n_test:
        return np.arange(n_test)
    return np.sort(make_rng(seed, "word_attack_sample").permutation(n_test)[:n])


def params_digest(params):
    """A short SHA-256 of a model's parameters (names, shapes and bytes), to tie an attack to its model."""
    h = hashlib.sha256()
    for k in sorted(params):
        v = np.ascontiguousarray(params[k])
        h.update(f"{k}{v.shape}{v.dtype}".encode())
        h.update(v.tobytes())
    return h.hexdigest()[:16]


def _read_done(path, log):
    """The complete records of ``reviews.jsonl`` (a line cut by a kill is dropped and said)."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    done = []
    for k, line in enumerate(lines):
        if not line:
            continue
        try:
            done.append(json.loads(line))
        except json.JSONDecodeError:
            if k == len(lines) - 1:   # the last line, cut by a kill: rewrite the file without it
                log(f"{path}: its last line was cut (a killed attack); attacking that review again")
                path.write_bytes(b"\n".join(lines[:k]) + (b"\n" if k else b""))
                break
            raise UserError(f"{path}, line {k + 1}: not a JSON record; delete the folder to attack again") from None
    return done


def run_attack(out, model_probs, test, table, settings, method="pwws", max_change=1.0, log=None, search_probs=None):
    """Attack the sampled test reviews, resuming from ``out/reviews.jsonl``; returns the summary.

    Parameters
    ----------
    out : path
        The attack's folder (made if missing).
    model_probs : callable (x (T, B), mask (T, B)) -> probs (B, K)
        The model's ``f_pred_prob``.
    test : lstm_adv.data.Split
        The run's test split, preprocessed as its own evaluation.
    table : lstm_adv.data.synonyms.SubstitutionTable
    settings : dict
        What identifies the attack (method, n, seed, max_change, model digest, synonyms): written to
        ``attack_settings.json``; a folder holding other settings is refused. Must hold ``n`` and ``seed``.
    search_probs : callable like ``model_probs``, optional
        What the search queries (`lstm_adv.wordattack.ProjectedProbs`: the same model, faster, equal
        to float rounding); the clean prediction and the verdict on the adversarial review are
        always ``model_probs``'s.
    """
    log = log or (lambda line: print(line, file=sys.stderr))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / SETTINGS
    if saved.exists():
        try:
            old = json.loads(saved.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        if old != settings:
            diff = sorted(k for k in set(settings) | set(old or {}) if (old or {}).get(k) != settings.get(k))
            raise UserError(f"{out} holds an attack with other settings ({', '.join(diff) or 'unreadable'}); "
                            "give another out= or delete that folder")
    else:
        atomic_write_json(saved, settings)
    search = SEARCHES[method]
    if "max_queries" in settings:   # the beam search's budget a review (`search.BEAM_MAX_QUERIES` unless told)
        search = functools.partial(search, max_queries=settings["max_queries"])
    idx = sample_indices(len(test), settings["n"], settings["seed"])
    path = out / REVIEWS
    done = _read_done(path, log)
    if done and [r["test_index"] for r in done] != idx[:len(done)].tolist():
        raise UserError(f"{path} holds other reviews than this attack's sample; delete the folder to attack again")
    if done:
        log(f"word attack: resuming after {len(done)} of {len(idx)} reviews ({path})")
    with open(path, "a", encoding="utf-8") as fh:
        for k in range(len(done), len(idx)):
            record = attack_one(model_probs, search, test.seqs[idx[k]], int(test.labels[idx[k]]), table, max_change,
                                search_probs)
            record = {"review": k, "test_index": int(idx[k]), **record}
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            done.append(record)
            faults.reached("review", k + 1)   # tests only: LSTM_ADV_FAULT=kill@review=N
    return summarize(done, settings, table)


def attack_one(model_probs, search, ids, label, table, max_change, search_probs=None):
    """One review's record (without its index): the clean prediction, then the search if it is right.

    The clean prediction and the adversarial review's are ``model_probs``'s (the model's own
    ``f_pred_prob``); the search may query ``search_probs`` (equal to float rounding): a review it
    flips that the model itself does not is recorded as not flipped.
    """
    t0 = time.perf_counter()
    ids = np.asarray(ids, dtype=np.int64)
    clean = batch_probs(model_probs, ids[None])[0]
    record = {"label": label, "clean_pred": int(clean.argmax()), "clean_probs": _round(clean),
              "attacked": bool(clean.argmax() == label), "flipped": False, "n_words": len(ids), "n_changed": 0,
              "queries": 1, "orig": ids.tolist(), "adv": None, "adv_probs": None}
    if record["attacked"]:
        got = search(search_probs or model_probs, ids, label, table, max_change=max_change, clean_probs=clean)
        probs, flipped = got.probs, bool(got.flipped)
        if flipped:
            probs = batch_probs(model_probs, np.asarray(got.adv)[None])[0]
            flipped = bool(probs.argmax() != label)
        # a flip of search_probs that the model itself does not make: the search ended, the review held
        stop = got.stop if flipped or not got.flipped else "unconfirmed"
        record.update(flipped=flipped, n_changed=int(got.n_changed) if flipped else 0, queries=1 + int(got.queries),
                      adv=np.asarray(got.adv).tolist() if flipped else None, adv_probs=_round(probs), stop=stop)
    record["seconds"] = round(time.perf_counter() - t0, 4)
    return record


def _round(p):
    return [round(float(v), 6) for v in p]


def summarize(records, settings, table):
    """The attack's figures from its per-review records (see the module docstring); a figure with
    nothing to average (no review flipped, none right) is None, never NaN."""
    n = len(records)
    right = [r for r in records if r["attacked"]]
    flipped = [r for r in right if r["flipped"]]
    seconds = sum(r["seconds"] for r in records)
    return {"method": settings.get("method"), **{k: v for k, v in table.info().items() if k != "n_words"},
            "n": n, "seed": settings.get("seed"), "max_change": settings.get("max_change"),
            **({"max_queries": settings["max_queries"]} if "max_queries" in settings else {}),
            "clean_acc": round(len(right) / n, 6) if n else None,
            "adv_acc": round((len(right) - len(flipped)) / n, 6) if n else None,
            "success_rate": round(len(flipped) / len(right), 6) if right else None,
            "words_changed": round(float(np.mean([r["n_changed"] / r["n_words"] for r in flipped])), 6)
            if flipped else None,
            "queries": round(float(np.mean([r["queries"] for r in right])), 2) if right else None,
            "reviews_per_s": round(n / seconds, 4) if seconds > 0 else None,
            "seconds": round(seconds, 2), "n_right": len(right), "n_flipped": len(flipped),
            "held": held_by_stop(right)}


def held_by_stop(right):
    """Why the right reviews that held were not flipped: ``{stop: count}`` (`search.STOPS`, or
    "unconfirmed"), or None where a record predates the ``stop`` field (attacks before 2026-12-07)."""
    held = [r for r in right if not r["flipped"]]
    if any("stop" not in r for r in held):
        return None
    return {k: sum(r["stop"] == k for r in held) for k in sorted({r["stop"] for r in held})}

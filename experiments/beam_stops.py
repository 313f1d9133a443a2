"""Why did the reviews a beam search left unflipped hold: its query budget, or every substitution
tried? And how does it compare with PWWS on the same reviews?

    python experiments/beam_stops.py RUN [...] [folder=beam-n200-seed1] [pwws=pwws-n1000-seed1]

RUN: a run folder with a beam attack in ``RUN/word_attack/FOLDER`` (``word_attack=beam:N`` or
``python -m lstm_adv.attack method=beam``). A record written since 2026-12-07 says why its search
stopped (``stop``); an older one is judged here from its review and the run's synonym table,
without the model (``search.beam``'s rules: ``width`` reviews kept, every step extends each by one
more substitution, a step that would pass ``max_queries`` is not taken):

- max_queries, when its queries are fewer than the fewest that every step of the search would take
  (so it stopped early, and without a flip that leaves the query budget);
- all_words, when its queries plus the largest step the search could take next stay within the
  budget (so the budget did not stop it, and it ran every step: every word it could change, changed);
- undetermined otherwise.

A flip of the search's projected model that the model itself does not make (``unconfirmed``,
equal to float rounding, so rare) also leaves a record unflipped; an old record of one is judged
as above.

Beside it, the accuracy on the beam's reviews under the beam search, under PWWS (the run's
``pwws=`` attack, whose sample holds the beam's: the same seed, more reviews) and under both (a
review counts only if neither attack flipped it).
"""

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from lstm_adv.data.synonyms import SubstitutionTable, load_synonyms
from lstm_adv.rundir import read_run, read_vocab
from lstm_adv.wordattack.search import BEAM_WIDTH, budget


def judge(ids, queries, table, max_queries, max_change=1.0, width=BEAM_WIDTH):
    """Why an old record's beam search ended without a flip: "max_queries", "all_words" or
    "undetermined" (see the module docstring). ``queries``: the record's, the clean query included."""
    ids = np.asarray(ids, dtype=np.int64)
    q = queries - 1   # the runner counts the clean prediction; the search's own queries start at 0
    subs = np.array([len(table.subs[w]) for w in ids[np.flatnonzero(table.has_substitutes(ids))]], dtype=np.int64)
    if len(subs) == 0:
        return "no_substitutes"
    steps = min(budget(len(ids), max_change), len(subs))
    total = int(subs.sum())
    largest_done = np.concatenate([[0], np.cumsum(np.sort(subs)[::-1])])   # the most substitutes k done words take away
    fewest, kept, step = 0, 1, total
    for k in range(1, steps + 1):
        step = kept * (total - int(largest_done[k - 1]))
        fewest += step
        kept = min(width, step)
    if q < fewest:
        return "max_queries"
    if q + width * total <= max_queries:
        return "all_words"
    return "undetermined"


def read_records(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def against_pwws(beam_records, pwws_records):
    """Accuracy on the beam's reviews: ``(under the beam, under PWWS, under both)``; the PWWS records
    must hold every review of the beam's (ValueError if not)."""
    pwws = {r["test_index"]: r for r in pwws_records}
    missing = [r["test_index"] for r in beam_records if r["test_index"] not in pwws]
    if missing:
        raise ValueError(f"the PWWS attack lacks {len(missing)} of the beam's reviews (test index {missing[0]})")
    n = len(beam_records)

    def held(r):
        return r["attacked"] and not r["flipped"]

    return (sum(held(r) for r in beam_records) / n, sum(held(pwws[r["test_index"]]) for r in beam_records) / n,
            sum(held(r) and held(pwws[r["test_index"]]) for r in beam_records) / n)


def stops(run, folder="beam-n200-seed1"):
    """``Counter`` of why the right, unflipped reviews of ``run``'s beam attack held."""
    out = Path(run) / "word_attack" / folder
    settings = json.loads((out / "attack_settings.json").read_text())
    records = read_records(out / "reviews.jsonl")
    table = SubstitutionTable(load_synonyms(settings.get("synonyms", "wordnet")), read_vocab(run),
                              read_run(run).saved["n_words"])
    held = Counter()
    for r in records:
        if r["attacked"] and not r["flipped"]:
            held[r.get("stop") or judge(r["orig"], r["queries"], table, settings["max_queries"],
                                        settings.get("max_change", 1.0))] += 1
    right = sum(r["attacked"] for r in records)
    return len(records), right, held, records


def main(argv):
    runs = [a for a in argv if not a.startswith(("folder=", "pwws="))]
    folder = next((a.split("=", 1)[1] for a in argv if a.startswith("folder=")), "beam-n200-seed1")
    pwws = next((a.split("=", 1)[1] for a in argv if a.startswith("pwws=")), "pwws-n1000-seed1")
    if not runs:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    print("| run | reviews | right | held | held: query budget | held: every word changed | no substitutes "
          "| undetermined | accuracy: beam / PWWS / both |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        try:
            n, right, held, records = stops(run, folder)
            acc = against_pwws(records, read_records(Path(run) / "word_attack" / pwws / "reviews.jsonl"))
        except (OSError, ValueError, KeyError) as err:
            print(f"error: {run}: no readable beam attack in word_attack/{folder} or PWWS attack in "
                  f"word_attack/{pwws} ({err})", file=sys.stderr)
            return 2
        print(f"| {Path(run).name} | {n} | {right} | {sum(held.values())} | {held['max_queries']} | "
              f"{held['all_words']} | {held['no_substitutes']} | {held['undetermined'] + held['unconfirmed']} | "
              + " / ".join(f"{a:.3f}" for a in acc) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The substitution sets an ASCC run trained on, as a synonyms TSV (``synonyms=PATH``), so that an
attack can be held to them: does PWWS flip an ASCC model through substitutes its capped sets left out?

    python experiments/ascc_sets_tsv.py RUN out=FILE [reviews=REVIEWS_JSONL ...]
    python -m lstm_adv.attack model=RUN synonyms=FILE n=1000 out=DIR

RUN: an ``ascc=1`` training run (its ``vocab.json`` and ``config.json``: ``n_words``, ``synonyms``,
``ascc_max_subs``). Each vocabulary word with substitutes gets one line: the word, then the first
``ascc_max_subs - 1`` of its substitutes, in the order `SubstitutionTable.padded` keeps them (a user
TSV is read as written, without lemmatising, so the attack sees exactly these sets).
``reviews=``: an attack's ``reviews.jsonl`` (of this run or another with the same vocabulary):
printed, how many of its flipped reviews used a substitute outside these sets, and the share of
their substitutions that are.
"""

import json
import os
import sys

from lstm_adv.data.synonyms import SubstitutionTable, load_synonyms


def main(argv):
    runs = [a for a in argv if not a.startswith(("out=", "reviews="))]
    out = next((a.split("=", 1)[1] for a in argv if a.startswith("out=")), "")
    reviews = [a.split("=", 1)[1] for a in argv if a.startswith("reviews=")]
    if len(runs) != 1 or not out:
        print("usage: python experiments/ascc_sets_tsv.py RUN out=FILE", file=sys.stderr)
        return 2
    run = runs[0]
    try:
        with open(os.path.join(run, "config.json")) as f:
            cfg = json.load(f)["config"]
        with open(os.path.join(run, "vocab.json")) as f:
            vocab = json.load(f)
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {run} is not a readable training run ({err})", file=sys.stderr)
        return 2
    words = vocab["words"] if isinstance(vocab, dict) else vocab
    table = SubstitutionTable(load_synonyms(cfg.get("synonyms") or "wordnet"), words, cfg["n_words"])
    keep = int(cfg.get("ascc_max_subs") or 16) - 1
    with open(out + ".tmp", "w") as f:
        for i, subs in enumerate(table.subs):
            if len(subs):
                f.write("\t".join([words[i]] + [words[j] for j in subs[:keep]]) + "\n")
    os.replace(out + ".tmp", out)
    print(f"wrote {out}: {sum(len(s) > 0 for s in table.subs)} words, at most {keep} substitutes each")
    sets = [set(s[:keep].tolist()) for s in table.subs]
    for path in reviews:
        flipped = outside_reviews = changes = outside = 0
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                if not r.get("flipped"):
                    continue
                pairs = [(a, b) for a, b in zip(r["orig"], r["adv"]) if a != b]
                n_out = sum(b not in sets[a] for a, b in pairs)
                flipped, changes, outside = flipped + 1, changes + len(pairs), outside + n_out
                outside_reviews += n_out > 0
        print(f"{path}: {outside_reviews} of {flipped} flipped reviews used a substitute outside the sets; "
              f"{outside} of {changes} substitutions ({outside / max(changes, 1):.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

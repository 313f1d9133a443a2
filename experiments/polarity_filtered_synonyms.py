"""WordNet's substitutes less those that change a word's sentiment in the training reviews, as a
synonyms TSV (``synonyms=PATH``): how much of PWWS's success comes from substitutions that do not
keep the label?

    python experiments/polarity_filtered_synonyms.py RUN out=FILE [tau=1.0] [reviews=REVIEWS_JSONL ...]
    python -m lstm_adv.attack model=RUN synonyms=FILE n=1000 out=DIR

WordNet's synonym sets know no word sense: "amazing" reaches "awful" (awe-inspiring), "bad" reaches
"big" (a big loss). Counter-fitted neighbours (Jia et al. 2019, the sets of Dong et al.'s ASCC
figures) push antonyms apart; this filter is a crude, offline stand-in. A word's polarity is its
log-odds of appearing in a positive rather than a negative training review of the run's corpus
(as the model saw them; add-one smoothed, each class's token total normalised away); a substitute
is kept only if its polarity is within ``tau`` of the word's. Each vocabulary word with substitutes
left gets one line (the word, then its kept substitutes; a user TSV is read as written).
``reviews=``: an attack's ``reviews.jsonl``: printed, how many of its flipped reviews used a
substitution the filter drops.
"""

import json
import os
import sys

import numpy as np


def polarity(seqs, labels, n_words):
    """Per word id (< ``n_words``): log-odds of a token being in a positive (label 1) review rather
    than a negative one, add-one smoothed, the class totals normalised away. Shape (n_words,)."""
    counts = np.ones((2, n_words))
    for seq, label in zip(seqs, labels):
        ids = np.asarray(seq)
        np.add.at(counts[int(int(label) == 1)], ids[ids < n_words], 1)
    rates = counts / counts.sum(axis=1, keepdims=True)
    return np.log(rates[1]) - np.log(rates[0])


def keep(subs, pol, tau):
    """The substitutes of each word whose polarity is within ``tau`` of the word's."""
    return [s[np.abs(pol[s] - pol[i]) <= tau] if len(s) else s for i, s in enumerate(subs)]


def main(argv):
    keys = ("out=", "tau=", "reviews=")
    args = dict(a.split("=", 1) for a in argv if a.startswith(keys[:2]))
    reviews = [a.split("=", 1)[1] for a in argv if a.startswith("reviews=")]
    runs = [a for a in argv if not a.startswith(keys)]   # a run's folder may hold "=" (eps=0.5)
    if len(runs) != 1 or "out" not in args:
        print("usage: python experiments/polarity_filtered_synonyms.py RUN out=FILE [tau=1.0] [reviews=...]",
              file=sys.stderr)
        return 2
    try:
        tau = float(args.get("tau", 1.0))
    except ValueError:
        print(f"error: tau={args['tau']} must be a number", file=sys.stderr)
        return 2
    from lstm_adv.analysis.visualize.inputs import load_data, load_run
    from lstm_adv.common.errors import UserError
    from lstm_adv.data.synonyms import SubstitutionTable, load_synonyms
    try:
        run = load_run(runs[0])
        data = load_data(run.cfg, run.words, run.data_cache)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if set(np.unique(data.train.labels).tolist()) - {0, 1}:
        print("error: polarity needs a two-class corpus (labels 0 and 1)", file=sys.stderr)
        return 2
    table = SubstitutionTable(load_synonyms(run.cfg.synonyms or "wordnet"), run.words, run.n_words)
    pol = polarity(data.train.seqs, data.train.labels, run.n_words)
    kept = keep(table.subs, pol, tau)
    out = args["out"]
    with open(out + ".tmp", "w") as f:
        for i, subs in enumerate(kept):
            if len(subs):
                f.write("\t".join([run.words[i]] + [run.words[j] for j in subs]) + "\n")
    os.replace(out + ".tmp", out)
    before = sum(len(s) for s in table.subs)
    after = sum(len(s) for s in kept)
    print(f"wrote {out}: {sum(len(s) > 0 for s in kept)} words with substitutes (WordNet: "
          f"{sum(len(s) > 0 for s in table.subs)}); {after} of {before} substitutes kept at tau={tau:g}")
    sets = [set(s.tolist()) for s in kept]
    for path in reviews:
        flipped = dropped_reviews = 0
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                if r.get("flipped"):
                    flipped += 1
                    dropped_reviews += any(a != b and b not in sets[a] for a, b in zip(r["orig"], r["adv"]))
        print(f"{path}: {dropped_reviews} of {flipped} flipped reviews used a substitution the filter drops")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

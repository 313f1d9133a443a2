"""Two small seeded corpora a new user might bring (issue 44), written as CSV files for ``data=PATH``.

``python experiments/newcomer_corpora.py OUT_DIR`` writes:

- ``small3.csv``: 3 classes, 300 training texts of 8-30 common words plus two of their class's
  words each, and 60 test texts (a ``split`` column);
- ``mixed3.csv``: 3 classes, 1,500 texts of 20 tokens, 2 of them class words among 18 drawn
  from a 300-word vocabulary (no ``split`` column: ``test_portion`` holds out 300).

The class of each text is drawn at random, so the classes are not balanced; the README's "Your
own data" reports what ``preset=miyato`` and ``eps=0`` reach on them. Nothing is read: the files
are the same on every machine (numpy's seeded generator).
"""

import csv
import sys
from pathlib import Path

import numpy as np

SEED = 44
CLASSES = ("alpha", "beta", "gamma")


def _words(prefix, n):
    return [f"{prefix}{i}" for i in range(n)]


def small3(rng):
    """300 training and 60 test rows: 8-30 of 40 common words, plus 2 of the class's 4 words."""
    common, marks = _words("w", 40), {c: _words(c, 4) for c in CLASSES}
    rows = []
    for split, n in (("train", 300), ("test", 60)):
        for _ in range(n):
            label = CLASSES[rng.integers(len(CLASSES))]
            tokens = list(rng.choice(common, size=int(rng.integers(8, 31)))) + list(rng.choice(marks[label], size=2))
            rng.shuffle(tokens)
            rows.append((" ".join(tokens), label, split))
    return ["text", "label", "split"], rows


def mixed3(rng):
    """1,500 rows of 20 tokens: 18 of 300 words, 2 of the class's 10 words."""
    common, marks = _words("v", 300), {c: _words(c, 10) for c in CLASSES}
    rows = []
    for _ in range(1500):
        label = CLASSES[rng.integers(len(CLASSES))]
        tokens = list(rng.choice(common, size=18)) + list(rng.choice(marks[label], size=2))
        rng.shuffle(tokens)
        rows.append((" ".join(tokens), label))
    return ["text", "label"], rows


def main(argv):
    if len(argv) != 1:
        print("usage: python experiments/newcomer_corpora.py OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, make in (("small3", small3), ("mixed3", mixed3)):
        header, rows = make(np.random.default_rng([SEED, len(name)]))
        with open(out / f"{name}.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
        print(f"wrote {out / name}.csv: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

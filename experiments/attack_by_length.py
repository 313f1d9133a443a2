"""A word attack's figures by review length: are long reviews (beyond the tokens a model trained
on) easier to flip?

    python experiments/attack_by_length.py REVIEWS_JSONL [...] [edges=100,150,215,335]

REVIEWS_JSONL: an attack's ``reviews.jsonl`` (`python -m lstm_adv.attack`, training's
``word_attack=``). For each length bin (a review's words, as attacked; ``edges`` split them), per
file: the reviews, the clean accuracy, the accuracy under attack and the share of the right ones
flipped.
"""

import json
import sys


def by_length(records, edges):
    """Rows ``(bin label, reviews, clean accuracy, accuracy under attack, flipped of right)``."""
    bounds = [0, *edges, float("inf")]
    rows = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        rs = [r for r in records if lo <= r["n_words"] < hi]
        right = [r for r in rs if r["attacked"]]
        flipped = [r for r in right if r["flipped"]]
        label = f"[{lo}, {hi})" if hi != float("inf") else f">= {lo}"
        rows.append((label, len(rs), len(right) / len(rs) if rs else None,
                     (len(right) - len(flipped)) / len(rs) if rs else None,
                     len(flipped) / len(right) if right else None))
    return rows


def main(argv):
    files = [a for a in argv if not a.startswith("edges=")]
    edges_arg = next((a.split("=", 1)[1] for a in argv if a.startswith("edges=")), "100,150,215,335")
    try:
        edges = sorted(int(e) for e in edges_arg.split(","))
    except ValueError:
        print(f"error: edges={edges_arg} must be comma-separated integers", file=sys.stderr)
        return 2
    if not files:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    for path in files:
        try:
            with open(path) as f:
                records = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError) as err:
            print(f"error: {path} is not a readable reviews.jsonl ({err})", file=sys.stderr)
            return 2
        print(f"{path}:")
        print("| words | reviews | clean acc | acc under attack | flipped of right |\n|---|---|---|---|---|")
        for label, n, clean, adv, rate in by_length(records, edges):
            def f(v):
                return "-" if v is None else f"{v:.3f}"
            print(f"| {label} | {n} | {f(clean)} | {f(adv)} | {f(rate)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

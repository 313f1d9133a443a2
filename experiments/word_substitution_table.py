"""The word-substitution study's per-run table, from the published runs' metrics.json.

    python experiments/word_substitution_table.py [DIR]

DIR: the study's published runs (default ``experiments/results/word_substitution``). One Markdown
row per finished run, in the study's method order: test error, PWWS on the 1,000 seeded reviews
(clean accuracy -> accuracy under attack, the right reviews flipped, the words changed, queries a
review), the beam search on 200 where the run has it, and the training's wall time. The page's
table is this output; mean ± sd and the Welch tests are ``python -m lstm_adv.results``'s
(``ablation.md``).
"""

import json
import sys
from pathlib import Path

#: The study's methods, in the page's order (run folders are ``<method>_seed=<seed>``).
METHODS = (("plain", "plain"), ("paper", "the paper's sign step (eps=1)"),
           ("miyato", "Miyato's L2 step (eps=3)"), ("vat_unlab", "VAT with unlabelled reviews (eps=3)"),
           ("augment", "synonym augmentation (0.5)"), ("ascc", "ASCC"),
           ("table1_eps=0.0", "Table 1 model, eps 0"), ("table1_eps=0.5", "Table 1 model, eps 0.5"))


def _attack(s):
    if not s:
        return "-", "-", "-", "-"
    flipped = f"{100 * s['success_rate']:.1f}% ({s['n_flipped']} of {s['n_right']})" if s.get("n_right") else "-"
    words = f"{100 * s['words_changed']:.1f}%" if s.get("words_changed") is not None else "-"
    return f"{s['clean_acc']:.3f} -> {s['adv_acc']:.3f}", flipped, words, f"{s['queries']:.0f}"


def rows(folder):
    """``(method label, run name, cells...)`` for each finished run under ``folder``."""
    out = []
    runs = {p.name: p for p in Path(folder).iterdir() if (p / "metrics.json").is_file()}
    for prefix, label in METHODS:
        names = sorted((n for n in runs if n.rsplit("_seed=", 1)[0] == prefix),
                       key=lambda n: int(n.rsplit("=", 1)[1]))
        for name in names:
            m = json.loads((runs[name] / "metrics.json").read_text())
            if m.get("status") != "ok":
                continue
            attacks = m.get("word_attack") or {}
            pwws = _attack(attacks.get("pwws"))
            beam = attacks.get("beam")
            out.append((label, f"`{name}`", f"{m['test_err']:.3f}", *pwws,
                        f"{beam['clean_acc']:.3f} -> {beam['adv_acc']:.3f}" if beam else "-",
                        f"{m['wall_time_s'] / 60:.0f}"))
    return out


def main(argv):
    folder = Path(argv[0] if argv else "experiments/results/word_substitution")
    if not folder.is_dir():
        print(f"error: no such folder: {folder} (the study's published runs)", file=sys.stderr)
        return 2
    print("| model | run | test error | PWWS: accuracy clean -> under attack | flipped (of right) | words changed "
          "| queries a review | beam (200): clean -> under attack | training (min) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows(folder):
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Build the WordNet 3.0 synonym table shipped in ``lstm_adv/data/resources/`` (run once, by us).

    apt-get install wordnet-base        # Debian's WordNet 3.0 database files, /usr/share/wordnet
    python experiments/build_wordnet_synonyms.py [/usr/share/wordnet]

Writes, beside the package's other resources:

- ``wordnet_synonyms.tsv.gz``: one line per single-word lemma that has a synonym, ``lemma<TAB>syn
  syn ...``: every other single-word lemma of every synset the lemma is in (nouns, verbs,
  adjectives and adverbs together), sorted. This is the candidate set of PWWS (Ren et al. 2019,
  whose code asks ``nltk.corpus.wordnet.synsets(word)`` and keeps each synset's lemma names);
  multi-word lemmas (``new_york``) are left out, as a review's token is one word.
- ``wordnet_exceptions.tsv.gz``: WordNet's irregular inflections (``*.exc``: ``mice<TAB>mouse``),
  which `lstm_adv.data.synonyms.morphy` reads with WordNet's detachment rules to find a token's
  lemma, as nltk's ``morphy`` does.
- ``WORDNET_LICENSE``: WordNet 3.0's licence, which must accompany every copy.

Deterministic: the same database files give byte-identical files (gzip without a time stamp).
"""

import gzip
import re
import sys
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "lstm_adv" / "data" / "resources"
POS_FILES = ("noun", "verb", "adj", "adv")
LICENSE_TITLE = ("WordNet 3.0 licence (the header of its database files), for the synonym tables derived "
                 "from it in this folder:")


def synsets(dict_dir):
    """Yield each synset's lemma list (lowercase, the adjective markers ``(a)``/``(p)``/``(ip)`` cut)."""
    for pos in POS_FILES:
        with open(dict_dir / f"data.{pos}", encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):   # the licence header
                    continue
                fields = line.split()
                n = int(fields[3], 16)
                yield [re.sub(r"\(.*\)$", "", w).lower() for w in fields[4:4 + 2 * n:2]]


def build(dict_dir):
    table = defaultdict(set)
    for lemmas in synsets(dict_dir):
        single = [w for w in lemmas if "_" not in w and "-" not in w and w.isalpha()]
        for w in single:
            table[w].update(single)
    rows = []
    for w in sorted(table):
        others = sorted(table[w] - {w})
        if others:
            rows.append(f"{w}\t{' '.join(others)}\n")
    exceptions = []
    for pos in POS_FILES:
        with open(dict_dir / f"{pos}.exc", encoding="latin-1") as f:
            for line in f:
                form, *lemmas = line.split()
                if "_" in form or not lemmas:
                    continue
                exceptions.extend(f"{pos}\t{form}\t{lemma}\n" for lemma in lemmas if "_" not in lemma)
    return rows, exceptions


def write_gz(path, lines):
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write("".join(lines).encode("utf-8"))


def licence_text(dict_dir):
    """WordNet's licence, from the header every data file carries."""
    lines = [LICENSE_TITLE, ""]
    with open(dict_dir / "data.noun", encoding="latin-1") as f:
        for line in f:
            if not line.startswith("  "):
                break
            number, _, text = line.strip(" \n").partition(" ")
            lines.append(text.rstrip())
    return "\n".join(lines).rstrip() + "\n"


def main(argv):
    dict_dir = Path(argv[0] if argv else "/usr/share/wordnet")
    if not (dict_dir / "data.noun").exists():
        print(f"error: {dict_dir}/data.noun not found; apt-get install wordnet-base, or give the folder "
              "holding WordNet 3.0's data.* files", file=sys.stderr)
        return 2
    rows, exceptions = build(dict_dir)
    OUT.mkdir(parents=True, exist_ok=True)
    write_gz(OUT / "wordnet_synonyms.tsv.gz", rows)
    write_gz(OUT / "wordnet_exceptions.tsv.gz", exceptions)
    (OUT / "WORDNET_LICENSE").write_text(licence_text(dict_dir))
    print(f"{len(rows)} lemmas with synonyms, {len(exceptions)} irregular forms -> {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

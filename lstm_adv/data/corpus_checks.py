"""Counting and checking a user's corpus as its rows stream by (no tokenising): `RowTally`.

Every row read is counted, by split and class; every row or file not used is counted by why
(``n_skipped``: empty texts here, and what `lstm_adv.data.corpus_folder.list_folder` skipped), and
said in the log's data line and ``config.json``. `RowTally.finish` then refuses, before anything
is written, a corpus that would train on something other than the user meant:

- more than `MAX_SKIPPED_SHARE` of the texts skipped, or a class that loses every text;
- fewer than two classes in the training split;
- a class in valid or test that no training text has, or two labels that differ only in case
  or spaces (``pos`` and ``POS``): never merged or mapped in silence;
- labels mixing numbers and names, or naming one number twice.
"""

import difflib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..common.errors import UserError
from .corpus_folder import SKIP_REASONS
from .corpus_rows import SPLITS

#: The largest share of a corpus's texts that may be skipped (empty, not .txt, nested too deep)
#: before the run stops: past it the corpus is probably not read as the user meant.
MAX_SKIPPED_SHARE = 0.1
#: A text is empty unless it holds a character other than whitespace, control and format characters.
_VISIBLE = re.compile(r"[^\s\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202f\u2060-\u2064\ufeff]")
_INT_RE = re.compile(r"^[+-]?\d+$")
_REASONS = {"empty": "empty texts", **SKIP_REASONS}   # empty: blank, whitespace or control characters only
#: Reasons that count against `MAX_SKIPPED_SHARE`: texts a user may have meant to train on.
_TEXT_REASONS = ("empty", "not_txt", "nested")


def _variant(label):
    return " ".join(label.split()).casefold()


@dataclass
class RowTally:
    """What one pass over the rows learns besides the tokens: labels by split, skipped texts.

    ``skipped`` starts with a folder's `list_folder` counts; ``classes`` with its class folders
    (``{(split, label): folder}``), each of which must keep a text.
    """

    path: Path
    label_col: str
    skipped: Counter = field(default_factory=Counter)
    classes: dict = field(default_factory=dict)
    columns_ignored: set = field(default_factory=set)
    first: dict = field(default_factory=dict)       # (split, label) -> first place seen
    kept: Counter = field(default_factory=Counter)  # (split, label) -> texts kept
    lost: Counter = field(default_factory=Counter)  # (split, label) -> empty texts
    n_rows: int = 0

    @property
    def n_empty(self):
        return self.skipped["empty"]

    @property
    def splits(self):
        out = Counter()
        for (split, _), n in self.kept.items():
            out[split] += n
        return out

    def add(self, where, text, label, split):
        """Count one row; returns its split code, or None for a row to skip (empty text)."""
        if split is None:
            split = "train"   # no split column: test_portion holds texts out
        elif not split:
            raise UserError(f"{self._at(where)}: the split is empty; write train, test, valid or unlabelled in every "
                            "row of the split column (or drop the column: test_portion= then holds texts out)")
        split = split.lower()
        if split not in SPLITS:
            near = difflib.get_close_matches(split, list(SPLITS), n=1, cutoff=0.6)
            hint = f"did you mean {near[0]}? " if near else ""
            raise UserError(f"{self._at(where)}: split {split!r} is not one of {', '.join(SPLITS)}; {hint}fix the "
                            "split column (or leave it out: test_portion= then holds texts out)")
        self.n_rows += 1
        if split == "unlabelled":
            label = ""
        elif not label:
            raise UserError(f"{self._at(where)}: the label ({self.label_col!r}) is empty; give every text a label, "
                            "or mark unlabelled texts split=unlabelled")
        self.first.setdefault((split, label), where)
        if not _VISIBLE.search(text):
            self.drop(split, label)
            return None
        self.kept[(split, label)] += 1
        return SPLITS[split]

    def drop(self, split, label, kept=False):
        """Count a text as empty (``kept``: one `add` had kept, that the tokeniser left without tokens)."""
        if kept:
            self.kept[(split, label)] -= 1
        self.lost[(split, label)] += 1
        self.skipped["empty"] += 1

    def _at(self, where):
        return str(where) if isinstance(where, Path) else f"{self.path} line {where}"

    def _place(self, split, label):
        folder = self.classes.get((split, label))
        return str(folder) if folder is not None else self._at(self.first[(split, label)])

    def note(self):
        """The log's words on what was not read, e.g. ``skipped: 3 empty texts, 1 hidden ...``; "" if nothing."""
        parts = [f"{n} {_REASONS[r]}" for r, n in sorted(self.skipped.items()) if n]
        out = "skipped: " + ", ".join(parts) if parts else ""
        if self.columns_ignored:
            cols = "columns not read: " + ", ".join(sorted(map(repr, self.columns_ignored)))
            out = f"{out}; {cols}" if out else cols
        return out

    def info(self):
        """For the dataset's info (config.json): ``n_skipped`` by reason and the columns not read."""
        return {"n_skipped": {r: int(n) for r, n in sorted(self.skipped.items()) if n},
                "columns_ignored": sorted(self.columns_ignored)}

    def finish(self, n_kept=None):
        """The sorted label names, their kind (``"int"`` or ``"str"``) and ``{raw label: id}``,
        after every check on the whole corpus (the module docstring)."""
        labelled = {k: n for k, n in self.kept.items() if k[0] != "unlabelled"}
        labels = {}
        for (split, label) in sorted(self.first, key=lambda k: SPLITS[k[0]]):
            if split != "unlabelled":
                labels.setdefault(label, (split, label))
        n_kept = sum(self.kept.values())
        if self.n_rows == 0:
            raise UserError(f"{self.path} holds no texts; add rows (a header row, then one text per row)")
        if n_kept == 0:
            raise UserError(f"{self.path}: all {self.n_rows} texts are empty; check text_col= (the column holding the "
                            "texts)")
        self._check_skipped(n_kept)
        for key, folder in self.classes.items():
            if not self.kept.get(key):
                raise UserError(f"{folder} holds no text (no non-empty .txt file); add texts or remove the folder")
        for key, n in self.lost.items():
            if key[0] != "unlabelled" and not self.kept.get(key):
                raise UserError(f"{self.path}: every text of class {key[1]!r} in {key[0]} ({n}) is empty, from "
                                f"{self._place(*key)} on; fix the texts (check text_col=) or remove those rows")
        if not self.splits.get("train"):
            raise UserError(f"{self.path} has no training texts (all are split=test, valid or unlabelled); mark some "
                            "split=train")
        numeric = [lb for lb in labels if _INT_RE.match(lb)]
        if numeric and len(numeric) < len(labels):
            name = next(lb for lb in labels if not _INT_RE.match(lb))
            raise UserError(f"{self.path}: the label column {self.label_col!r} mixes numbers and names ({numeric[0]!r} "
                            f"at {self._place(*labels[numeric[0]])}, {name!r} at {self._place(*labels[name])}); "
                            "use one kind for every label")
        self._check_variants(labels)
        train = sorted(lb for (split, lb), n in labelled.items() if split == "train" and n)
        if len(labels) < 2:
            raise UserError(f"{self.path} has one class only ({', '.join(repr(lb) for lb in labels)}); a classifier "
                            f"needs at least two: check label_col={self.label_col}")
        if len(train) < 2:
            raise UserError(f"{self.path}: the training split holds one class only ({train[0]!r}; the others are in "
                            "valid or test only); a classifier needs at least two in train: move texts of the "
                            "others to train")
        check_seen_in_train(train, {k: n for k, n in labelled.items() if k[0] != "train" and n}, self._place)
        if numeric:
            ints = sorted(labels, key=int)
            if len({int(lb) for lb in ints}) < len(ints):
                raise UserError(f"{self.path}: the labels {ints} name one number twice (e.g. 1 and 01); write each "
                                "class one way")
            return [str(int(lb)) for lb in ints], "int", {lb: i for i, lb in enumerate(ints)}
        names = sorted(labels)
        return names, "str", {lb: i for i, lb in enumerate(names)}

    def _check_skipped(self, n_kept):
        dropped = sum(self.skipped[r] for r in _TEXT_REASONS)
        total = n_kept + dropped
        if dropped > MAX_SKIPPED_SHARE * total:
            why = ", ".join(f"{self.skipped[r]} {_REASONS[r]}" for r in _TEXT_REASONS if self.skipped[r])
            raise UserError(f"{self.path}: {dropped} of {total} texts would be skipped ({why}), more than "
                            f"{MAX_SKIPPED_SHARE:.0%}; the corpus is probably not read as you meant: fix or remove "
                            "those texts (check text_col=)")

    def _check_variants(self, labels):
        by_variant = {}
        for lb in sorted(labels):
            other = by_variant.setdefault(_variant(lb), lb)
            if other != lb:
                raise UserError(f"{self.path}: the labels {other!r} (at {self._place(*labels[other])}) and {lb!r} (at "
                                f"{self._place(*labels[lb])}) differ only in case or spaces; write each class one way")


def check_seen_in_train(train_labels, others, place, how=""):
    """Refuse a class of valid or test that the training split lacks.

    ``others`` maps ``(split, label)`` to its number of texts; ``place(split, label)`` says where
    its first text is; ``how`` adds why the split holds what it holds (a drawn hold-out).
    """
    for (split, label), n in sorted(others.items()):
        if label in train_labels:
            continue
        near = difflib.get_close_matches(label, list(train_labels), n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        texts = "1 text" if n == 1 else f"{n} texts"
        fix = "mark the test rows (a split column) or lower test_portion=" if how else "remove them"
        raise UserError(f"the class {label!r}{hint} has {texts} in {split}{how} (first: {place(split, label)}) but "
                        f"none in train: a model cannot learn it; add training texts of it, or {fix}")

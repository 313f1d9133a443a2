"""A corpus folder (``data=FOLDER``): which files are its texts, which are skipped and why.

The layout is aclImdb's with any class names: ``SPLIT/CLASS/*.txt`` for SPLIT in ``train``,
``test``, ``valid``, one text per file; ``train/unsup/`` holds unlabelled texts. `list_folder`
walks it once and returns the files to read, and every entry not read counted by reason
(`SKIP_REASONS`), so that nothing is dropped in silence; what cannot be read at all (a broken
link, a link loop, a pipe or device, a folder it may not list, a file it may not read, another
folder beside the splits) is one `UserError`. The reader (`lstm_adv.data.corpus_rows`) and the
cache's content hash (`lstm_adv.data.corpus.content_sha256`) both list with it, so the hash
covers exactly the files read (links followed) and what was skipped.

`is_aclimdb` says whether a folder is aclImdb itself (read as ``data=imdb``): only IMDB's own
layout and file names, never a class folder that happens to use the classes ``neg`` and ``pos``.
"""

import os
import re
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..common.errors import UserError

#: The split folders a corpus folder may hold.
SPLIT_FOLDERS = ("train", "test", "valid")
#: Class folder names that are not classes (aclImdb's unlabelled reviews).
UNLABELLED_FOLDERS = ("unsup",)
#: Why an entry is not read, as the log and ``config.json`` (``n_skipped``) name it.
SKIP_REASONS = {
    "hidden": "hidden files or folders",         # name starting with '.', __MACOSX, Thumbs.db, desktop.ini
    "not_txt": "files not .txt",
    "nested": "files nested deeper than SPLIT/CLASS/",
    "outside": "files outside the class folders",  # beside train/, or directly in a split folder
}
_SYSTEM_NAMES = {"__macosx", "thumbs.db", "desktop.ini"}
#: aclImdb's review file names: ID_RATING.txt.
_IMDB_NAME = re.compile(r"^\d+_\d+\.txt$")


def _hidden(name):
    return name.startswith(".") or name.lower() in _SYSTEM_NAMES


def _kind(path):
    """``"dir"``, ``"file"``, or a `UserError` for what cannot be read (links followed)."""
    try:
        st = os.stat(path)
    except OSError as err:
        if os.path.islink(path):
            what = "a symbolic link loop" if err.errno == 40 else "a broken symbolic link"
            raise UserError(f"{path} is {what} ({err.strerror}); remove it or point it at a file") from None
        raise UserError(f"cannot read {path} ({err.strerror}); fix its permissions or remove it") from None
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        return "file"
    raise UserError(f"{path} is not a regular file (a pipe, socket or device); a corpus folder holds .txt files "
                    "only: remove it")


def _entries(folder):
    """``[(name, path, kind)]`` of a folder, hidden entries apart: ``(entries, n_hidden)``."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as err:
        raise UserError(f"cannot list the folder {folder} ({err.strerror}); fix its permissions or remove it") from None
    out, hidden = [], 0
    for name in names:
        if _hidden(name):
            hidden += 1
            continue
        out.append((name, Path(folder) / name, _kind(Path(folder) / name)))
    return out, hidden


def _count_nested(folder):
    """The files under a folder nested too deep (walked without following links, so no loop)."""
    n = sum(len(files) for _, _, files in os.walk(folder))
    return max(n, 1)   # an empty nested folder still counts once: it is there and not read


def file_order(name):
    """Numeric ids first in numeric order (aclImdb's ID_RATING.txt), then the other names."""
    head = re.split(r"[_.]", name, maxsplit=1)[0]
    return (0, int(head), name) if head.isdigit() else (1, 0, name)


@dataclass
class FolderListing:
    """The texts of a corpus folder and what was skipped.

    ``files`` is ``[(split, label or None for unlabelled, path)]`` in reading order; ``classes``
    maps ``(split, label)`` to its folder; ``skipped`` counts entries by `SKIP_REASONS` key.
    """

    files: list = field(default_factory=list)
    classes: dict = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)


def list_folder(path):
    """Walk a corpus folder once (see the module docstring); raises `UserError` on what cannot be read."""
    path = Path(path)
    top, hidden = _entries(path)
    out = FolderListing()
    out.skipped["hidden"] += hidden
    kinds = {name: kind for name, _, kind in top}
    if kinds.get("train") != "dir":
        raise UserError(f"data={path} has no train/ folder; put each class's .txt files in train/CLASS/ "
                        "(e.g. train/pos/1.txt), and test texts in test/CLASS/")
    for name, _, kind in top:
        if kind == "dir" and name not in SPLIT_FOLDERS:
            raise UserError(f"data={path}: the folder {name}/ is none of train/, test/, valid/ (the only splits read); "
                            "rename it (valid/ for validation texts) or move it out of the corpus folder")
        if kind == "file":
            out.skipped["outside"] += 1
    for split in SPLIT_FOLDERS:
        if kinds.get(split) == "file":
            raise UserError(f"data={path}: {split} is a file, not a folder; put the texts in {split}/CLASS/*.txt")
        if split not in kinds:
            continue
        entries, hidden = _entries(path / split)
        out.skipped["hidden"] += hidden
        if not any(kind == "dir" for _, _, kind in entries):
            raise _no_classes(path, split)
        for name, folder, kind in entries:
            if kind == "file":
                out.skipped["outside"] += 1
                continue
            label = None if split == "train" and name in UNLABELLED_FOLDERS else name
            out.classes[(split, label)] = folder
            files, hidden = _entries(folder)
            out.skipped["hidden"] += hidden
            for fname, fpath, fkind in sorted(files, key=lambda e: file_order(e[0])):
                if fkind == "dir":
                    out.skipped["nested"] += _count_nested(fpath)
                elif not fname.lower().endswith(".txt"):
                    out.skipped["not_txt"] += 1
                else:
                    out.files.append((split, label, fpath))
    if not any(split == "train" and label is not None for split, label in out.classes):
        raise _no_classes(path, "train")
    return out


def _no_classes(path, split):
    return UserError(f"data={path}: {split}/ holds no class folders; put each class's .txt files in {split}/CLASS/ "
                     f"(e.g. {split}/pos/1.txt, {split}/neg/2.txt)" + ("" if split == "train" else ", or remove it"))


def is_aclimdb(path):
    """Whether a folder is aclImdb itself: train/ and test/ (nothing else but files and hidden
    entries at the top), each with exactly the classes neg and pos (train/unsup beside them), and
    every review file named ID_RATING.txt as IMDB names them."""
    path = Path(path)
    try:
        tops = {e.name for e in os.scandir(path) if e.is_dir() and not _hidden(e.name)}
        if tops != {"train", "test"}:
            return False
        for split in ("train", "test"):
            classes = {e.name for e in os.scandir(path / split) if e.is_dir() and not _hidden(e.name)}
            if classes - set(UNLABELLED_FOLDERS) != {"neg", "pos"} or (split == "test" and classes != {"neg", "pos"}):
                return False
            for cls in classes:
                if any(not _hidden(e.name) and not (e.is_file() and _IMDB_NAME.match(e.name))
                       for e in os.scandir(path / split / cls)):
                    return False
    except OSError:
        return False   # something unreadable: the folder reader names it
    return True

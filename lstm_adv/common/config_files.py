"""Configuration files for ``config=PATH``: a run's ``config.json``, a run directory, a JSON object
of keys or ``key=value`` lines; and the run folders a mistyped path may have meant."""

import difflib
import json
import os
from collections import deque
from pathlib import Path

from .errors import UserError


#: Keys of a saved run's ``config.json`` that are not taken over by ``config=``: a run started
#: from another run's configuration gets its own directory (derived, or ``saveto=``).
CONFIG_FILE_SKIP = ("saveto",)


#: Bounds of the walk behind `similar_run_dirs`: a hint must come at once, even from a home folder.
HINT_MAX_RUNS = 500       # run directories collected
HINT_MAX_FOLDERS = 2000   # folders listed


def similar_run_dirs(path, limit=3):
    """Run directories near a missing ``config=`` path whose names come close to its own.

    A run directory is named by its overridden keys, so the toy quick start's run is
    ``runs/eps=0.5,data=toy`` where a reader of the README types ``runs/eps=0.5``: folders named
    by all of the given keys and more come first, then near spellings (difflib). A sweep nests
    its runs (``runs/table1/eps=0.5/seed=1``), so the folders that hold a ``config.json`` are
    looked for at any depth below the path's parent folder (`run_dirs_below`), and a nested
    run's keys are those of every folder on its way.

    Parameters
    ----------
    path : str
        The ``config=`` value as given: a run directory, or its ``config.json``.
    limit : int
        At most this many names.

    Returns
    -------
    list of str
        Paths spelled as ``path`` is (relative stays relative) of folders that hold a
        ``config.json``; empty when the parent folder is missing or unreadable.
    """
    p = Path(path)
    suffix = ""
    if p.name == "config.json":   # runs/eps=0.5/config.json: the folder's name is what was mistyped
        p, suffix = p.parent, "/config.json"
    names = sorted(run_dirs_below(p.expanduser().parent))
    keys = set(p.name.split(","))
    close = [n for n in names if keys <= set(n.replace("/", ",").split(","))]
    close += [n for n in difflib.get_close_matches(p.name, names, n=limit, cutoff=0.6) if n not in close]
    return [str(p.parent / n) + suffix for n in close[:limit]]


def run_dirs_below(root, max_runs=HINT_MAX_RUNS, max_folders=HINT_MAX_FOLDERS):
    """The folders below ``root`` that hold a ``config.json``, as ``/``-joined relative paths.

    Breadth first, so that the shallowest runs are found before a bound is reached; hidden
    folders (``.git``, caches) are skipped, a run directory is not searched further (its files
    are one run's), and a linked folder counts as a run but is never entered (no cycles).

    Parameters
    ----------
    root : pathlib.Path
        The folder searched; missing or unreadable: no runs.
    max_runs, max_folders : int
        Stop once this many runs are found, or this many folders have been listed: a hint
        must never be slow on a big tree (a home folder, a data disk).

    Returns
    -------
    list of str
        In the order found (by depth, then by name).
    """
    found, queue, listed = [], deque([""]), 0
    while queue and listed < max_folders and len(found) < max_runs:
        rel = queue.popleft()
        listed += 1
        try:
            with os.scandir(root / rel) as entries:
                subdirs = sorted((e.name, e.is_symlink()) for e in entries
                                 if not e.name.startswith(".") and e.is_dir())
        except OSError:
            continue   # unreadable (or gone): the hint is best effort
        for name, linked in subdirs:
            child = f"{rel}/{name}" if rel else name
            if os.path.isfile(root / child / "config.json"):   # False, not an error, where unreadable
                found.append(child)
                if len(found) >= max_runs:
                    break
            elif not linked:
                queue.append(child)
    return found


def read_config_file(path, check_pairs):
    """The ``key -> raw value`` pairs of a configuration file, for ``config=PATH``.

    Accepted: a run's ``config.json`` (its ``config`` entry; ``saveto`` is left out so the new
    run gets its own directory), a run directory (its ``config.json``), a JSON object of keys
    (e.g. the output of ``print_config=1``), or a text file of ``key=value`` lines (blank lines
    and ``#`` comments ignored).

    ``check_pairs``: called with the ``key=value`` strings; raises `UserError` for a key that does
    not exist (`lstm_adv.config.split_key_values`).

    Raises
    ------
    UserError
        If the file is missing or unreadable, or names a key that does not exist.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "config.json"
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        similar = similar_run_dirs(path)
        hint = f"; did you mean {' or '.join(similar)}?" if similar else ""
        raise UserError(f"config={path}: no such file (give a run's config.json, its run directory, or a "
                        f"file of key=value lines){hint}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"config={path}: cannot read it ({getattr(err, 'strerror', None) or err})") from None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"config={path} is not valid JSON ({err.msg}, line {err.lineno})") from None
        saved_run = isinstance(record.get("config"), dict)
        values = record["config"] if saved_run else record
        pairs = [(k, v) for k, v in values.items() if not (saved_run and k in CONFIG_FILE_SKIP)]
        pairs = [(k, json.dumps(v) if isinstance(v, (list, dict)) else ("" if v is None else str(v)))
                 for k, v in pairs]
    else:
        pairs = []
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, sep, raw = line.partition("=")
            if not sep:
                raise UserError(f"config={path} line {lineno}: {line!r} is not key=value")
            pairs.append((name.strip(), raw.strip()))
    try:
        check_pairs([f"{k}={v}" for k, v in pairs])
    except UserError as err:
        raise UserError(f"config={path}: {err}") from None
    return dict(pairs)

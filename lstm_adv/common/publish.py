"""Files published to the repository (``experiments/results``) hold no local absolute paths.

Every absolute path becomes relative to the repository root, or to its file name when it lies
elsewhere; ``python -m lstm_adv.rundir publish SRC DEST`` copies a run's file this way.
"""

import json
import os
import re
from pathlib import Path

from .utils import PACKAGE_ROOT, atomic_write_json, atomic_write_text


def publishable_path(path, root=None):
    """An absolute path as it may appear in a published file.

    Inside the repository root: relative to it (``runs/x``). Beside it (under the root's parent
    folder, e.g. ``../shared/data/aclImdb.tar.gz``): relative too, so committed commands still
    run from the root. Anywhere else: ``.../`` and the file name only.
    """
    root = Path(root or PACKAGE_ROOT).resolve()
    p = Path(os.path.normpath(path))
    if not p.is_absolute():
        return str(path)
    for base in (root, root.parent):
        if base != Path(base.anchor):
            try:
                p.relative_to(base)
            except ValueError:
                continue
            return os.path.relpath(p, root)
    return f".../{p.name}"


_ABS_PATH = re.compile(r"(?<![^\s=(\"'\[])(/[^\s'\",;:=)(<>]+)")


def publishable_text(text, root=None):
    """``text`` (a commands file, a log, an HTML header) with every absolute path made publishable."""
    return _ABS_PATH.sub(lambda m: publishable_path(m.group(1), root), text)


def publishable_config(record, root=None):
    """A copy of a ``config.json`` record with no local absolute paths (see `publishable_path`).

    Every string is rewritten: a path, a ``key=/path`` argument, a path inside a longer string.
    The PyTensor compile directory is dropped (it names the local cache and nothing about the run).
    """
    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if k != "compiledir"}
        if isinstance(v, list):
            return [clean(x) for x in v]
        if isinstance(v, str):
            return publishable_text(v, root)
        return v
    out = clean(record)
    argv = record.get("argv") if isinstance(record, dict) else None
    if argv and isinstance(argv[0], str) and os.path.isabs(argv[0]):
        # The entry script as the package names it, wherever the checkout that ran it lies (a run
        # trained in one worktree and published from another would read ../other-worktree/...).
        parts = Path(argv[0]).parts
        if len(parts) > 1 and parts[-2] == "lstm_adv":
            out["argv"] = ["lstm_adv/" + parts[-1], *out["argv"][1:]]
    return out


#: The small files of a run that are published (never the ``.npz`` parameters and checkpoints).
RUN_FILES = ("config.json", "metrics.json", "history.csv")


def publish(src, dest, root=None):
    """Copy a run file (``config.json``, a commands file, a log ...) to ``dest`` without local paths."""
    src, dest = Path(src), Path(dest)
    if src.suffix == ".json":
        atomic_write_json(dest, publishable_config(json.loads(src.read_text(encoding="utf-8")), root))
    else:
        atomic_write_text(dest, publishable_text(src.read_text(encoding="utf-8"), root))
    return dest


def publish_run(run_dir, dest_dir, root=None):
    """Copy a run directory's `RUN_FILES` that exist into ``dest_dir`` (created), without local paths.

    Returns
    -------
    list of Path
        The files written.
    """
    run_dir, dest_dir = Path(run_dir), Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    return [publish(run_dir / name, dest_dir / name, root) for name in RUN_FILES if (run_dir / name).is_file()]

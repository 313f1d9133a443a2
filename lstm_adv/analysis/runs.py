"""Reading a folder of run directories for the tables: one flat dict per run.

`read_run` reads a run's ``config.json``, ``metrics.json`` and ``history.csv``; `find_runs` every
run under some folders; `escape_epoch` when a run left the one-class plateau.
"""

import csv
import io
import json
import math
from pathlib import Path

from ..common.errors import UserError

#: The paper's Table 1 setting; a run whose config.json has no alpha counts as this.
TABLE1_ALPHA = 0.5


def is_finite(x):
    """Whether ``x`` is a finite int or float (not a bool)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return None, f"{type(err).__name__}: {err}".splitlines()[0]


def read_run(run_dir):
    """One run directory as a flat dict.

    Returns
    -------
    dict
        ``dir``, ``config`` (the saved ``config`` entry), ``eps``, ``alpha``, ``seed``,
        ``status`` (``ok``, ``nan``, ``interrupted``, ``failed``, ``running``, ``no metrics``
        or ``corrupt``), ``dev``, ``test``, ``average`` (floats, or None unless status is ok),
        ``attack`` ({attack eps: test error}), ``wall_time_s`` and ``problem`` (why a run
        is ``corrupt``, else None).

    Raises
    ------
    UserError
        If ``config.json`` is unreadable or has no usable ``eps``/``alpha`` (the run cannot be
        placed in the table).
    """
    run_dir = Path(run_dir)
    saved, err = _read_json(run_dir / "config.json")
    cfg = saved.get("config") if isinstance(saved, dict) else None
    if err or not isinstance(cfg, dict):
        raise UserError(f"{run_dir / 'config.json'} is not a run configuration ({err or 'no config entry'})")
    eps, alpha = cfg.get("eps", 0.0), cfg.get("alpha", TABLE1_ALPHA)
    if not (is_finite(eps) and is_finite(alpha)):
        raise UserError(f"{run_dir / 'config.json'} has eps={eps!r}, alpha={alpha!r}; both must be numbers")
    run = {"dir": str(run_dir), "config": cfg, "eps": round(float(eps), 9), "alpha": round(float(alpha), 9),
           "seed": cfg.get("seed"), "status": "no metrics", "dev": None, "test": None, "average": None,
           "attack": {}, "attacks": {}, "wall_time_s": None, "problem": None}
    run["history"] = read_history(run_dir / "history.csv")
    pos = (saved.get("data") or {}).get("train_pos_fraction") if isinstance(saved.get("data"), dict) else None
    run["escape_epoch"], run["plateau_err"] = escape_epoch(run["history"], pos)
    if not (run_dir / "metrics.json").exists():
        return run
    metrics, err = _read_json(run_dir / "metrics.json")
    if err or not isinstance(metrics, dict) or not isinstance(metrics.get("status"), str):
        run.update(status="corrupt", problem=err or "no status entry")
        return run
    run["status"] = metrics["status"]
    run["wall_time_s"] = metrics.get("wall_time_s") if is_finite(metrics.get("wall_time_s")) else None
    if run["status"] != "ok":
        return run
    dev, test = metrics.get("valid_err"), metrics.get("test_err")
    if not (is_finite(dev) and is_finite(test)):
        # A NaN error in an "ok" run is a diverged run; a missing one is a broken file.
        nan = any(isinstance(v, float) and math.isnan(v) for v in (dev, test))
        run.update(status="nan" if nan else "corrupt",
                   problem=None if nan else f"status ok but valid_err={dev!r}, test_err={test!r}")
        return run
    run.update(dev=float(dev), test=float(test), average=(float(dev) + float(test)) / 2)
    if isinstance(metrics.get("attacks"), dict):
        run["attacks"] = metrics["attacks"]
    attack = metrics.get("attack") or {}
    if isinstance(attack, dict):
        for k, v in attack.items():
            try:
                key = round(float(k), 9)
            except ValueError:
                continue
            if is_finite(v):
                run["attack"][key] = float(v)
    return run


#: A run has left the one-class plateau at the first validation whose training error is below
#: the minority-class rate (the error of always predicting the majority class) minus this margin.
PLATEAU_MARGIN = 0.05


def read_history(path):
    """``history.csv`` as a list of dicts of floats (empty if missing or unreadable)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        try:
            rows.append({k: float(v) if v not in ("", None) else None for k, v in row.items()})
        except (TypeError, ValueError):
            return []
    return rows


def escape_epoch(history, pos_fraction=None):
    """The epoch at which a run left the one-class plateau (`PLATEAU_MARGIN`), or None (never).

    Parameters
    ----------
    history : list of dict
        Validation rows with ``epoch`` and ``train_err``.
    pos_fraction : float, optional
        Fraction of positive training reviews (``config.json``, ``data.train_pos_fraction``);
        without it the plateau's error is taken as the largest training error seen (at most 0.5).

    Returns
    -------
    (epoch or None, plateau error or None)
    """
    errs = [r.get("train_err") for r in history if r.get("train_err") is not None]
    if not errs:
        return None, None
    plateau = min(pos_fraction, 1 - pos_fraction) if is_finite(pos_fraction) else min(0.5, max(errs))
    for r in history:
        if r.get("train_err") is not None and r["train_err"] < plateau - PLATEAU_MARGIN:
            return int(r["epoch"]), plateau
    return None, plateau


def find_runs(paths):
    """Every run under ``paths`` (folders searched recursively for ``config.json``).

    Returns
    -------
    runs : list of dict
        As `read_run`, sorted by (alpha, eps, seed, dir); each directory once.
    warnings : list of str
        One line per run that could not be placed (unreadable config) or is corrupt.

    Raises
    ------
    UserError
        If a path is not an existing folder, no ``config.json`` is found, or no run could be read.
    """
    dirs = []
    for p in paths:
        p = Path(p)
        if not p.is_dir():
            raise UserError(f"{p} is not a folder of run directories ({'a file' if p.exists() else 'not found'})")
        dirs += [c.parent.resolve() for c in sorted(p.rglob("config.json"))]
    dirs = list(dict.fromkeys(dirs))
    if not dirs:
        raise UserError(f"no runs (no config.json) under {', '.join(map(str, paths))}")
    runs, notes = [], []
    for d in dirs:
        try:
            run = read_run(d)
        except UserError as err:
            notes.append(f"skipped: {err}")
            continue
        if run["status"] == "corrupt":
            notes.append(f"{d / 'metrics.json'} is unreadable, counted as failed ({run['problem']})")
        runs.append(run)
    if not runs or all(r["status"] == "corrupt" for r in runs):
        raise UserError(f"none of the {len(dirs)} run(s) under {', '.join(map(str, paths))} could be read "
                        f"(first problem: {notes[0]})")
    runs.sort(key=lambda r: (r["alpha"], r["eps"], str(r["seed"]), r["dir"]))
    return runs, notes

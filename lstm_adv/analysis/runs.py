"""A folder of run directories for the tables: one flat dict per run.

`read_run` and `find_runs` turn `lstm_adv.rundir`'s records into the tables' dicts; `escape_epoch`
(`lstm_adv.common.plateau`, the rule the training run reports with too) says when a run left the
one-class plateau.
"""

import math
from pathlib import Path

from .. import rundir
from ..common.errors import UserError
from ..common.paper import TABLE1_ALPHA
from ..common.plateau import PLATEAU_MARGIN, escape_epoch, is_finite  # noqa: F401 (the tables import them from here)
from ..config import FIELDS, unused_keys


def setting_label(config, keys):
    """A run's values of ``keys``, ``"-"`` for those its settings make inert (`lstm_adv.config.unused_keys`).

    Parameters
    ----------
    config : dict
        The run's configuration.
    keys : sequence of str

    Returns
    -------
    tuple
    """
    unused = unused_keys(config)
    # A key the run's version did not have yet: its default, the behaviour that version had (as
    # resuming takes it to match, `lstm_adv.rundir.RunDir.check_same_run`).
    return tuple("-" if k in unused else config.get(k, FIELDS[k].default if k in FIELDS else None) for k in keys)


def read_run(run_dir):
    """One run directory as a flat dict (`from_record` of ``rundir.read_run(run_dir, strict=False)``)."""
    return from_record(rundir.read_run(run_dir, strict=False))


def from_record(rec):
    """A `lstm_adv.rundir.RunRecord` as the tables' flat dict.

    Returns
    -------
    dict
        ``dir`` (resolved), ``config`` (the saved ``config`` entry), ``eps``, ``alpha``, ``seed``,
        ``status`` (``ok``, ``nan``, ``interrupted``, ``failed``, ``running``, ``no metrics``
        or ``corrupt``), ``dev``, ``test``, ``average`` (floats, or None unless status is ok),
        ``attack`` ({attack eps: test error}), ``wall_time_s``, ``cpu_time_s`` (None where the run
        did not record it), ``problem`` (why a run
        is ``corrupt``, else None), ``history`` (`history_floats`), ``escape_epoch``, ``plateau_err``.

    Raises
    ------
    UserError
        If ``config.json`` has no usable ``eps``/``alpha`` (the run cannot be placed in the table).
    """
    cfg, cfg_path = rec.config, rec.path / "config.json"
    eps, alpha = cfg.get("eps", 0.0), cfg.get("alpha", TABLE1_ALPHA)
    if not (is_finite(eps) and is_finite(alpha)):
        raise UserError(f"{cfg_path} has eps={eps!r}, alpha={alpha!r}; both must be numbers")
    run = {"dir": str(rec.path.resolve()), "config": cfg, "eps": round(float(eps), 9),
           "alpha": round(float(alpha), 9), "seed": cfg.get("seed"), "status": rec.status, "dev": None,
           "test": None, "average": None, "attack": {}, "attacks": {}, "wall_time_s": None, "cpu_time_s": None,
           "problem": rec.problem}
    run["history"] = history_floats(rec.history)
    data = rec.saved.get("data") if isinstance(rec.saved.get("data"), dict) else {}
    run["escape_epoch"], run["plateau_err"] = escape_epoch(run["history"], data.get("train_pos_fraction"),
                                                           data.get("train_class_fractions"))
    metrics = rec.metrics
    if metrics is None:
        return run
    for key in ("wall_time_s", "cpu_time_s"):
        run[key] = metrics.get(key) if is_finite(metrics.get(key)) else None
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
    if isinstance(metrics.get("word_attack"), dict):
        run["word_attack"] = metrics["word_attack"]
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


def history_floats(rows):
    """``history.csv``'s rows (`lstm_adv.rundir.RunRecord.history`) as dicts of floats; empty if a value
    is not a number."""
    out = []
    for row in rows:
        try:
            out.append({k: float(v) if v not in ("", None) else None for k, v in row.items()})
        except (TypeError, ValueError):
            return []
    return out


def find_runs(paths):
    """Every run under ``paths`` (`lstm_adv.rundir.find_runs`) as the tables' dicts.

    Returns
    -------
    runs : list of dict
        As `from_record`, sorted by (alpha, eps, seed, dir); each directory once.
    warnings : list of str
        One line per run that could not be placed (unreadable config) or is corrupt.

    Raises
    ------
    UserError
        If a path is not an existing folder, no ``config.json`` is found, or no run could be read.
    """
    records, skipped = rundir.find_runs(paths)
    runs, notes = [], [f"skipped: {err}" for err in skipped]
    for rec in records:
        try:
            run = from_record(rec)
        except UserError as err:
            notes.append(f"skipped: {err}")
            continue
        if run["status"] == "corrupt":
            notes.append(f"{Path(run['dir']) / 'metrics.json'} is unreadable, counted as failed ({run['problem']})")
        runs.append(run)
    if not runs or all(r["status"] == "corrupt" for r in runs):
        raise UserError(f"none of the {len(records) + len(skipped)} run(s) under {', '.join(map(str, paths))} "
                        f"could be read (first problem: {notes[0]})")
    runs.sort(key=lambda r: (r["alpha"], r["eps"], str(r["seed"]), r["dir"]))
    return runs, notes


def pick(runs, key):
    """The ``key`` value of the finished run with the lowest validation error (model selection).

    Ties go to the smaller value of ``key`` (for eps: the weaker perturbation), then to the
    directory name, so the choice does not depend on the order runs were found in.

    Raises
    ------
    UserError
        If no run finished ("ok") or a finished run's config lacks ``key``.
    """
    ok = [r for r in runs if r["status"] == "ok"]
    if not ok:
        raise UserError(f"pick={key}: none of the {len(runs)} run(s) has finished (status ok); "
                        "run them first, or point at other folders")
    missing = [r["dir"] for r in ok if key not in r["config"]]
    if missing:
        raise UserError(f"pick={key}: {missing[0]}/config.json has no {key!r}")
    best = min(ok, key=lambda r: (r["dev"], r["config"][key], r["dir"]))
    return best["config"][key]

"""The one-class plateau: the rule that says whether, and at which epoch, a run left it.

Every adversarial run of the paper's kind first predicts one class for every text (train error
at the majority-class rate's complement); some never leave. One rule, used by the results tables
(`lstm_adv.analysis.runs`) and by the training run's own report (``metrics.json``'s
``left_plateau``, the last line of ``train.log``), so the two never disagree.
"""

import math

#: A run has left the one-class plateau at the first validation whose training error is below
#: the error of always predicting the majority class (two classes: the minority-class rate) minus
#: this margin.
PLATEAU_MARGIN = 0.05

#: What a run that never left is told to try (README, Troubleshooting, "My run stays at chance").
PLATEAU_ADVICE = ("try preset=miyato (Miyato's L2 step on normalised embeddings), eps=0 to see whether the data "
                  "is learnable, or more epochs (max_epochs=)")


def is_finite(x):
    """Whether ``x`` is a finite int or float (not a bool)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def escape_epoch(history, pos_fraction=None, class_fractions=None):
    """The epoch at which a run left the one-class plateau (`PLATEAU_MARGIN`), or None (never).

    Parameters
    ----------
    history : list of dict
        Validation rows with ``epoch`` and ``train_err``.
    pos_fraction : float, optional
        Two classes: fraction of positive training reviews (``config.json``, ``data.train_pos_fraction``).
    class_fractions : list of float, optional
        K classes: each class's share of the training split (``data.train_class_fractions``); the
        plateau's error is then 1 - the largest (the majority-class rate's complement). Without
        either, the plateau's error is taken as the largest training error seen (at most 0.5).

    Returns
    -------
    (epoch or None, plateau error or None)
    """
    errs = [r.get("train_err") for r in history if r.get("train_err") is not None]
    if not errs:
        return None, None
    fractions = class_fractions if isinstance(class_fractions, list) and class_fractions else None
    if is_finite(pos_fraction):   # two classes: as before K classes, to the last bit
        plateau = min(pos_fraction, 1 - pos_fraction)
    elif fractions is not None and all(is_finite(f) for f in fractions):
        plateau = 1.0 - max(float(f) for f in fractions)
    else:
        plateau = min(0.5, max(errs))
    for r in history:
        if r.get("train_err") is not None and r["train_err"] < plateau - PLATEAU_MARGIN:
            return int(r["epoch"]), plateau
    return None, plateau


def plateau_report(history, data_info):
    """A finished run's plateau fields for ``metrics.json`` and the words for its last line.

    Parameters
    ----------
    history : list of dict
        The run's validation rows (``history.csv``: ``epoch``, ``train_err``).
    data_info : dict
        The data set's info (`lstm_adv.data.finalize`: ``train_pos_fraction``, ``train_class_fractions``).

    Returns
    -------
    fields : dict
        ``left_plateau`` (bool), ``left_plateau_epoch`` (int, or None when it never left) and
        ``plateau_err`` (the one-class training error, rounded).
    note : str
        Empty when it left; else a sentence saying so, with what to try (`PLATEAU_ADVICE`).
    """
    epoch, plateau = escape_epoch(history, data_info.get("train_pos_fraction"), data_info.get("train_class_fractions"))
    fields = {"left_plateau": epoch is not None, "left_plateau_epoch": epoch,
              "plateau_err": None if plateau is None else round(plateau, 6)}
    if epoch is not None:
        return fields, ""
    return fields, (f"never left the one-class plateau (train error never below {plateau:.3f} - {PLATEAU_MARGIN}, "
                    f"the error of predicting the majority class): {PLATEAU_ADVICE}")

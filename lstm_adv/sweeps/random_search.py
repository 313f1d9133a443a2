"""The random search (paper section 5.2): its space, its draws, and its plan of paired runs.

`python -m lstm_adv.sweep plan random` writes the commands; the statistics of a finished search
(best adversarial against best plain, paired by draw) are `lstm_adv.analysis.random_search`.
"""

import math

import numpy as np

from ..common.errors import UserError
from ..common.utils import short_number
from .commands import sweep_dir, unless_given

#: The random search (paper section 5.2: "random hyperparameter sweeps in parallel between
#: adversarial and non-adversarial models", never run by its authors). Each draw samples every
#: key below; it is then run twice with the same values: adversarial (the drawn alpha, eps) and
#: plain (eps=0). Distributions:
#:   ("choice", values)           uniform over the values
#:   ("uniform", lo, hi)          uniform real
#:   ("log", lo, hi)              log-uniform real
#:   ("zero_or_log", p0, lo, hi)  0 with probability p0, else log-uniform
#:   ("int", lo, hi)              uniform integer in [lo, hi]
#: ``lrate`` is drawn always but written only for optimizer=sgd (the others ignore it, as in the
#: tutorial). A pass-through key=value fixes that key for every draw (the draws stay the same).
RANDOM_SPACE = {
    "hdim": ("choice", (32, 64, 128, 256)),
    "wdim": ("choice", (32, 64, 128, 256)),
    "reg": ("zero_or_log", 0.5, 1e-5, 1e-1),
    "clip": ("choice", (0.0, 1.0, 5.0, 10.0)),
    "optimizer": ("choice", ("adadelta", "rmsprop", "sgd")),
    "lrate": ("log", 1e-2, 1.0),
    "batch_size": ("choice", (16, 32, 64)),
    "use_dropout": ("choice", (0, 1)),
    "alpha": ("uniform", 0.1, 0.9),
    "eps": ("log", 0.01, 2.0),
    "adv_emb_grad": ("choice", (0, 1)),
    "seed": ("int", 1, 999999),
}


def draw_config(search_seed, index):
    """Draw ``index`` of the random search: {key: value} over `RANDOM_SPACE` (same for any number of draws)."""
    rng = np.random.default_rng([int(search_seed), int(index)])
    out = {}
    for key, spec in RANDOM_SPACE.items():
        kind = spec[0]
        if kind == "choice":
            v = spec[1][int(rng.integers(len(spec[1])))]
        elif kind == "uniform":
            v = float(rng.uniform(spec[1], spec[2]))
        elif kind == "log":
            v = float(math.exp(rng.uniform(math.log(spec[1]), math.log(spec[2]))))
        elif kind == "zero_or_log":
            zero = rng.random() < spec[1]
            v = float(math.exp(rng.uniform(math.log(spec[2]), math.log(spec[3]))))
            v = 0.0 if zero else v
        elif kind == "int":
            v = int(rng.integers(spec[1], spec[2] + 1))
        else:  # pragma: no cover - a programming error in RANDOM_SPACE
            raise ValueError(kind)
        out[key] = float(f"{v:.3g}") if isinstance(v, float) else v
    if out["optimizer"] != "sgd":
        del out["lrate"]
    return out


def plan_random(opts, keys):
    """The random search: per draw, one adversarial and one plain (eps=0) run with the same draw."""
    for k in keys:
        if k.split("=", 1)[0] in ("saveto", "runs_dir"):
            raise UserError(f"{k.split('=', 1)[0]} is set by the random search; use sweep_dir=DIR")
    draws, search_seed = opts.draws, opts.search_seed
    root = sweep_dir("random", opts, keys, [f"search_seed={search_seed}"] if search_seed else [])
    fixed = {k.split("=", 1)[0] for k in keys}
    commands = []
    for i in range(draws):
        drawn = {k: v for k, v in draw_config(search_seed, i).items() if k not in fixed}
        for kind in ("adv", "plain"):
            values = dict(drawn)
            if kind == "plain":
                values["eps"] = 0.0
            run_dir = root / f"draw={i:03d}" / kind
            commands.append(unless_given([f"{k}={short_number(v)}" for k, v in values.items()] + ["progress=0"], keys)
                            + keys + [f"saveto={run_dir}"])
    return root, commands

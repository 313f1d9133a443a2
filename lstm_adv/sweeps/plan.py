"""``sweep plan``: write a sweep's commands file (the paper's Table 1 grid, or the random search).

See `lstm_adv.sweeps` for the usage; `lstm_adv.sweeps.random_search` for the random search.
"""

import sys
from pathlib import Path

from .. import config as config_mod
from ..common import checks
from ..common.errors import UserError
from ..common.paper import TABLE1_ALPHA, TABLE1_DEFAULT_KEYS, TABLE1_EPS
from ..common.utils import atomic_write_text, short_number
from .commands import PLAN_OPTIONS, command_line, int_option, parse_commands, split_options, sweep_dir, unless_given
from .random_search import plan_random


def plan_table1(opts, keys):
    """Table 1: alpha=0.5, every eps of the grid, seeds 1..N. Returns (sweep_dir, commands)."""
    fixed = {"eps", "seed", "saveto", "runs_dir"}
    for k in keys:
        name = k.split("=", 1)[0]
        if name in fixed:
            raise UserError(f"{name} is set by the table1 grid; drop {k!r}"
                            + (" (use eps_grid=0,0.5,... for other eps)" if name == "eps" else "")
                            + (" (use seeds=N: seeds 1..N)" if name == "seed" else ""))
    seeds = int_option(opts, "seeds", 5, 1)
    grid = TABLE1_EPS
    if "eps_grid" in opts:
        try:
            grid = tuple(float(v) for v in opts["eps_grid"].split(",") if v.strip())
        except ValueError:
            raise UserError(f"eps_grid={opts['eps_grid']!r} must be comma-separated numbers, e.g. eps_grid=0,0.5") from None
        if not grid:
            raise UserError("eps_grid= is empty; e.g. eps_grid=0,0.5")
    root = sweep_dir("table1", opts, keys)
    commands = []
    # Seed-major: an interrupted sweep leaves whole rows of the table, not a few columns.
    for seed in range(1, seeds + 1):
        for eps in grid:
            run_dir = root / f"eps={short_number(float(eps))}" / f"seed={seed}"
            commands.append(unless_given([*TABLE1_DEFAULT_KEYS, f"alpha={TABLE1_ALPHA}", f"eps={short_number(float(eps))}",
                                           f"seed={seed}", "progress=0"], keys) + keys + [f"saveto={run_dir}"])
    return root, commands


PLANS = {"table1": plan_table1, "random": plan_random}


def plan(argv):
    """``sweep plan NAME ...``: write the commands file; returns its path."""
    if not argv or argv[0] not in PLANS:
        raise UserError(f"sweep plan needs a grid name: {' or '.join(PLANS)}")
    name, rest = argv[0], argv[1:]
    opts, keys = split_options(rest, PLAN_OPTIONS, "sweep plan")
    config_mod.parse_args(keys)  # a typo in a pass-through key: one line, before anything
    root, commands = PLANS[name](opts, keys)
    lines = [command_line(c) for c in commands]
    parse_commands(lines, "the planned sweep")  # a bad pass-through key refuses the plan
    out = Path(opts.get("out") or root / "commands.txt")
    checks.writable_dir("sweep_dir", root)
    checks.writable_file("out", out)
    try:
        atomic_write_text(out, "\n".join(lines) + "\n")
    except OSError as err:
        raise UserError(f"cannot write {out}: {err.strerror}") from None
    print(f"{name}: {len(lines)} runs under {root}; commands in {out}", file=sys.stderr)
    return out

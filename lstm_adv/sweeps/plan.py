"""``sweep plan``: write a sweep's commands file (the paper's Table 1 grid, or the random search).

See `lstm_adv.sweeps` for the usage; `lstm_adv.sweeps.random_search` for the random search.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

from .. import config as config_mod
from ..common import checks
from ..common.errors import UserError
from ..common.paper import TABLE1_ALPHA, TABLE1_DEFAULT_KEYS, TABLE1_EPS
from ..common.utils import atomic_write_text, short_number
from ..common.options import fields, option, parse_with_rest, unknown_key
from .commands import command_line, parse_commands, sweep_dir, unless_given
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
    seeds, grid = opts.seeds, opts.eps_grid
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


@dataclass(frozen=True)
class PlanOptions:
    """The keys of ``sweep plan table1|random`` (every other ``key=value`` is a training key for every run)."""

    seeds: int = option(5, "table1: seeds 1..N of every eps", minimum=1)
    eps_grid: tuple[float, ...] = option(TABLE1_EPS, "table1: the eps of the grid (0 = the plain model)", minimum=0)
    draws: int = option(20, "random: draws, each run twice (adversarial and plain, eps=0)", minimum=1)
    search_seed: int = option(0, "random: seed of the draws", minimum=0)
    sweep_dir: str = option("", "the sweep's folder (default runs/<NAME>, with the pass-through keys appended)")
    out: str = option("", "the commands file (default <sweep_dir>/commands.txt)")


def plan(argv):
    """``sweep plan NAME ...``: write the commands file; returns its path."""
    if not argv or argv[0] not in PLANS:
        raise UserError(f"sweep plan needs a grid name: {' or '.join(PLANS)}")
    name, rest = argv[0], argv[1:]
    opts, keys = parse_with_rest(PlanOptions, rest, passthrough=True)
    for arg in keys:   # a typo: "did you mean" among the plan's keys and the training keys
        key = arg.split("=", 1)[0].strip().lstrip("-")
        if key not in config_mod.FIELDS:
            raise unknown_key(key, [*config_mod.FIELDS, *fields(PlanOptions)])
    config_mod.parse_args(keys)  # a bad pass-through value: one line, before anything
    root, commands = PLANS[name](opts, keys)
    lines = [command_line(c) for c in commands]
    # The grid's own defaults the user did not type (preset=authors changes wdim and the
    # embeddings): named on the plan's first line, not left for commands.txt to reveal.
    applied = unless_given(TABLE1_DEFAULT_KEYS, keys) if name == "table1" else []
    parse_commands(lines, "the planned sweep")  # a bad pass-through key refuses the plan
    out = Path(opts.out or root / "commands.txt")
    checks.writable_dir("sweep_dir", root)
    checks.writable_file("out", out)
    try:
        atomic_write_text(out, "\n".join(lines) + "\n")
    except OSError as err:
        raise UserError(f"cannot write {out}: {err.strerror}") from None
    data = config_mod.parse_args(commands[0]).data
    added = " ".join(k + (f" ({' '.join(f'{n}={v}' for n, v in config_mod.PRESETS[k[7:]].items())})"
                          if k.startswith("preset=") and k[7:] else "") for k in applied)
    print(f"{name}: {len(lines)} runs on data={data}"
          + (f", each with {added} (set by the plan; give another value to replace it, e.g. preset=)"
             if applied else ", with no keys added by the plan"), file=sys.stderr)
    print(f"{name}: runs under {root}; commands in {out}", file=sys.stderr)
    return out

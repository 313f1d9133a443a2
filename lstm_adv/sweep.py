"""``python -m lstm_adv.sweep plan|run|slurm|summary ...``: sweeps as a file of commands.

The entry point only; ``--help`` prints the reference (`lstm_adv.sweeps`) and every sub-command's
keys, ``sweep COMMAND --help`` one sub-command's. ``plan``, ``run`` and ``slurm`` are
`lstm_adv.sweeps`; ``summary`` (the random search's statistics) is `lstm_adv.analysis.random_search`.
"""

import sys

from . import sweeps
from .common.errors import UserError
from .common.lifecycle import cli_entry
from .common.options import KEYS_NOTE, help_text, key_lines, wants_help
from .sweeps import launcher, plan, slurm
from .sweeps.commands import RunOptions, SlurmOptions

#: sub-command -> (its options, its usage after ``usage: ``, what it does)
COMMANDS = {
    "plan": (plan.PlanOptions, "python -m lstm_adv.sweep plan table1|random [key=value ...] [training key=value ...]",
             "Write a sweep's commands file (the paper's Table 1 grid, or the random search) and print its path.\n"
             "Every key=value that is not one of the keys below is a training key passed to every run."),
    "run": (RunOptions, "python -m lstm_adv.sweep run COMMANDS_FILE [key=value ...]",
            "Run a commands file here, up to jobs= runs at once; finished runs are skipped, interrupted ones resume."),
    "slurm": (SlurmOptions, "python -m lstm_adv.sweep slurm COMMANDS_FILE [key=value ...]",
              "Write a Slurm batch script that runs a commands file as one job array."),
    "summary": (None, "python -m lstm_adv.sweep summary SWEEP_DIR",
                "The random search's statistics, best adversarial against best plain run: printed, and written\n"
                "with runs.csv and random_search.png into SWEEP_DIR."),
}


def help_for(command=None):
    """``--help`` of one sub-command, or (None) of the whole command with every sub-command's keys."""
    if command in COMMANDS:
        cls, usage, what = COMMANDS[command]
        return help_text(cls, usage, what, "The reference: python -m lstm_adv.sweep --help")
    lines = []
    for name, (cls, _, _) in COMMANDS.items():
        lines += key_lines(cls, heading=f"sweep {name} keys") if cls is not None else []
    return help_text(None, "python -m lstm_adv.sweep plan|run|slurm|summary ...", sweeps.__doc__.strip(),
                     "\n".join(lines + [KEYS_NOTE])).replace("keys: none\n\n", "")


@cli_entry
def main(argv):
    """Run one sweep command (``argv`` default: ``sys.argv[1:]``); returns the exit status."""
    if not argv or wants_help(argv):
        print(help_for(argv[0] if argv else None))
        return 0
    command, rest = argv[0], argv[1:]
    if command == "plan":
        print(plan.plan(rest))
        return 0
    if command == "run":
        return launcher.run(rest)
    if command == "slurm":
        return slurm.slurm(rest)
    if command == "summary":
        from .analysis import random_search   # SciPy and Matplotlib: imported only for summary
        return random_search.summary(rest)
    raise UserError(f"unknown command {command!r}; use plan, run, slurm or summary (see --help)")


if __name__ == "__main__":
    sys.exit(main())

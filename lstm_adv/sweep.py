"""``python -m lstm_adv.sweep plan|run|slurm|summary ...``: sweeps as a file of commands.

The entry point only; ``--help`` prints the reference (`lstm_adv.sweeps`). ``plan``, ``run`` and
``slurm`` are `lstm_adv.sweeps`; ``summary`` (the random search's statistics) is
`lstm_adv.analysis.random_search`.
"""

import sys

from . import sweeps
from .analysis import random_search
from .common.errors import UserError, cli_entry
from .sweeps import launcher, plan, slurm


@cli_entry
def main(argv):
    """Run one sweep command (``argv`` default: ``sys.argv[1:]``); returns the exit status."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(sweeps.__doc__)
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
        return random_search.summary(rest)
    raise UserError(f"unknown command {command!r}; use plan, run, slurm or summary (see --help)")


if __name__ == "__main__":
    sys.exit(main())

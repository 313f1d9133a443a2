"""One exception for every mistake a user can fix, and the wrapper that turns it into one line.

Bad input (unknown key, wrong type, missing or corrupt data, a checkpoint that does not fit)
must end with a single readable line and exit status 2, never a traceback.
"""

import functools
import sys


class UserError(Exception):
    """A problem the user can fix: the message names the problem and the fix."""


# Exit statuses of every command; `lstm_adv.sweeps.launcher` reads train's to decide what to retry.
EXIT_OK = 0
EXIT_FAILED = 1       # some runs of a sweep failed (each listed at the end)
EXIT_USER_ERROR = 2   # bad input: one line on stderr, nothing written
EXIT_NAN = 3          # train: the cost became NaN or Inf (metrics.json says status nan)


def exit_for_signal(signum):
    """The exit status after a stop by signal ``signum``, as a shell reports it: 130 SIGINT, 143 SIGTERM."""
    return 128 + int(signum)


def cli_entry(main):
    """Decorate a ``main(argv) -> int`` so that a `UserError` prints one line and exits 2."""

    @functools.wraps(main)
    def wrapper(argv=None):
        try:
            return main(sys.argv[1:] if argv is None else argv)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USER_ERROR

    return wrapper

"""One exception for every mistake a user can fix, and the wrapper that turns it into one line.

Bad input (unknown key, wrong type, missing or corrupt data, a checkpoint that does not fit)
must end with a single readable line and exit status 2, never a traceback.
"""

import functools
import sys


class UserError(Exception):
    """A problem the user can fix: the message names the problem and the fix."""


EXIT_USER_ERROR = 2


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

"""One exception for every mistake a user can fix.

Bad input (unknown key, wrong type, missing or corrupt data, a checkpoint that does not fit)
must end with a single readable line and exit status 2, never a traceback: every command's entry
point (`lstm_adv.common.lifecycle.cli_entry`) prints it so.
"""


class UserError(Exception):
    """A problem the user can fix: the message names the problem and the fix."""


"""``python -m lstm_adv.rundir publish SRC DEST [root=DIR]``: a run's file copied without local paths.

The command's code; ``__main__`` runs it.
"""

from dataclasses import dataclass

from ..common.errors import UserError
from ..common.lifecycle import cli_entry
from ..common.options import help_text, option, parse_with_rest, positional_arg, wants_help
from ..common.publish import publish


@dataclass(frozen=True)
class PublishOptions:
    """The keys of ``python -m lstm_adv.rundir publish``."""

    root: str = option("", "the folder local paths are made relative to (default: the repository)")


@cli_entry
def main(argv):
    """``python -m lstm_adv.rundir publish SRC DEST [root=DIR]``; returns the exit status."""
    usage = "python -m lstm_adv.rundir publish SRC DEST [root=DIR]"
    if wants_help(argv):
        print(help_text(PublishOptions, usage, "Copy a run's config.json (or a text file) to DEST with every local "
                        "absolute path made\nrelative to the repository (or root=DIR)."))
        return 0
    opts, args = parse_with_rest(PublishOptions, argv, positional=positional_arg)
    if len(args) != 3 or args[0] != "publish":
        raise UserError("usage: " + usage)
    print(publish(args[1], args[2], opts.root or None))
    return 0


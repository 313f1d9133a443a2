"""A fault hook for tests: end, signal or pause a process at a chosen point, never after a sleep.

A test that kills a run "some time after its first checkpoint" races the machine: on a fast one the
toy run has ended before the signal comes. Instead the test sets one environment variable, read
here and nowhere else, and the run does it to itself at a known point::

    LSTM_ADV_FAULT=ACTION@POINT=N[,file=PATH]

ACTION
    ``kill`` (SIGKILL: no handler runs, as the OOM killer), ``term`` (SIGTERM) or ``int``
    (SIGINT) sent to the process itself; ``pause``: wait until SIGTERM or SIGINT arrives from
    outside, then let the process's own handler take it (a test signals a process that is known
    to be at the point, e.g. a sweep launcher that forwards the signal); ``full``: raise the
    OSError of a full disk (ENOSPC) there.
POINT
    ``update=N``: at the end of training update N (after its validation and checkpoint, if any);
    ``checkpoint=N``: inside the N-th checkpoint this process saves, after the temporary file is
    written and before it is renamed over ``checkpoint.npz``;
    ``write=N``: inside the N-th atomic file write of this process (any file: a run's, a cache's,
    a command's output), after the temporary file is written and before it is renamed;
    ``review=N``: after a word attack has written its N-th review's record (`lstm_adv.wordattack`).
``file=PATH``
    Written (with the pid) just before the action; a fault whose file exists has fired and does
    not fire again, so a resumed or retried run with the same environment goes on. With
    ``pause`` it tells the test that the process is waiting.

Unset (every user's case) the hook costs one dictionary look-up per call.
"""

import errno
import functools
import os
import signal
import sys
from pathlib import Path

from .errors import UserError

ENV = "LSTM_ADV_FAULT"
ACTIONS = {"kill": signal.SIGKILL, "term": signal.SIGTERM, "int": signal.SIGINT, "pause": None, "full": None}
POINTS = ("update", "checkpoint", "write", "review")
_WAKE = {signal.SIGTERM, signal.SIGINT}

_counts = {}   # point -> times reached in this process (for points without their own number)


def check_env():
    """At every command's entry (`lstm_adv.common.lifecycle.cli_entry`): refuse a malformed
    ``LSTM_ADV_FAULT`` (a `UserError`) before anything is done, and say on stderr when one is set
    (a leftover ``pause`` would hang a real run). Returns the value, or None when unset."""
    spec = os.environ.get(ENV)
    if not spec:
        return None
    action, point, n, _ = parse(spec)
    print(f"warning: {ENV}={spec!r} is set: a test hook that makes this process {action} at {point} {n}; "
          "unset it for a real run", file=sys.stderr)
    return spec


def current():
    """The ``LSTM_ADV_FAULT`` value this process runs under, or None (for a run's provenance)."""
    return os.environ.get(ENV) or None


@functools.lru_cache(maxsize=4)
def parse(spec):
    """``(action, point, n, file)`` of a ``LSTM_ADV_FAULT`` value; a malformed one is a `UserError`."""
    usage = f"{ENV}={spec!r}: expected ACTION@POINT=N[,file=PATH] with ACTION one of {', '.join(ACTIONS)} " \
            f"and POINT one of {', '.join(POINTS)}"
    head, _, rest = spec.partition(",")
    action, _, where = head.strip().partition("@")
    point, _, n = where.partition("=")
    if action not in ACTIONS or point not in POINTS or not n.strip().isdigit() or int(n) < 1:
        raise UserError(usage)
    file = None
    if rest:
        key, _, value = rest.partition("=")
        if key.strip() != "file" or not value.strip():
            raise UserError(usage)
        file = Path(value.strip())
    return action, point, int(n), file


def reached(point, n=None):
    """Call at ``point`` (one of `POINTS`); ``n``: its number (the update), else this process's count.

    Does nothing unless ``LSTM_ADV_FAULT`` names this point and number (and its ``file`` does not
    exist yet); then writes the file and acts (see the module docstring).
    """
    spec = os.environ.get(ENV)
    if n is None:
        n = _counts[point] = _counts.get(point, 0) + 1
    if not spec:
        return
    action, at_point, at_n, file = parse(spec)
    if at_point != point or at_n != n or (file is not None and file.exists()):
        return
    if action == "pause":
        # Block the wake-up signals before announcing the pause, so one sent right after the file
        # appears is held pending for sigwait, not lost; then hand it to the process's own handler.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _WAKE)
        _announce(file)
        signum = signal.sigwait(_WAKE)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        signal.raise_signal(signum)
        return
    _announce(file)
    if action == "full":
        raise OSError(errno.ENOSPC, f"No space left on device ({ENV})")
    os.kill(os.getpid(), ACTIONS[action])
    if action == "kill":   # SIGKILL is delivered before kill() returns; never go on past the point
        signal.pause()


def _announce(file):
    if file is not None:
        file.write_text(f"{os.getpid()}\n")

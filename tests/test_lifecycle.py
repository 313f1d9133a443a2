"""The process lifecycle (lstm_adv.common.lifecycle), the same for every command that writes.

Each writing command is stopped inside its first atomic write, after the temporary file is
written and before the rename, by the fault hook (``LSTM_ADV_FAULT=ACTION@write=1``, at a chosen
point, never after a sleep): SIGTERM/SIGINT end with one line and 143/130, a full disk with one
``error:`` line and 2, and neither leaves a temporary or a half-written file.
"""

import errno
import os
import signal
import sys

import pytest

from conftest import TINY, merge, run_cli
from lstm_adv.common import faults, lifecycle
from lstm_adv.common.errors import UserError
from lstm_adv.common.lifecycle import Interrupted, cli_entry


# ---- the entry point, in-process --------------------------------------------------------------------
def _main_raising(exc):
    def main(argv):
        raise exc
    return cli_entry(main)


def test_cli_entry_turns_each_ending_into_one_line_and_its_status(capsys):
    assert cli_entry(lambda argv: len(argv))(["a", "b"]) == 2   # main's own status passes through
    assert _main_raising(UserError("hdim=0 must be positive"))([]) == lifecycle.EXIT_USER_ERROR
    assert capsys.readouterr().err == "error: hdim=0 must be positive\n"
    assert _main_raising(Interrupted(signal.SIGTERM))([]) == 143
    assert capsys.readouterr().err.startswith("interrupted by signal 15 ")
    assert _main_raising(Interrupted(signal.SIGINT, "stopped at {signum}"))([]) == 130
    assert capsys.readouterr().err == "stopped at 2\n"
    full = OSError(errno.ENOSPC, "No space left on device", "out.json")
    assert _main_raising(full)([]) == lifecycle.EXIT_USER_ERROR
    assert capsys.readouterr().err.startswith("error: disk full while writing to out.json (No space left on device)")
    with pytest.raises(PermissionError):   # not a full disk: a bug or the system's, with its traceback
        _main_raising(PermissionError(errno.EACCES, "Permission denied"))([])


def test_disk_full_says_names_the_folder_and_the_advice():
    with pytest.raises(UserError, match=r"^disk full while writing to runs/x \(No space left on device\); free"):
        with lifecycle.disk_full_says("runs/x", "free space"):
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(FileNotFoundError):
        with lifecycle.disk_full_says("runs/x", "free space"):
            raise FileNotFoundError(errno.ENOENT, "gone")


def test_a_signal_stops_at_once_or_at_the_loops_chosen_point():
    # Sent to this process, inside the blocks that take it; the previous handlers come back after.
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as stopped:
        with lifecycle.interruptible("at start-up {signum}"):
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pause()   # not reached: the handler raises first
    assert stopped.value.line() == "at start-up 15" and signal.getsignal(signal.SIGTERM) is before

    repeats = []
    with lifecycle.deferred_signals(on_repeat=repeats.append) as stop:
        assert not stop
        stop.check()                         # nothing came: goes on
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGINT and repeats == [signal.SIGTERM]
        with pytest.raises(Interrupted) as stopped:
            stop.check()
    assert stopped.value.signum == signal.SIGINT and signal.getsignal(signal.SIGTERM) is before


def test_the_run_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    first, second = lifecycle.RunLock(tmp_path / "run"), lifecycle.RunLock(tmp_path / "run")
    first.acquire()
    try:
        assert lifecycle.lock_holder(tmp_path / "run") == str(os.getpid())
        with pytest.raises(UserError, match=f"is in use by pid {os.getpid()}"):
            second.acquire()
    finally:
        first.discard()
    assert not (tmp_path / "run").exists() and lifecycle.lock_holder(tmp_path / "run") is None


def test_a_signal_while_the_run_folder_is_made_leaves_no_folder(tmp_path, monkeypatch, capsys):
    # SIGINT between the run folder's mkdir and the lock recording it (here: while the lock is taken):
    # the start-up stops with its line and 130, and the new folder is removed, not left behind.
    from lstm_adv import train

    real_flock = lifecycle.fcntl.flock

    def flock_after_a_signal(fh, op):
        if op & lifecycle.fcntl.LOCK_EX:
            os.kill(os.getpid(), signal.SIGINT)
        return real_flock(fh, op)

    monkeypatch.setattr(lifecycle.fcntl, "flock", flock_after_a_signal)
    monkeypatch.chdir(tmp_path)
    assert cli_entry(train.main)(merge(TINY, [f"saveto={tmp_path / 'new' / 'run'}"])) == 130
    assert "interrupted by signal 2 during start-up" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


# ---- every writing command, stopped in its first atomic write ---------------------------------------
def _bench(tmp_path):
    # The workers stubbed (they compile for minutes): main's own write of out= is what is stopped.
    code = ("import sys\nfrom lstm_adv import bench, cli\n"
            "bench._run_worker = lambda *a: {}\nbench._line = lambda r: 'measured'\nbench._available = lambda m: None\n"
            f"sys.argv = ['lstm-adv-bench', 'modes=C', 'cold=0', 'out={tmp_path / 'out' / 'bench.json'}']\n"
            "sys.exit(cli.bench())")
    return [sys.executable, "-c", code]


def _command(name, tmp_path):
    """``(argv after python -m, or a full command line; the file the command writes)``."""
    from test_embeddings import tiny_tarball
    from test_imdb import write_tree

    out = tmp_path / "out"
    out.mkdir()
    if name == "train":
        return "lstm_adv.train", merge(TINY, [f"saveto={out / 'run'}"]), out / "run" / "config.json"
    if name == "sweep":
        return "lstm_adv.sweep", ["plan", "table1", "seeds=1", "eps_grid=0", "data=toy",
                                  f"sweep_dir={out / 'sweep'}", f"out={out / 'commands.txt'}"], out / "commands.txt"
    if name == "data":
        tree = write_tree(tmp_path / "src")
        return "lstm_adv.data", ["export", f"data_path={tree}", "format=csv", f"out={out / 'imdb.csv'}"], out / "imdb.csv"
    if name == "embeddings":
        src = tiny_tarball(tmp_path / "tiny.tar.gz")
        return "lstm_adv.embeddings", ["train", f"data_path={src}", f"out={out / 'w2v.bin'}", "dim=8", "epochs=1",
                                       "min_count=1", "workers=1", "progress=0", "unsup=0"], out / "w2v.bin"
    return None, _bench(tmp_path), out / "bench.json"


COMMANDS = [pytest.param("train", marks=pytest.mark.slow), "sweep", "data", "embeddings", "bench"]


@pytest.mark.parametrize("action, status, line", [
    ("term", 128 + signal.SIGTERM, "interrupted by signal 15"),
    ("int", 128 + signal.SIGINT, "interrupted by signal 2"),
    ("full", lifecycle.EXIT_USER_ERROR, "error: "),
])
@pytest.mark.parametrize("name", COMMANDS)
def test_each_writing_command_stops_the_same_way(tmp_path, name, action, status, line):
    module, args, target = _command(name, tmp_path)
    env = {faults.ENV: f"{action}@write=1", "LSTM_ADV_CACHE": str(tmp_path / "cache"), "LSTM_ADV_OFFLINE": "1"}
    if module is None:   # bench: its console script, with the workers stubbed
        import subprocess
        r = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, env={**os.environ, **env})
    else:
        r = run_cli(module, args, tmp_path, env=env)
    assert r.returncode == status, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(line) and "Traceback" not in r.stderr, r.stderr[-2000:]
    if action == "full":
        assert "No space left on device" in last
    assert not target.exists()
    left = [p for p in tmp_path.rglob("*") if ".tmp" in p.name or ".part" in p.name]
    assert not left, left   # the stopped write removed its temporary file: nothing half-written

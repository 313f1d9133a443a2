"""The tests' fault hook (lstm_adv.common.faults): it acts at the chosen point, once, and nowhere else."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HANG_GUARD, wait_for_file
from lstm_adv.common import faults
from lstm_adv.common.errors import UserError

REPO = Path(__file__).resolve().parents[1]

# A process that passes updates 1..5 and then 3 checkpoints, printing each; SIGTERM and SIGINT print
# where they came and exit.
SCRIPT = """
import signal, sys
from lstm_adv.common import faults

def stop(signum, frame):
    print(f"signal {signum} at {where}", flush=True)
    sys.exit(128 + signum)

signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
for n in range(1, 6):
    where = f"update {n}"
    faults.reached("update", n)
    print(where, flush=True)
for n in range(1, 4):
    where = f"checkpoint {n}"
    faults.reached("checkpoint")
    print(where, flush=True)
"""


def run_script(spec, tmp_path):
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, faults.ENV: spec})


@pytest.mark.parametrize("spec, parsed", [
    ("kill@update=25", ("kill", "update", 25, None)),
    (" term@checkpoint=2 ", ("term", "checkpoint", 2, None)),
    ("pause@update=3,file=/tmp/x", ("pause", "update", 3, "/tmp/x")),
])
def test_parse(spec, parsed):
    action, point, n, file = faults.parse(spec)
    assert (action, point, n, None if file is None else str(file)) == parsed


@pytest.mark.parametrize("spec", ["kill", "kill@update", "kill@update=0", "kill@update=x", "stop@update=3",
                                  "kill@epoch=3", "kill@update=3,when=now", "kill@update=3,file="])
def test_parse_refuses_a_malformed_value(spec):
    with pytest.raises(UserError, match="expected ACTION@POINT=N"):
        faults.parse(spec)


@pytest.mark.parametrize("spec, code, last", [
    ("term@update=2", 128 + signal.SIGTERM, "signal 15 at update 2"),
    ("int@update=4", 128 + signal.SIGINT, "signal 2 at update 4"),
    ("kill@update=3", -signal.SIGKILL, "update 2"),
    ("term@checkpoint=2", 128 + signal.SIGTERM, "signal 15 at checkpoint 2"),
])
def test_the_process_acts_at_the_chosen_point(tmp_path, spec, code, last):
    r = run_script(spec, tmp_path)
    assert r.returncode == code, r.stderr
    assert r.stdout.splitlines()[-1] == last, r.stdout


def test_a_fault_whose_file_exists_has_fired_and_does_not_fire_again(tmp_path):
    fired = tmp_path / "fired"
    r = run_script(f"term@update=2,file={fired}", tmp_path)
    assert r.returncode == 128 + signal.SIGTERM and fired.read_text().strip().isdigit()
    r = run_script(f"term@update=2,file={fired}", tmp_path)
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "checkpoint 3", r.stderr


def test_pause_waits_for_a_signal_and_hands_it_to_the_process(tmp_path):
    paused = tmp_path / "paused"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, faults.ENV: f"pause@update=3,file={paused}"})
    try:
        wait_for_file(paused, proc)
        # Sent at once, perhaps before sigwait is reached: blocked first, the signal waits pending.
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=HANG_GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGINT, err
    assert out.splitlines() == ["update 1", "update 2", "signal 2 at update 3"]


def test_unset_does_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(faults.ENV, raising=False)
    faults.check_env()
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path,
                       env={k: v for k, v in os.environ.items() if k != faults.ENV})
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "checkpoint 3"


@pytest.mark.parametrize("module", ["lstm_adv.sweep", "lstm_adv.data", "lstm_adv.bench", "lstm_adv.results",
                                    "lstm_adv.embeddings"])
def test_every_command_refuses_a_malformed_hook_at_its_entry(tmp_path, module):
    # At its entry (`cli_entry`), before any work: not at its first write, after the work.
    # PYTHONPATH: this checkout's package, whatever the environment's editable install points to.
    proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, faults.ENV: "kill@epoch=3", "PYTHONPATH": str(REPO)}, timeout=HANG_GUARD)
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-1000:])
    assert proc.stderr.strip().splitlines() == [
        "error: LSTM_ADV_FAULT='kill@epoch=3': expected ACTION@POINT=N[,file=PATH] with ACTION one of "
        "kill, term, int, pause, full and POINT one of update, checkpoint, write, review"]
    assert not proc.stdout and not list(tmp_path.iterdir())


def test_a_set_hook_is_said_and_recorded_in_the_run(tmp_path, monkeypatch, capsys):
    from conftest import TINY, merge, read_json
    from lstm_adv import train

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(faults.ENV, "pause@update=100000")   # never reached by this run
    assert train.cli_entry(train.main)(merge(TINY, ["max_epochs=1", "saveto=run"])) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("warning: LSTM_ADV_FAULT='pause@update=100000' is set: a test hook that makes this process "
                      "pause at update 100000; unset it for a real run"), err
    assert read_json(tmp_path / "run" / "config.json")["provenance"]["fault_hook"] == "pause@update=100000"

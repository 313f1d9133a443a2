"""The one typed ``key=value`` parser (`lstm_adv.common.options`) and every command's use of it."""

import re
from dataclasses import dataclass

import pytest

from conftest import assert_one_line_error, run_cli
from lstm_adv.common.errors import UserError
from lstm_adv.common.options import help_text, option, parse, parse_with_rest, positional_arg


@dataclass(frozen=True)
class Small:
    count: int = option(3, "how many", minimum=1, group="sizes")
    scale: float = option(0.5, "a factor", group="sizes")
    name: str = option("", "a name")
    kind: str = option("lstm", "the encoder", ("lstm", "rnn"))
    fast: bool = option(False, "a switch")
    dropout: int = option(1, "an int switch", (0, 1))
    grid: tuple[float, ...] = option((0.0, 0.5), "a comma list of numbers", minimum=0)
    ids: tuple[int, ...] = option((), "a comma list of integers")
    modes: tuple[str, ...] = option(("C",), "a comma list of choices", ("C", "NUMBA"))


def _error(argv):
    with pytest.raises(UserError) as err:
        parse(Small, argv)
    return str(err.value)


def test_defaults_and_types():
    assert parse(Small, []) == Small()
    got = parse(Small, ["count=7", "scale=2", "name= a b ", "kind=rnn", "--grid=0, 1.5,", "ids=3,1", "modes=NUMBA,C"])
    assert got == Small(count=7, scale=2.0, name=" a b ", kind="rnn", grid=(0.0, 1.5), ids=(3, 1), modes=("NUMBA", "C"))
    assert isinstance(got.count, int) and isinstance(got.scale, float) and isinstance(got.grid[0], float)
    assert parse(Small, ["grid="]).grid == ()


@pytest.mark.parametrize("word, value", [("1", 1), ("0", 0), ("true", 1), ("FALSE", 0), ("Yes", 1), ("no", 0)])
def test_switches_take_words(word, value):
    got = parse(Small, [f"fast={word}", f"dropout={word}"])
    assert got.fast is bool(value) and got.dropout == value and type(got.dropout) is int


def test_a_bare_switch_means_one_and_a_bare_other_key_is_refused():
    assert parse(Small, ["fast", "--dropout"]) == Small(fast=True, dropout=1)
    assert "'count' is not key=value" in _error(["count"])


@pytest.mark.parametrize("argv, message", [
    (["cuont=3"], "unknown key 'cuont'; did you mean count?"),
    (["frobnicate=1"], "unknown key 'frobnicate'; see --help for the keys"),
    (["count=2.5"], "count='2.5' is not an integer; e.g. count=3"),
    (["count=0"], "count=0 must be >= 1"),
    (["scale=abc"], "scale='abc' is not a number; e.g. scale=0.5"),
    (["scale=inf"], "scale=inf must be a finite number"),
    (["kind=lstmm"], "kind=lstmm is not one of lstm, rnn (did you mean kind=lstm?)"),
    (["fast=maybe"], "fast=maybe is not one of 0, 1 (or true/false, yes/no)"),
    (["dropout=2"], "dropout=2 is not one of 0, 1 (or true/false, yes/no)"),
    (["grid=0,x"], "grid='0,x' must be comma-separated numbers, e.g. grid=0.0,0.5"),
    (["grid=0,-1"], "grid=-1.0 must be >= 0"),
    (["ids=1,2.5"], "ids='1,2.5' must be comma-separated integers, e.g. ids=1,2"),
    (["modes=C,XLA"], "modes=C,XLA is not one of C, NUMBA"),
    (["count=1", "count=2"], "count is given twice (count=1 and count=2); give it once"),
])
def test_errors_are_one_line_naming_key_value_and_expectation(argv, message):
    text = _error(argv)
    assert text == message and "\n" not in text


def test_positional_and_passthrough_arguments_come_back_in_order(tmp_path):
    run = tmp_path / "eps=0.5"
    run.mkdir()
    opts, rest = parse_with_rest(Small, [str(run), "count=2", "runs", "x/eps=1"], positional=positional_arg)
    assert opts.count == 2 and rest == [str(run), "runs", "x/eps=1"]
    opts, rest = parse_with_rest(Small, ["hdim=8", "count=2"], passthrough=True)
    assert opts.count == 2 and rest == ["hdim=8"]


def test_help_layout():
    text = help_text(Small, "prog [key=value ...]", "What it does.", "Afterwards.")
    lines = text.splitlines()
    assert lines[:4] == ["usage: prog [key=value ...]", "", "What it does.", ""]
    assert lines[4] == "sizes:" and "keys:" in lines and lines[-1] == "Afterwards."
    rows = {ln.split()[0]: ln for ln in lines if ln.startswith("  ")}
    assert re.fullmatch(r"  count=3 +int +how many", rows["count=3"])
    assert re.fullmatch(r"  kind=lstm +lstm\|rnn +the encoder", rows["kind=lstm"])
    assert re.fullmatch(r"  fast=0 +0\|1 +a switch", rows["fast=0"])
    assert re.fullmatch(r"  grid=0.0,0.5 +float,\.\.\. +a comma list of numbers", rows["grid=0.0,0.5"])
    assert re.fullmatch(r"  modes=C +C\|NUMBA,\.\.\. +a comma list of choices", rows["modes=C"])
    assert len({len(re.match(r"  \S+ +", ln).group()) for ln in rows.values()}) == 1   # aligned columns


# --------------------------------------------------------------------------- every command
#: (argv before the keys, a key with a typo, the key it is near); None: the command has no keys
COMMANDS = {
    "train": ([], "hdmi=3", "hdim"),
    "results": (["{dir}"], "plott=0", "plot"),
    "sweep plan": (["table1"], "drawz=3", "draws"),
    "sweep run": (["{cmds}"], "jobz=3", "jobs"),
    "sweep slurm": (["{cmds}"], "max_paralel=3", "max_parallel"),
    "sweep summary": (["{dir}"], "frob=1", None),
    "visualize": (["model={dir}"], "eps_viz=0.1", "eps_vis"),
    "data": (["build"], "workrs=2", "workers"),
    "embeddings": (["train"], "dimm=3", "dim"),
    "bench": ([], "repz=3", "reps"),
    "rundir": (["publish", "{cmds}", "{dir}/c.txt"], "rot=.", "root"),
}


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_the_common_help_and_did_you_mean(command, tmp_path):
    module, *sub = command.split()
    (tmp_path / "adir").mkdir()
    (tmp_path / "commands.txt").write_text("python -m lstm_adv.train data=toy saveto=r1\n")
    proc = run_cli(f"lstm_adv.{module}", [*sub, "--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: python -m lstm_adv.{module}") and proc.stderr == ""
    assert "\nEach key at most once, as key=value" in proc.stdout or "\nkeys: none\n" in proc.stdout
    assert re.search(r"\n\S[^\n]*:\n  \S+=\S* +\S+ +\S", proc.stdout) or "keys: none" in proc.stdout

    before, typo, near = COMMANDS[command]
    subst = {"dir": str(tmp_path / "adir"), "cmds": str(tmp_path / "commands.txt")}
    args = [*sub, *(a.format(**subst) for a in before), typo]
    proc = run_cli(f"lstm_adv.{module}", args, tmp_path)
    key = typo.split("=")[0]
    assert_one_line_error(proc, f"unknown key {key!r}", *([f"did you mean {near}?"] if near else []))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "commands.txt"]   # nothing written

"""A sweep's commands file and the options of the sweep commands: shared by plan, run and slurm.

A commands file holds one ``python -m lstm_adv.train key=value ...`` (or ``lstm-adv-train
key=value ...``) line per run; `parse_commands` checks every line with
`lstm_adv.config.parse_args` before anything starts (see `lstm_adv.sweeps`).
"""

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from .. import config as config_mod
from ..common import checks
from ..common.errors import UserError
from ..common.options import fields, option, parse_with_rest, unknown_key

# Pass-through keys that change nothing a run computes: left out of the default sweep dir; but
# resume=0 keeps a folder of its own, so starting over never writes into an existing sweep's runs.
_NOT_IN_DIR_NAME = set(config_mod.NEUTRAL_KEYS) - {"resume"}


@dataclass(frozen=True)
class RunOptions:
    """The keys of ``sweep run COMMANDS_FILE``."""

    jobs: int = option(2, "training processes at once", minimum=1)
    retries: int = option(2, "restarts of a run that crashed or was killed (it resumes from its checkpoint)",
                          minimum=0)
    compiledir: str = option("", "root of the per-slot compile caches (else $LSTM_ADV_COMPILEDIR, else "
                             "~/.cache/lstm_adv/pytensor)")
    publish: str = option("", "folder to publish each run's small files to as soon as it ends ok, at its path below "
                          "the commands file's folder (as experiments/publish_runs.sh; empty = none); a run published there "
                          "complete (ok, with every word attack asked) is not run again")


@dataclass(frozen=True)
class SlurmOptions:
    """The keys of ``sweep slurm COMMANDS_FILE``."""

    max_parallel: int = option(4, "array tasks running at once (%K)", minimum=1)
    time: str = option("24:00:00", "time limit of each task (#SBATCH --time)")
    cpus: int = option(1, "CPUs per task (#SBATCH --cpus-per-task; OMP_NUM_THREADS)", minimum=1)
    mem: str = option("", "memory per task (#SBATCH --mem; empty = the cluster's default)")
    partition: str = option("", "#SBATCH --partition (empty = the cluster's default)")
    job_name: str = option("", "#SBATCH --job-name (default lstm_adv-<the commands file's folder>)")
    compiledir: str = option("", "root of the per-slot compile caches on the nodes (as for sweep run)")
    out: str = option("", "the batch script (default: slurm.sh beside the commands file)")


def sweep_options(cls, argv, command):
    """``cls`` from a sweep command's ``key=value`` arguments; a training key is refused with where it belongs."""
    opts, keys = parse_with_rest(cls, argv, passthrough=True)
    for arg in keys:
        name = arg.split("=", 1)[0].strip().lstrip("-")
        if name in config_mod.FIELDS:
            raise UserError(f"unknown option {name!r} for `sweep {command}`; training keys "
                            "belong in the commands file (pass them to `sweep plan`)")
        raise unknown_key(name, fields(cls))
    return opts


def unless_given(defaults, keys):
    """The ``key=value`` defaults whose key the pass-through ``keys`` do not set (a key is given once)."""
    given = {k.split("=", 1)[0] for k in keys}
    return [d for d in defaults if d.split("=", 1)[0] not in given]



def command_line(keys):
    """One line of a commands file: ``python -m lstm_adv.train`` and the keys, shell-quoted."""
    return " ".join(["python", "-m", "lstm_adv.train"] + [shlex.quote(k) for k in keys])


def default_compiledir_root():
    return Path(os.environ.get("LSTM_ADV_COMPILEDIR") or Path.home() / ".cache" / "lstm_adv" / "pytensor")



def sweep_dir(name, opts, keys, extra_name=()):
    """The sweep's folder: ``sweep_dir=``, else ``runs/NAME-KEY=VALUE,...`` from the pass-through ``keys``.

    ``data=PATH`` is named by the file or folder's name, as a run directory is
    (`lstm_adv.config.Config.run_dir`), so the folder says which corpus without the whole path.
    """
    if opts.sweep_dir:
        return Path(opts.sweep_dir)
    parts = list(extra_name) + [_dir_part(k) for k in keys if k.split("=", 1)[0] not in _NOT_IN_DIR_NAME]
    suffix = ("-" + ",".join(parts).replace(os.sep, "_")) if parts else ""
    return Path("runs") / (name + suffix)


def _dir_part(key_value):
    key, _, value = key_value.partition("=")
    if key == "data" and config_mod.is_corpus_path(value):
        return f"data={Path(value).name}"
    return key_value


class Command:
    """One line of a commands file: its text, training keys, configuration and run directory."""

    def __init__(self, lineno, text, keys, cfg):
        self.lineno, self.text, self.keys, self.cfg = lineno, text, keys, cfg
        self.run_dir = cfg.run_dir()
        self.name = str(self.run_dir)


def _is_python(token):
    base = os.path.basename(token)
    return base.startswith("python") and all(c.isdigit() or c == "." for c in base[len("python"):])


def parse_commands(lines, source):
    """Check every line; returns a list of `Command` (blank and ``#`` lines skipped).

    Raises
    ------
    UserError
        On the first line that is not ``python -m lstm_adv.train key=value ...`` (or the console
        script's ``lstm-adv-train key=value ...``), has a bad key
        or value, or shares its run directory with another line.
    """
    commands, seen = [], {}
    for lineno, text in enumerate(lines, 1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{source} line {lineno}"
        try:
            tokens = shlex.split(text)
        except ValueError as err:
            raise UserError(f"{where}: {err}") from None
        if len(tokens) >= 3 and _is_python(tokens[0]) and tokens[1:3] == ["-m", "lstm_adv.train"]:
            keys = tokens[3:]
        elif tokens and os.path.basename(tokens[0]) == "lstm-adv-train":   # the console script
            keys = tokens[1:]
        else:
            raise UserError(f"{where} is not a `python -m lstm_adv.train key=value ...` (or `lstm-adv-train "
                            f"key=value ...`) command: {text[:80]!r}")
        try:
            cfg = config_mod.parse_args(keys)
        except UserError as err:
            raise UserError(f"{where}: {err}") from None
        cmd = Command(lineno, text, keys, cfg)
        key = os.path.abspath(cmd.run_dir)
        if key in seen:
            raise UserError(f"{where} has the run directory {cmd.run_dir} of line {seen[key]}; "
                            "every run needs its own saveto=")
        seen[key] = lineno
        commands.append(cmd)
    if not commands:
        raise UserError(f"{source} holds no commands")
    return commands


def check_run_dirs(commands, source):
    """Refuse a sweep in which some run directory cannot be made or written (`checks.writable_dir`)
    before any run starts, naming its line: otherwise only that run fails, after the others ran."""
    for cmd in commands:
        try:
            checks.writable_dir("saveto", cmd.run_dir)
        except UserError as err:
            raise UserError(f"{source} line {cmd.lineno}: {err}") from None


def read_commands(path):
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read the commands file {path}: {getattr(err, 'strerror', None) or err}") from None
    return parse_commands(lines, str(path))




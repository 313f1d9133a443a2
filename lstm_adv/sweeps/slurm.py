"""``sweep slurm``: render a commands file as a Slurm job array (one task per command).

See `lstm_adv.sweeps` for the usage.
"""

import os
import shlex
import sys
from pathlib import Path

from ..common import checks
from ..common.errors import UserError
from ..common.utils import atomic_write_text
from ..common.options import positional_arg
from .commands import SlurmOptions, check_run_dirs, default_compiledir_root, read_commands, sweep_options

SLURM_TEMPLATE = """#!/bin/bash
# Slurm job array for {commands}: one task per command ({n} commands), at most {k} at a time.
# Rendered by: python -m lstm_adv.sweep slurm {commands_arg}
# Submit: sbatch {script}      Resubmitting after a failure or time-out is safe: finished runs
# exit at once, interrupted ones resume from their checkpoint (Slurm's SIGTERM makes a run checkpoint).
#SBATCH --job-name={job_name}
#SBATCH --array=0-{last}%{k}
#SBATCH --time={time}
#SBATCH --cpus-per-task={cpus}
#SBATCH --output={logs}/%A_%a.out
#SBATCH --error={logs}/%A_%a.out
{extra}set -euo pipefail
cd {workdir}
export PATH={bindir}:"$PATH"
export OMP_NUM_THREADS={cpus}
COMMANDS={commands_abs}
# Task i runs command i+1 (blank and # lines do not count).
LINE=$(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$COMMANDS" | sed -n "$((SLURM_ARRAY_TASK_ID + 1))p")
if [ -z "$LINE" ]; then echo "no command for array task $SLURM_ARRAY_TASK_ID in $COMMANDS" >&2; exit 2; fi
# A compile cache of its own: the first free of {k} slots on this host (held with flock while the
# task runs), so concurrent tasks never share one and later tasks reuse the compiled code.
CACHE={cache_root}/$(hostname -s)
mkdir -p "$CACHE"
SLOT=""
for k in $(seq 0 $(({k} - 1))); do
  exec 9>>"$CACHE/slot-$k.lock"
  if flock -n 9; then SLOT=slot-$k; break; fi
  exec 9>&-
done
[ -n "$SLOT" ] || SLOT=task-$SLURM_ARRAY_TASK_ID
export PYTENSOR_FLAGS="base_compiledir=$CACHE/$SLOT"
export NUMBA_CACHE_DIR="$CACHE/$SLOT/numba"
echo "array task $SLURM_ARRAY_TASK_ID on $(hostname -s), cache $SLOT: $LINE"
eval "exec $LINE"
"""


def render_slurm(commands_path, commands, max_parallel=4, time_limit="24:00:00", cpus=1, mem="", partition="",
                 job_name="", compiledir=None, script_path=None, argv=()):
    """The text of a Slurm batch script running ``commands`` as one array (see `SLURM_TEMPLATE`)."""
    commands_path = Path(commands_path).resolve()
    extra = ""
    if mem:
        extra += f"#SBATCH --mem={mem}\n"
    if partition:
        extra += f"#SBATCH --partition={partition}\n"
    root = Path(compiledir) if compiledir else default_compiledir_root()
    return SLURM_TEMPLATE.format(
        commands=commands_path.name, commands_arg=" ".join(shlex.quote(a) for a in argv) or str(commands_path),
        n=len(commands), k=max_parallel, last=len(commands) - 1, time=time_limit, cpus=cpus,
        job_name=job_name or f"lstm_adv-{commands_path.parent.name}", extra=extra,
        logs=shlex.quote(str(commands_path.parent / "slurm-logs")),
        script=shlex.quote(str(script_path or "SCRIPT")), workdir=shlex.quote(os.getcwd()),
        bindir=shlex.quote(os.path.dirname(sys.executable)), commands_abs=shlex.quote(str(commands_path)),
        cache_root=shlex.quote(str(root.resolve())))


def slurm(argv):
    if not argv or not positional_arg(argv[0]):
        raise UserError("sweep slurm needs a commands file: python -m lstm_adv.sweep slurm COMMANDS_FILE "
                        "[max_parallel=K] [time=HH:MM:SS] [out=FILE]")
    opts = sweep_options(SlurmOptions, argv[1:], "slurm")
    commands = read_commands(argv[0])
    check_run_dirs(commands, argv[0])   # the tasks run in this folder (the script's cd), on a shared file system
    k = opts.max_parallel
    out = Path(opts.out or Path(argv[0]).parent / "slurm.sh")
    logs = Path(argv[0]).resolve().parent / "slurm-logs"
    checks.writable_file("out", out)
    checks.writable_dir("COMMANDS_FILE", logs)
    if opts.compiledir:
        checks.writable_dir("compiledir", opts.compiledir)
    text = render_slurm(argv[0], commands, k, opts.time or "24:00:00", opts.cpus, opts.mem, opts.partition,
                        opts.job_name, opts.compiledir or None, out, list(argv))
    # The log folder sbatch needs, then the script: a failure leaves no new log folder behind.
    existed = logs.is_dir()
    try:
        logs.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, text)
        out.chmod(0o755)
    except OSError as err:
        if not existed:
            try:
                logs.rmdir()
            except OSError:
                pass
        raise UserError(f"cannot write {err.filename or out}: {err.strerror}") from None
    print(f"wrote {out}: --array=0-{len(commands) - 1}%{k} ({len(commands)} tasks); submit with: sbatch {out}",
          file=sys.stderr)
    print(out)
    return 0

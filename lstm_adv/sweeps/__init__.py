"""Sweeps as a file of commands: plan them, run them here N at a time, or render a Slurm job array.

Usage::

    python -m lstm_adv.sweep plan table1 [seeds=5] [eps_grid=0,0.1,...] [sweep_dir=DIR] [out=FILE] [key=value ...]
    python -m lstm_adv.sweep plan random [draws=20] [search_seed=0] [sweep_dir=DIR] [out=FILE] [key=value ...]
    python -m lstm_adv.sweep run COMMANDS_FILE [jobs=2] [retries=2] [compiledir=ROOT] [publish=DIR]
    python -m lstm_adv.sweep slurm COMMANDS_FILE [max_parallel=4] [time=24:00:00] [cpus=1] [mem=]
                                   [partition=] [job_name=] [compiledir=ROOT] [out=FILE]
    python -m lstm_adv.sweep summary SWEEP_DIR      # the random search: best adversarial vs best plain
                                                    # (summary.md, runs.csv, random_search.png)

A *commands file* holds one ``python -m lstm_adv.train key=value ...`` (or ``lstm-adv-train
key=value ...``) command per line, each with
its own run directory (``saveto=``). Blank lines and ``#`` comments are ignored everywhere (the
launcher, the Slurm script). Whatever runs the lines -- this launcher, GNU parallel over ssh, a
Slurm array -- the run directories make the sweep resumable: ``lstm_adv.train`` exits at once for
a finished run (status ok) and continues an interrupted one from its checkpoint.

``plan`` writes the commands file (default ``<sweep_dir>/commands.txt``) and prints its path.
Every extra ``key=value`` is a training key and passes through to every run; keys the grid itself
sets (table1: eps, seed, saveto) are refused. The default sweep directory is ``runs/<NAME>``, with
the pass-through keys appended (``runs/table1-max_epochs=5``) so that a quick look never mixes
with the full sweep.

Before anything starts, ``plan``, ``run`` and ``slurm`` check every command with
`lstm_adv.config.parse_args`: one typo refuses the whole sweep with one line and exit status 2.

``run`` starts up to ``jobs`` training processes at once. Each gets its own PyTensor compile
directory, ``base_compiledir=ROOT/<host>/slot-K`` (and ``NUMBA_CACHE_DIR`` under it), where
slot K is held with a file lock for the whole sweep, so concurrent processes never share one
and later runs in the same slot reuse its compiled code (ROOT: ``compiledir=``, else
``$LSTM_ADV_COMPILEDIR``, else ``~/.cache/lstm_adv/pytensor``). Per run it appends the process's
output to ``stdout.log`` and ``stderr.log`` in the run directory (a new slot's cache starts as
a copy of a used one). Runs already finished are skipped; runs that ended in NaN earlier
(status nan) are reported, not rerun (delete the run directory to try again), and so is a run
directory holding a run of another configuration. A run that crashes or is killed is retried up
to ``retries`` times (it resumes from its checkpoint); exit 2 (bad input) and exit 3 (NaN cost) are reported, never
retried. With ``publish=DIR`` each run that ends ok (and each one finished earlier) has its small
files copied to DIR at once, at its path below the commands file's folder, with no local paths
(`lstm_adv.common.publish.publish_run`), so that another launcher sees it while this one is still
running; and a run whose folder is not finished here but whose copy in DIR is (status ok, with
every word attack its command asks) is not run again, so a sweep resumes from git on a machine
without the run folders. Exit status: 0 all ok, 1 some runs failed (listed at the end), 2 refused,
130/143 interrupted (SIGINT/SIGTERM reach the runs, which checkpoint; run again to resume).
"""

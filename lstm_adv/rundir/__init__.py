"""A run's directory: its lock, saved configuration, history, metrics and checkpoints.

Layout of ``runs/<name>/``::

    config.json      resolved configuration, library versions, PyTensor mode and floatX
    history.csv      one row per validation
    metrics.json     final errors, best update, wall time, status (running/ok/nan/interrupted)
    params.npz       best-on-validation parameters, tutorial names (allow_pickle=False)
    vocab.json       the id -> word list of the model's Wemb rows
    checkpoint.npz   everything needed to resume exactly (parameters, optimizer, RNG states ...: `save_loop_state`)
    train.log        the log lines of every attempt
    stdout.log       (sweep launcher) the process's output of every attempt, and stderr.log
    .lock            held while a process trains in this directory (`lstm_adv.common.lifecycle.RunLock`)
    word_attack/     (word_attack=) one folder per word attack: per-review records, summary, examples page

Every file is written atomically (temporary file, then rename): a kill or a full disk leaves
the previous version in place, never a half-written one. Every command reads run directories
through `read_run` / `find_runs` (a `RunRecord` per run); a corrupt file is one `UserError`
naming it.

One module per concern: `files` (`RunDir`: the paths and the writers), `records` (reading whole
runs), `state` (the training loop's state in a checkpoint), `cli` (``publish``).

``config.json`` keeps the local paths a run needs (data, compile cache). Files copied into
``experiments/results`` go through `lstm_adv.common.publish` first, which makes
every absolute path relative to the repository root, or drop it to its file name (the data is
named by its SHA-256 in ``config.json`` anyway)::

    python -m lstm_adv.rundir publish runs/x/config.json experiments/results/x/config.json
"""

from .cli import PublishOptions
from .files import HISTORY_COLUMNS, RunDir, read_json
from .records import RunRecord, find_runs, missing_word_attacks, read_run, read_vocab, run_status
from .state import STATE_KEYS, LoopState, checkpoint_params, patience_rule, restore_loop_state, save_loop_state

__all__ = ["PublishOptions", "HISTORY_COLUMNS", "RunDir", "read_json", "RunRecord", "find_runs", "read_run", "read_vocab", "run_status",
           "missing_word_attacks", "STATE_KEYS", "LoopState", "checkpoint_params", "patience_rule", "restore_loop_state", "save_loop_state"]

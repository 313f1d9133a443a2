"""Train the tutorial LSTM with the paper's adversarial objective: ``python -m lstm_adv.train key=value ...``

Reads top to bottom: parse the configuration, lock the run directory, load the data, build and
compile the model, resume from a checkpoint if there is one, run the tutorial's loop (shuffled
minibatches, validation every ``validFreq`` updates, patience, best-on-valid parameters), then
evaluate the best parameters and write the run's files. See `lstm_adv.rundir` for the layout.

Exit status: 0 finished (or already finished), 2 bad input, 3 the cost became NaN/Inf,
130/143 interrupted by SIGINT/SIGTERM (a checkpoint is written first; rerun to resume).
"""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import config as config_mod
from .common import checks, faults, lifecycle, plateau
from .common.errors import UserError
from .common.lifecycle import EXIT_NAN, EXIT_OK, Interrupted, cli_entry, exit_for_signal
from .common.utils import library_versions, make_rng, provenance
from .core.backend import flush_denormals, limit_blas_threads
from .data import BatchStream, data_identity, load_dataset, prepare_data, vocabulary_note
from .data.base import train_err_split
from .data.synonyms import SubstitutionTable, augment, load_synonyms
from .rundir import LoopState, RunDir, missing_word_attacks, patience_rule, restore_loop_state, save_loop_state


#: what a signal outside the loop (start-up) says; the loop and the final evaluation say their own
STOPPED_AT_START_UP = "interrupted by signal {signum} during start-up; nothing was trained: run the same command again"
STOPPED_IN_A_LATE_ATTACK = ("interrupted by signal {signum} during the word attack of a finished run; its records so far "
                            "are kept: run the same command again to go on")


def main(argv):
    if any(a in ("-h", "--help", "help") for a in argv):
        print(config_mod.help_text("python -m lstm_adv.train"))
        return 0
    show = [a for a in argv if a.partition("=")[0].strip().lstrip("-") == "print_config"]
    argv = [a for a in argv if a not in show]
    cfg = config_mod.parse_args(argv)
    if show and show[-1].partition("=")[2].strip() != "0":
        # The resolved configuration, loadable again with config=FILE; nothing is written.
        print(config_mod.dumps(cfg))
        print(f"run directory: {cfg.run_dir()}", file=sys.stderr)
        return 0
    run = RunDir(cfg.run_dir())
    # Outside the loop (which checkpoints first) a signal stops at once, with one line (`cli_entry`).
    with lifecycle.interruptible(STOPPED_AT_START_UP), lifecycle.disk_full_says(
            run.path, "free space and run the same command again (a checkpoint, if any, is intact)"):
        preflight(cfg, run)   # every check that needs no data loaded: nothing is written before it
        with run.locked():    # a start-up refused or stopped before `RunDir.keep` leaves nothing
            limit_blas_threads(1)
            if cfg.denormals == "flush" and not flush_denormals():
                print("note: denormals=flush is not available here (needs x86-64 and a C++ compiler); "
                      "training with gradual underflow", file=sys.stderr)
            return train(cfg, run)


def preflight(cfg, run):
    """Refuse what can be checked before any file is written: the run directory's folder and the
    files in it, a run of other keys there (resume=1), the data source, ``reload_model=``,
    ``w2v_path=``, ``synonyms=`` (ascc=1, synonym_aug > 0), the backend (mode=JAX, device=gpu);
    `cli_entry` has checked the tests' fault hook."""
    checks.writable_files("saveto", run.path, [path.name for path in run.files()])
    if cfg.resume and run.config.exists():   # train() checks again under the lock
        run.check_same_run(cfg)
    checks.backend(cfg)
    if cfg.data == "imdb":
        from .data import imdb_source  # the archive reader's modules: only for data=imdb
        cache = imdb_source.cache_dir()
        found = (cfg.data_path or os.environ.get("LSTM_ADV_DATA")
                 or any((cache / n).exists() for n in (imdb_source.ARCHIVE_NAME, "aclImdb.tar.gz", "aclImdb")))
        if found or not cfg.download or imdb_source.offline():   # never downloads here: found, or not allowed
            imdb_source.find_source(cfg.data_path, download=bool(cfg.download) and not found, cache=cache, progress=False)
    elif config_mod.is_corpus_path(cfg.data):
        from .data.corpus import check_corpus  # data=PATH: one pass over the rows, unless cached
        check_corpus(cfg)
    if cfg.reload_model:
        path = checks.readable_path("reload_model", cfg.reload_model)
        if path.is_dir():
            path = checks.readable_file("reload_model", RunDir(path).params)
        from .core.model import check_params, load_params  # imports PyTensor: only for reload_model=
        params = load_params(path)
        rows = params["Wemb"].shape[0] if "Wemb" in params and params["Wemb"].ndim == 2 else cfg.n_words
        check_params(params, cfg, min(rows, cfg.n_words), str(path))  # n_words is checked again with the data
    if cfg.ascc or cfg.synonym_aug > 0:
        load_synonyms(cfg.synonyms)   # a missing or malformed table: one line (the WordNet table is cached)
    if cfg.wemb_init == "word2vec" and cfg.w2v_path:
        path = checks.readable_file("w2v_path", cfg.w2v_path)
        from .data.embeddings import sniff_word2vec  # loads the IMDB reader: only for w2v_path=
        _, _, dim = sniff_word2vec(path)
        if dim != cfg.wdim:
            raise UserError(f"{path} holds {dim}-dimensional vectors but wdim={cfg.wdim}; use wdim={dim}")


def train(cfg, run):
    """Run (or resume) one training run in a locked `RunDir`; returns the exit status.

    The start-up is provisional (`RunDir.lock`) until the data and the initial parameters are
    loaded: bad data or a bad word2vec file refused there leaves the run directory as it was.
    """
    if cfg.resume:
        run.check_same_run(cfg)
        if run.finished():
            run.keep()
            missing = missing_word_attacks(run.path, cfg)
            if missing:   # a finished run asked for a word attack it lacks: attacked, not trained again
                run.log(f"{run.path}: already finished (status ok); word attack {', '.join(missing)} on its best "
                        "parameters (params.npz)")
                from .wordattack.runs import attack_finished_run   # the synonym tables: only when asked
                data = load_data(cfg, run)
                if not run.check_same_data(data_identity(data, min(cfg.n_words, len(data.words)))):
                    run.log(f"note: {run.config} predates the data check; attacking without comparing the data")
                with lifecycle.interruptible(STOPPED_IN_A_LATE_ATTACK):
                    attack_finished_run(cfg, run, data, missing)
                return EXIT_OK
            run.log(f"{run.path}: already finished (status ok); resume=0 trains it again")
            return EXIT_OK
    run.log(f"run directory: {run.path}")
    run.log("configuration: " + json.dumps(cfg.overrides()) + "  (all keys in config.json)")

    # Read now, not after compiling: every checkpoint unreadable is refused with the run folder as it was.
    checkpoint = run.load_checkpoint(run.log) if cfg.resume else None
    data = load_data(cfg, run)
    n_words = min(cfg.n_words, len(data.words))
    checks.model_fits(cfg, n_words)   # with the loaded vocabulary (a corpus's was unknown before)
    if checkpoint is not None and not run.check_same_data(data_identity(data, n_words)):
        run.log(f"note: {run.config} predates the data check; resuming without comparing the data")
    params, init_info = initial_params(cfg, n_words, data, int(data.info.get("n_classes", 2)))
    if cfg.uses_unlabelled and not data.unlabelled:
        raise UserError(f"unlabelled={cfg.unlabelled}: no unlabelled review passed the maxlen={cfg.maxlen} rule")
    run.keep()   # the start-up's checks passed: from here on the run directory is this run's
    run.remove_temporary_files()   # a killed save's; we hold the lock, so none is in use
    if not cfg.resume:
        for path in (run.checkpoint, run.checkpoint_prev):
            path.unlink(missing_ok=True)
    # ascc=1, synonym_aug > 0: the substitutes of the model's vocabulary, once (config.json records them)
    subs = SubstitutionTable(load_synonyms(cfg.synonyms), data.words, n_words) if cfg.ascc or cfg.synonym_aug else None
    model = build_model(cfg, run, data, n_words, params, init_info, subs)
    unlab = unlabelled_stream(cfg, run, model, data)
    state = restore_loop_state(checkpoint, model, unlab)
    del checkpoint   # its arrays are in the model and the state now
    if state is None:
        state = LoopState(shuffle_rng=make_rng(cfg.seed, "shuffle"))
    else:
        run.log(f"resumed from the checkpoint at update {state.uidx} (epoch {state.eidx})")
        # history.csv as the checkpoint has it: a row written after it (a validation before a kill,
        # the end-of-run one) comes again if the run reaches it, and a larger max_epochs may not.
        if state.history:
            run.write_history(state.history)
        else:
            run.history.unlink(missing_ok=True)

    # SIGTERM/SIGINT: finish the current update, checkpoint, exit (a cluster's pre-emption signal).
    with lifecycle.deferred_signals() as stop:
        state.t_start, state.c_start = time.time(), time.process_time()
        run.write_metrics(state.metrics("running"))
        try:
            with lifecycle.disk_full_says(run.path, "the previous checkpoint is intact: free space and run the "
                                          "same command to resume"):
                status = run_loop(cfg, run, model, data, unlab, state, stop, subs)
        except Interrupted as intr:
            save_loop_state(run, model, state, unlab)
            run.write_metrics(state.metrics("interrupted"))
            run.log(f"interrupted by signal {intr.signum} at update {state.uidx}: checkpoint written; "
                    "run the same command again to resume")
            return exit_for_signal(intr.signum)
    if status is not None:
        return status

    # A signal here stops at once (the loop's last checkpoint is written first; a rerun evaluates again).
    try:
        return _final_evaluation(cfg, run, model, data, state, unlab)
    except Interrupted as intr:
        run.write_metrics(state.metrics("interrupted"))
        run.log(f"interrupted by signal {intr.signum} during the final evaluation: the checkpoint is intact; "
                "run the same command again to evaluate")
        return exit_for_signal(intr.signum)
    except OSError as err:
        if lifecycle.is_disk_full(err):
            try:
                run.write_metrics(state.metrics("interrupted"))
            except OSError:
                pass
        raise


# ---- the tutorial's loop ----------------------------------------------------------------------------
def run_loop(cfg, run, model, data, unlab, state, stop, subs=None):
    """The tutorial's loop from ``state`` (updated in place) to ``max_epochs`` or the early stop.

    ``unlab`` is the unlabelled reviews' `BatchStream` (or None); ``subs`` the `SubstitutionTable`
    of synonym_aug > 0 (or None); ``stop`` the signals received
    (`lstm_adv.common.lifecycle.Stop`): the loop raises `Interrupted` at the end of the update in
    which one came (the caller checkpoints).
    Returns `EXIT_NAN` (status nan written, no checkpoint) when the cost is not finite, else None.
    """
    while state.eidx < cfg.max_epochs and not state.estop:
        if state.epoch_perm is None:
            state.epoch_perm = state.shuffle_rng.permutation(len(data.train))
            state.batch_pos = 0
        batches = [state.epoch_perm[i:i + cfg.batch_size] for i in range(0, len(state.epoch_perm), cfg.batch_size)]
        bar = _progress(cfg, len(batches), state)
        for pos in range(state.batch_pos, len(batches)):
            cost = train_update(cfg, model, data, unlab, state, batches[pos], subs)
            state.batch_pos = pos + 1
            if not np.isfinite(cost):
                # Fail loudly: the checkpoint before the blow-up is kept, never a fake error.
                run.log(f"bad cost {cost} at update {state.uidx}: stopping (status nan); the last checkpoint is kept")
                run.write_metrics(state.metrics("nan"))
                return EXIT_NAN
            state.cost_sum += cost
            state.cost_n += 1
            _show_update(cfg, run, bar, state, cost)
            if state.uidx % config_mod.valid_every(cfg, len(data.train)) == 0:   # validFreq=0: once per epoch
                validation_step(cfg, run, model, data, state, bar)
            if state.uidx % cfg.saveFreq == 0:
                save_loop_state(run, model, state, unlab)
            faults.reached("update", state.uidx)   # tests only: LSTM_ADV_FAULT
            stop.check()   # a signal during this update: stop here (`train` checkpoints)
            if state.estop:
                break
        if bar is not None:
            bar.close()
        if not state.estop:
            state.eidx += 1
            state.epoch_perm = None
    return None


def train_update(cfg, model, data, unlab, state, idx, subs=None):
    """One update on the training reviews ``idx`` (synonym_aug > 0: some words replaced from the
    `SubstitutionTable` ``subs``) and the next unlabelled batch; returns its cost."""
    seqs = [data.train.seqs[i] for i in idx]
    if cfg.synonym_aug > 0:
        # A stream per update, from the one seed: nothing to checkpoint, a resumed run draws the same.
        seqs = augment(seqs, subs, cfg.synonym_aug, make_rng(cfg.seed, f"synonym_aug/{state.uidx}"))
    x, mask, y = prepare_data(seqs, data.train.labels[idx], cfg.floatX)
    t = time.perf_counter()
    extra = ()
    if unlab is not None:
        extra = prepare_data([data.unlabelled[i] for i in unlab.next()], [], cfg.floatX)[:2]
    cost, compiling = model.train_step(x, mask, y, *extra)  # compiling: seconds of compile (first call, JAX bucket)
    state.step_time[0] += time.perf_counter() - t - compiling
    state.step_time[1] += 1
    state.uidx += 1
    return cost


def validation_step(cfg, run, model, data, state, bar, epoch=None):
    """Validate; keep the best parameters; write the line and ``history.csv``; apply the patience
    rule. ``epoch``: the row's (`validate`)."""
    state.history.append(validate(cfg, model, data, state, epoch))
    new_best, state.bad_counter, estop = patience_rule([r["valid_err"] for r in state.history], state.bad_counter,
                                                       cfg.patience, have_best=state.best_p is not None)
    if new_best:
        state.best_p = model.get_params()
        state.best_update = state.uidx
    _write(bar, run, _valid_line(state.history[-1], state))
    run.write_history(state.history)
    if estop:
        _write(bar, run, "early stop")
        state.estop = True


def _final_evaluation(cfg, run, model, data, state, unlab):
    """After the loop: its last checkpoint; a validation if ``validFreq`` never came; then the best
    parameters' errors (and under attack) and the plateau (`plateau_report`) into metrics.json.

    The checkpoint is the loop's state before anything here changes it, so a rerun (interrupted, or a larger
    ``max_epochs``) goes on as a run never stopped: no end-of-run validation, the last parameters, not the best.
    """
    save_loop_state(run, model, state, unlab)
    if not state.history:
        # validFreq never came: validate after the last update (every run has a history.csv), at its epoch
        validation_step(cfg, run, model, data, state, None, epoch=state.eidx - 1)
        run.write_params(state.best_p)
    model.set_params(state.best_p)
    from .evaluate import attack_report, attack_summary, pred_error  # imports PyTensor: keep --help fast

    t_eval = time.time()
    errs = {name: pred_error(model, split, cfg.valid_batch_size)
            for name, split in (("train_err", data.train), ("valid_err", data.valid), ("test_err", data.test))}
    extra = {"eval_time_s": round(time.time() - t_eval, 2)}
    if cfg.attack_strengths:
        subset = data.test
        if 0 < cfg.attack_size < len(subset):
            subset = subset.subset(np.sort(make_rng(cfg.seed, "attack_subset").permutation(len(subset))[:cfg.attack_size]))
        t_attack = time.time()
        extra["attacks"] = attack_report(model, subset, cfg.valid_batch_size, cfg.attack_strengths, cfg.adv_norm,
                                         cfg.attack_k, relative=bool(cfg.attack_relative))
        extra["attack_time_s"] = round(time.time() - t_attack, 2)
    if cfg.word_attacks:
        from .wordattack.runs import word_attacks   # the synonym tables: only when asked
        t_word = time.time()
        extra["word_attack"] = word_attacks(cfg, run, model, data, state.best_p, cfg.word_attacks)
        # wall_time_s counts them (as the final evaluation and the attacks): this says how much of it
        extra["word_attack_time_s"] = round(time.time() - t_word, 2)
    if model.compile_summary():
        run.log(model.compile_summary())
        extra["jax_compile"] = model.compile_stats()
    left, plateau_note = plateau.plateau_report(state.history, data.info)
    out = state.metrics("ok", **errs, **left, **extra)
    run.write_metrics(out)
    speed = _speed(out["ms_per_update"])
    run.log(f"done: train {errs['train_err']:.4f} valid {errs['valid_err']:.4f} test {errs['test_err']:.4f} "
            f"(best update {state.best_update}, {out['n_updates']} updates, {out['wall_time_s']:.0f}s, {speed})"
            + (f"; {attack_summary(extra['attacks'])} ({extra['attack_time_s']:.0f}s)" if "attacks" in extra else "")
            + (f"; {plateau_note}" if plateau_note else ""))
    return EXIT_OK


# ---- start-up: data, model, config.json -------------------------------------------------------------
def load_data(cfg, run):
    """The `Dataset` of ``cfg``, with its one-line summary logged."""
    data = load_dataset(cfg)
    info = data.info
    run.log(f"data {cfg.data}: train {info['n_train']}, valid {info['n_valid']}, test {info['n_test']} reviews; "
            f"the maxlen={cfg.maxlen} {cfg.maxlen_mode} kept {100 * info['train_kept_fraction']:.1f}% "
            f"of {info['n_train_all']} training reviews; "
            + vocabulary_note(data, min(cfg.n_words, len(data.words)))
            + (f"; {info['n_classes']} classes: {', '.join(map(str, info['label_names']))}"
               if config_mod.is_corpus_path(cfg.data) and "label_names" in info else "")
            + (f"; validFreq=0: one validation per epoch ({config_mod.valid_every(cfg, info['n_train'])} updates)"
               if cfg.validFreq == 0 else "")
            + (f"; {info['read_note']}" if info.get("read_note") else ""))
    return data


def build_model(cfg, run, data, n_words, params, init_info, subs=None):
    """The compiled `Model` from its initial parameters (`initial_params`) and, ascc=1, the
    `SubstitutionTable` ``subs``; writes ``config.json`` and ``vocab.json``."""
    from .core.adversarial import describe_objective  # imports PyTensor: keep --help and bad-key errors fast
    from .core.compiled import Model

    info = data.info
    n_classes = int(info.get("n_classes", 2))
    init_note = _init_note(init_info)
    t0 = time.time()
    word_counts = info.get("word_counts") if cfg.emb_norm else None
    model = Model(cfg, n_words, params, word_counts=word_counts, n_classes=n_classes,
                  substitutions=subs.padded(cfg.ascc_max_subs) if cfg.ascc else None)
    import pytensor  # already loaded by Model; here for its config (compiledir)
    run.log(f"compiled in {time.time() - t0:.1f}s: mode {model.mode_name}, floatX {cfg.floatX}, "
            f"objective {describe_objective(cfg)}" + init_note)
    if subs is not None:
        run.log(f"substitutions: {json.dumps(subs.info())}")
    record = {"config": cfg.to_dict(), "adversarial": cfg.adversarial, "n_words": n_words, "n_classes": n_classes,
              "resolved": {"validFreq": config_mod.valid_every(cfg, len(data.train))},   # validFreq=0's value
              "versions": library_versions(),
              "pytensor": {"mode": model.mode_name, "floatX": cfg.floatX, "linker": str(model.mode.linker),
                           "compiledir": pytensor.config.compiledir},
              "data": {k: v for k, v in info.items() if k != "word_counts"},
              "data_identity": data_identity(data, n_words),   # what a resumed run must find again
              # emb_norm=1: the model's embedding depends on them (lstm_adv.core.model.emb_norm_weights).
              **({"word_counts": list(word_counts[:n_words]) + [int(sum(word_counts[n_words:]))]}
                 if word_counts is not None else {}),
              "init": init_info,
              **({"substitutions": subs.info()} if subs is not None else {}),
              "argv": sys.argv,
              "provenance": provenance()}
    run.write_config(record)
    run.write_vocab(data.words[:n_words])
    return model


def unlabelled_stream(cfg, run, model, data):
    """``unlabelled=N``: one batch of unlabelled reviews per update, from their own seeded stream; else None."""
    if not model.unlabelled:   # (an empty unlabelled set was refused in `train`'s start-up)
        return None
    unlab = BatchStream(len(data.unlabelled), cfg.batch_size, make_rng(cfg.seed, "unlabelled"))
    run.log(f"unlabelled: {len(data.unlabelled)} reviews in the VAT term, {cfg.batch_size} per update")
    return unlab


def initial_params(cfg, n_words, data, n_classes=2):
    """Starting parameters for ``n_classes`` classes: ``reload_model``, else the tutorial's init (+ word2vec rows)."""
    from .core.model import check_params, init_params, load_params  # imports PyTensor (--help stays fast)

    if cfg.reload_model:
        path = Path(cfg.reload_model)
        if path.is_dir():
            path = RunDir(path).params
        params = load_params(path)
        check_params(params, cfg, n_words, str(path), n_classes)
        return params, {"reload_model": str(path)}
    params = init_params(cfg, n_words, n_classes=n_classes)
    if cfg.wemb_init == "word2vec" and cfg.data == "toy" and not cfg.w2v_path:
        from .data.toy import toy_vectors  # only for data=toy
        W, info = toy_vectors(data.words[:n_words], cfg.wdim)
        params["Wemb"] = W.astype(params["Wemb"].dtype)
        return params, info
    if cfg.wemb_init == "word2vec":
        from .data.embeddings import ensure_corpus_vectors, ensure_imdb_vectors, load_word2vec  # gensim: only here
        from .data.imdb_source import sha256_file  # the IMDB reader: only here
        own = "source_format" in data.info   # a user's corpus (an aclImdb folder is IMDB: its vectors)
        path = cfg.w2v_path or (ensure_corpus_vectors(cfg, data.info) if own else
                                ensure_imdb_vectors(cfg.wdim, cfg.data_path, bool(cfg.download), bool(cfg.progress)))
        params["Wemb"], w2v = load_word2vec(path, data.words[:n_words], params["Wemb"], cfg.w2v_limit,
                                            missing=cfg.w2v_missing, std=cfg.w2v_std,
                                            rng=make_rng(cfg.seed, "w2v_missing"))
        w2v["w2v_file"] = Path(path).name
        w2v["w2v_sha256"] = sha256_file(path)
        w2v["w2v_source"] = ("w2v_path" if cfg.w2v_path else "trained on the corpus's own texts "
                             "(lstm_adv.data.embeddings.ensure_corpus_vectors)" if own
                             else "IMDB stand-in (lstm_adv.data.embeddings.AUTO_SETTINGS)")
        return params, w2v
    return params, None


def _init_note(info):
    if not info:
        return ""
    if "reload_model" in info:
        return f"; parameters from {info['reload_model']}"
    scaled = f" -> {info['scaled_coord_std']}" if "scaled_coord_std" in info else ""
    return (f"; word2vec {info['w2v_file']}: {100 * info['coverage']:.1f}% of the vocabulary found, "
            f"per-coordinate std {info.get('file_coord_std')}{scaled}, missing rows {info['missing_init']}")


def validate(cfg, model, data, state, epoch=None):
    """One history row: errors with the current parameters (test only if ``valid_test=1``; the train
    error on ``train_err_size`` reviews, `train_err_split`); ``epoch``: the row's, by default the
    epoch in progress (``state.eidx``)."""
    from .evaluate import pred_error  # imports PyTensor: keep --help fast

    row = {"update": state.uidx, "epoch": state.eidx if epoch is None else epoch,
           "train_cost": state.cost_sum / max(state.cost_n, 1),
           "train_err": pred_error(model, train_err_split(data.train, cfg.train_err_size), cfg.valid_batch_size),
           "valid_err": pred_error(model, data.valid, cfg.valid_batch_size),
           "test_err": pred_error(model, data.test, cfg.valid_batch_size) if cfg.valid_test else None}
    state.cost_sum, state.cost_n = 0.0, 0
    return row


def _valid_line(row, state):
    best = min(r["valid_err"] for r in state.history)
    test = f" test {row['test_err']:.4f}" if row["test_err"] is not None else ""
    return (f"update {row['update']} epoch {row['epoch']}: cost {row['train_cost']:.4f} "
            f"train {row['train_err']:.4f} valid {row['valid_err']:.4f}{test} (best {best:.4f} "
            f"at {state.best_update}) {_speed(state.ms_per_update())}")


def _speed(ms):
    """An attempt's update time for the log; never a 0 that reads as a measurement."""
    return "no update in this attempt" if ms is None else f"{ms:.1f} ms/update"


def _show_update(cfg, run, bar, state, cost):
    """The progress bar, or with progress=0 (logs, sweeps) the tutorial's line every dispFreq updates."""
    if bar is not None:
        bar.update(1)
        if state.uidx % cfg.dispFreq == 0:
            bar.set_postfix(cost=f"{cost:.4f}")
    elif state.uidx % cfg.dispFreq == 0:
        ms = 1000 * (state.step_time[0] - state.disp_mark[0]) / max(state.step_time[1] - state.disp_mark[1], 1)
        state.disp_mark[:] = state.step_time
        run.log(f"update {state.uidx} epoch {state.eidx}: cost {cost:.4f}, {ms:.1f} ms/update")


def _progress(cfg, total, state):
    """progress=1: the epoch's bar on a terminal; to a file or a pipe one that draws nothing (disable=None)."""
    if not cfg.progress:
        return None
    from tqdm import tqdm  # only with progress=1
    return tqdm(total=total, initial=state.batch_pos, desc=f"epoch {state.eidx}", leave=False,
                dynamic_ncols=True, file=sys.stderr, disable=None)


def _write(bar, run, line):
    if bar is not None:
        bar.clear()
    run.log(line)
    if bar is not None:
        bar.refresh()


if __name__ == "__main__":
    sys.exit(cli_entry(main)())

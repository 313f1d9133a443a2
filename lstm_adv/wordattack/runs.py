"""Training's ``word_attack=``: the word attacks of a run, at the end of training or on a finished run.

Both write into ``RUN/word_attack/METHOD-nN-seedS/`` (`lstm_adv.wordattack.default_folder`, the
folder ``python -m lstm_adv.attack`` uses by default, so either resumes the other) and return the
summaries that go into metrics.json's ``word_attack``.
"""

from ..core.compiled import Model
from ..core.model import load_params
from ..rundir.files import read_json
from . import attack_model, default_folder, summary_line


def word_attacks(cfg, run, model, data, params, methods):
    """Each word attack of ``methods`` on the model as it is (its best parameters ``params``).

    Parameters
    ----------
    cfg : Config
    run : lstm_adv.rundir.RunDir
    model : lstm_adv.core.compiled.Model
    data : lstm_adv.data.Dataset
        The run's data (its test split is attacked).
    params : dict
    methods : sequence of str

    Returns
    -------
    dict: method -> summary (`lstm_adv.wordattack.runner.summarize`)
    """
    n_words = model.n_words
    out = {}
    for method in methods:
        n = cfg.word_attack_n(method)
        folder = default_folder(run.path, method, n, cfg.word_attack_seed, cfg.word_attack_max_change)
        summary = attack_model(model, data.test, data.words[:n_words], n_words, folder, method, n, cfg.synonyms,
                               cfg.word_attack_max_change, cfg.word_attack_seed, params,
                               data.info.get("label_names"), model_name=str(run.path), log=run.log)
        run.log(summary_line(summary))
        out[method] = summary
    return out


def attack_finished_run(cfg, run, data, methods):
    """Word-attack a finished run's best parameters (``params.npz``) and add the summaries to its
    metrics.json; nothing else of the run changes."""
    params = load_params(run.params)
    saved = read_json(run.config) or {}
    n_words = int(saved.get("n_words", min(cfg.n_words, len(data.words))))
    counts = data.info.get("word_counts") if cfg.emb_norm else None   # as train.build_model
    model = Model(cfg, n_words, params, word_counts=counts, n_classes=int(data.info.get("n_classes", 2)))
    summaries = word_attacks(cfg, run, model, data, params, methods)
    metrics = read_json(run.metrics)
    metrics["word_attack"] = {**metrics.get("word_attack", {}), **summaries}
    run.write_metrics(metrics)

"""lstm_adv: adversarial training of the Theano LSTM sentiment tutorial, rebuilt on PyTensor.

Reproduces Caswell, Nie & Sen (2015), "Exploring Adversarial Learning on Neural Network
Models for Text Classification". See README.md.
"""

__version__ = "0.1.0"


def load_run(run, mode=""):
    """A trained run that classifies raw texts: ``lstm_adv.load_run("runs/my").predict(["a good film"])``.

    See `lstm_adv.predict.load_run` (``.predict(texts)``, ``.predict_proba(texts)``, ``.labels``).
    """
    from .predict import load_run as _load_run   # PyTensor and the data readers load only when asked

    return _load_run(run, mode)

"""lstm_adv: adversarial training of the Theano LSTM sentiment tutorial, rebuilt on PyTensor.

Reproduces Caswell, Nie & Sen (2015), "Exploring Adversarial Learning on Neural Network
Models for Text Classification". See README.md.
"""

__version__ = "0.1.0"

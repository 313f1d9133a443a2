"""The model and how it is compiled: nothing here reads files or knows a corpus.

`backend` (mode choice, BLAS threads), `model` (parameters, embedding, classifier), `lstm`
(the encoders and the LSTM's backward pass), `kernels` + ``lstm_kernel.c`` (the C Ops of the
LSTM step and the embedding rows), `sequence_ops` (the whole-sequence LSTM Ops, mode C's default), `adversarial` (the paper's objective and VAT), `optimizers`, `jax_backend`, and
`compiled` (the compiled `Model` the training loop and the tools use).
"""

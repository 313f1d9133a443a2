"""The model and how it is compiled: nothing here reads files or knows a corpus.

`backend` (mode choice, BLAS threads), `model` (parameters, embedding, classifier), `lstm`
(the encoders and the LSTM's backward pass), `kernels` + ``lstm_kernel.c`` (the C Ops of the
LSTM step and the embedding rows), `sequence_ops` (the whole-sequence LSTM Ops, mode C's default), `adversarial` (the paper's objective and VAT), `optimizers`, `jax_backend`, and
`compiled` (the compiled `Model` the training loop and the tools use).
"""

import os
import sys

# PyTensor parses PYTENSOR_FLAGS (and a PYTENSORRC file) when first imported and raises ValueError on
# a bad value (floatX=float99, linker=bogus) from inside whichever module imports it first. Checked
# here, before any module of this package imports it, so that a mistyped flag ends as all bad input
# does: one line, exit 2, no traceback. Only when flags are given: the commands that need no
# PyTensor (bench's driver, --help) then skip its import.
if (os.environ.get("PYTENSOR_FLAGS") or os.environ.get("PYTENSORRC")) and "pytensor" not in sys.modules:
    try:
        import pytensor  # noqa: F401
    except ValueError as err:
        print(f"error: PyTensor refuses its configuration (PYTENSOR_FLAGS={os.environ.get('PYTENSOR_FLAGS', '')}): "
              f"{err}; correct or unset it", file=sys.stderr)
        raise SystemExit(2) from None

"""What mode=JAX (and so device=gpu) needs: static shapes and dropout drawn on the host.

PyTensor's JAX backend traces each compiled function with `jax.jit`, and JAX needs every array
shape as a concrete value: the scans' buffers are sized by the batch's time length and its
number of reviews, which a graph over ``(None, None)`` inputs only knows at run time (the
original traceback: ``Shapes must be 1D sequences of concrete values``). So under JAX every
function of `lstm_adv.core.compiled.Model` is a `BucketedFunction`:

- the time axis of its inputs is padded up to a bucket length (`bucket_length`: 8, 12, 16, 24,
  32, 48, 64, 96, 128, 192, ...), with word id 0, mask 0 and zero embeddings. Padding is
  masked everywhere in the model (the LSTM and RNN carry h and c through masked steps, the
  pooling sums ``h * mask``, the perturbation is multiplied by the mask, the gradient reaching a
  masked step is 0), so costs, gradients and updates are those of the unpadded batch up to
  the order of floating-point sums. Outputs with a time axis are cut back to the batch's length;
- the graph is compiled once per padded shape (bucket length x batch size): the symbolic
  inputs are swapped (``givens``) for inputs with that static shape, so every shape in the
  graph folds to a constant before JAX traces it. The number of reviews is not padded (the
  cost is a mean over them), so a split whose size is not a multiple of the batch size adds
  one shape for its last batch;
- the dropout masks' uniform draws are made on the host, from the model's shared NumPy
  generators, with the same call PyTensor's C and Python backends make (``RandomVariable.perform``:
  ``op.rng_fn(generator, low, high, size)``, cast to floatX), and passed in as inputs. The
  JAX backend would otherwise work on a private copy of each generator (PyTensor warns "will
  not be used in the compiled JAX graph"), so the model's RNGs, hence checkpoints, would never
  advance; drawn on the host, the masks are the very numbers mode=C draws from the same seed;
- JAX's 64-bit types are on for float64 and off for float32 (`set_x64`);
- XLA's compiled programs are kept in PyTensor's compile directory (`enable_compilation_cache`),
  so a second process (a resumed run, the next run of a sweep) compiles about half as long.

The word-id gather (`lstm_adv.core.model.embed`) and the NLL's integer indexing
(`lstm_adv.core.model.nll`) need nothing more once the shapes are static.
"""

import copy
import os
import time
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import ancestors, graph_inputs
from pytensor.tensor.random.op import RandomVariable

MIN_BUCKET = 8


def bucket_length(n):
    """The padded time length for a batch of ``n`` steps: the smallest 2**k or 3 * 2**(k-1), >= 8.

    8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, ...: at most 50% padding (33% past 8), and
    about 2 buckets per doubling of the longest review, so one IMDB run compiles each
    function for ~8 lengths (maxlen=100) to ~14 (the test split's 2,500-token reviews).
    """
    n = max(int(n), 1)
    b = MIN_BUCKET
    while True:
        if b >= n:
            return b
        if b * 3 // 2 >= n:
            return b * 3 // 2
        b *= 2


def set_x64(floatX):
    """JAX's 64-bit types on for floatX=float64, off for float32 (a process-wide JAX setting).

    Without them JAX computes in float32 whatever PyTensor asks for, so float64 needs them. For
    float32 they must stay off: PyTensor 3.0.7's JAX ``Sum`` returns its float64 accumulator
    without casting back, which turns float32 graphs into float64 ones (the scans then refuse
    their carries). So under JAX float32 sums accumulate in float32 (mode C: in float64), and
    one process should not mix JAX models of both precisions.
    """
    import jax  # an optional dependency: imported only under mode=JAX

    # PyTensor's JAX dispatch sets jax_enable_x64 from the floatX in force when it is first
    # imported (inside a floatX context it may be either): import it first, so this setting stays.
    import pytensor.link.jax.dispatch  # noqa: F401

    want = floatX == "float64"
    if jax.config.read("jax_enable_x64") != want:
        jax.config.update("jax_enable_x64", want)


def enable_compilation_cache():
    """Keep XLA's compiled programs on disk, next to PyTensor's compiled modules, across processes.

    A resumed run, the next run of a sweep or a test run then skips XLA's compile of shapes seen
    before (PyTensor's graph rewriting and JAX's trace still run). Left alone when the user set
    ``JAX_COMPILATION_CACHE_DIR`` or configured a cache.
    """
    import jax  # an optional dependency: imported only under mode=JAX

    if os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir:
        return
    jax.config.update("jax_compilation_cache_dir", os.path.join(pytensor.config.compiledir, "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # every shape: most take < 1 s


def _pad_time(a, length):
    if a.shape[0] == length:
        return a
    out = np.zeros((length,) + a.shape[1:], dtype=a.dtype)
    out[:a.shape[0]] = a
    return out


class BucketedFunction:
    """A PyTensor function for the JAX backend, compiled once per padded input shape.

    Called like the `pytensor.function` it stands for (same inputs, same outputs, same
    updates of the shared variables), with NumPy arrays in and out.

    Parameters
    ----------
    inputs : list of symbolic inputs
    outputs : variable or list of variables
    updates : list of (shared, expression), optional
        Updates of RNGs whose draws are made on the host are dropped (the host draw advances them).
    mode : PyTensor Mode (JAX)
    name : str
    time_inputs : tuple of int
        Positions of the inputs with a time axis first (padded); the first one gives T and B.
    time_outputs : tuple of int
        Positions of the outputs with a time axis first (cut back to T).
    draw_size : callable B -> tuple
        Shape of every random draw in the graph for a batch of B reviews (the dropout masks:
        ``(B, hdim)``); the draw inputs have that static shape, so a wrong size fails at the call.
    floatX : str
    """

    def __init__(self, inputs, outputs, updates=None, mode=None, name=None, time_inputs=(0,), time_outputs=(),
                 draw_size=None, floatX="float32"):
        self.inputs = list(inputs)
        self.single = not isinstance(outputs, (list, tuple))
        self.outputs = [outputs] if self.single else list(outputs)
        self.mode, self.name, self.floatX = mode, name or "f", floatX
        self.time_inputs, self.time_outputs = tuple(time_inputs), tuple(time_outputs)
        self.draw_size = draw_size
        updates = list(updates.items() if isinstance(updates, dict) else (updates or []))
        rng_vars = {k for k, _ in updates if isinstance(k.type, pytensor.tensor.random.type.RandomType)}
        self.updates = [(k, v) for k, v in updates if k not in rng_vars]
        seen = {}
        for var in ancestors(self.outputs + [v for _, v in self.updates]):
            node = var.owner
            if node is not None and isinstance(node.op, RandomVariable) and node not in seen:
                rng, _size, *params = node.inputs
                if not isinstance(rng, SharedVariable) or not all(
                        isinstance(r, Constant) for r in graph_inputs(params)):
                    raise NotImplementedError(f"{self.name}: mode=JAX draws random numbers on the host from shared "
                                              f"generators with constant parameters; {node} is not one")
                seen[node] = [p.eval() for p in params]  # e.g. uniform's low, high
        self.draws = list(seen)
        self._draw_params = seen
        if self.draws and draw_size is None:
            raise ValueError(f"{self.name}: the graph draws random numbers; give draw_size")
        self.fns = {}
        self.compile_s = {}  # (T_bucket, B) -> seconds: PyTensor's rewriting + JAX's trace and XLA compile
        self.compile_parts = {}  # (T_bucket, B) -> (PyTensor's seconds, the first call's: JAX trace + XLA)

    def _compile(self, args):
        statics = [pt.tensor(dtype=v.dtype, shape=a.shape, name=v.name) for v, a in zip(self.inputs, args)]
        B = args[self.time_inputs[0]].shape[1]
        draws = [pt.tensor(dtype=node.outputs[1].dtype, shape=tuple(self.draw_size(B)), name=f"draw{k}")
                 for k, node in enumerate(self.draws)]
        givens = list(zip(self.inputs, statics)) + [(node.outputs[1], d) for node, d in zip(self.draws, draws)]
        with pytensor.config.change_flags(floatX=self.floatX):
            return pytensor.function(statics + draws, self.outputs, updates=self.updates, givens=givens,
                                     mode=self.mode, name=f"{self.name}[T={args[self.time_inputs[0]].shape[0]},B={B}]",
                                     on_unused_input="ignore")

    def _draw(self, node, B):
        # What RandomVariable.perform does in mode C, on the model's own generator.
        shared = node.inputs[0]
        gen = copy.deepcopy(shared.get_value(borrow=True))
        params = self._draw_params[node]
        value = np.asarray(node.op.rng_fn(gen, *params, tuple(self.draw_size(B))), dtype=node.outputs[1].dtype)
        shared.set_value(gen, borrow=True)
        return value

    def __call__(self, *args):
        args = [np.asarray(a) for a in args]
        T, B = args[self.time_inputs[0]].shape[:2]
        Tb = bucket_length(T)
        args = [_pad_time(a, Tb) if i in self.time_inputs else a for i, a in enumerate(args)]
        key = tuple(a.shape for a in args)
        fn = self.fns.get(key)
        t0 = time.perf_counter() if fn is None else None
        if fn is None:
            fn = self.fns[key] = self._compile(args)
            t1 = time.perf_counter()
        with warnings.catch_warnings():
            # float32 (64-bit types off): JAX notes that PyTensor's float64 sum accumulators are float32.
            warnings.filterwarnings("ignore", message="Explicitly requested dtype float64")
            out = fn(*args, *[self._draw(node, B) for node in self.draws])
        out = [np.asarray(o) for o in out]  # waits for the result, so the first call's time includes XLA's compile
        if t0 is not None:
            t2 = time.perf_counter()
            self.compile_s[(Tb, B)] = t2 - t0
            self.compile_parts[(Tb, B)] = (t1 - t0, t2 - t1)
        out = [o[:T] if i in self.time_outputs else o for i, o in enumerate(out)]
        return out[0] if self.single else out


def compile_stats(functions):
    """Compilations of the given `BucketedFunction` s: ``{name: [(T_bucket, B, seconds), ...]}``."""
    return {f.name: [(t, b, round(s, 2)) for (t, b), s in sorted(f.compile_s.items())]
            for f in functions if f is not None and f.compile_s}


def compile_summary(functions):
    """One log line: how many compilations, per function, and their total time."""
    stats = compile_stats(functions)
    n = sum(len(v) for v in stats.values())
    total = sum(s for v in stats.values() for _, _, s in v)
    parts = ", ".join(f"{name} {len(v)} ({sum(s for _, _, s in v):.1f}s)" for name, v in stats.items())
    return f"JAX: {n} compilations, {total:.1f}s in all: {parts} (one per padded shape T x B)"

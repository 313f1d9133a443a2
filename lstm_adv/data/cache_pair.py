"""The tokenised caches' one format and builder: a pair of files, arrays (.npz) and facts (.json).

IMDB's cache (`lstm_adv.data.imdb`) and a user's corpus cache (`lstm_adv.data.corpus`) both store
id lists as one flat int32 array with int64 offsets (`pack`, `unpack`), write the arrays first and
the JSON last, so that the JSON marks a complete pair (`write_pair`), and read a pair back only
when it is complete and consistent (`read_pair`, `consistent`): anything else is None, and the
caller builds the cache again.
"""

import json
import zipfile

import numpy as np

from ..common.utils import atomic_savez, atomic_write_json


def pack(seqs):
    """Id lists as ``(flat int32 array, offsets int64 array of len(seqs) + 1)``."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate([np.asarray(s, dtype=np.int32) for s in seqs] + [np.zeros(0, np.int32)])
    return flat, offsets


def unpack(flat, offsets):
    """The id lists `pack` packed (lists of int)."""
    return [a.tolist() for a in np.split(flat, offsets[1:-1])] if len(offsets) > 1 else []


def consistent(flat, offsets, n, n_tokens, vocab_size):
    """Whether packed arrays hold ``n`` lists of ``n_tokens`` ids in all, each below ``vocab_size``."""
    return (len(offsets) == n + 1 and offsets[-1] == len(flat) == n_tokens
            and (len(flat) == 0 or int(flat.max()) < vocab_size))


def write_pair(npz_path, json_path, arrays, meta):
    """Write the arrays, then the JSON that marks the pair complete (both atomically)."""
    atomic_savez(npz_path, arrays)
    atomic_write_json(json_path, meta)


def read_pair(npz_path, json_path, check):
    """``(arrays, meta)`` of a complete pair for which ``check(arrays, meta)`` holds, else None
    (missing, half-written, unreadable, or inconsistent: the caller builds it again)."""
    if not (npz_path.exists() and json_path.exists()):
        return None
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
        with np.load(npz_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        ok = check(arrays, meta)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        return None
    return (arrays, meta) if ok else None

"""Saving and loading weights and resumable checkpoints.

Files are written atomically (temporary file in the same folder, flushed, then renamed), so a run killed
while saving never leaves a truncated checkpoint. Every weights file is read by load_file, which runs
nothing a file asks for (lib/utils/safe_unpickle.py). Loading is strict: missing or unexpected keys and
shape mismatches are errors that list what differs.
"""
import os
from typing import Dict, Optional

import numpy as np
import paddle

from lib.utils.safe_unpickle import UnsafeWeightsError, as_paddle_load, unpickle_weights
from lib.utils.errors import BadValue, MissingFile, NonFinite, NotWritable

TMP_MARK = '.tmp'    # atomic_save's temporary: .<name>.tmp<pid>, beside the file it replaces


def nonfinite_entries(state: Dict[str, object]) -> list:
    """Names of the floating-point tensors of a state dict that hold an inf or a NaN."""
    bad = []
    for name, value in state.items():
        array = value.numpy() if hasattr(value, 'numpy') else np.asarray(value)
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            bad.append(name)
    return bad


def require_finite(state: Dict[str, object], path: str) -> None:
    """Refuse to write weights or statistics that hold an inf or a NaN: the file already at `path`, if any,
    is left as it was."""
    bad = nonfinite_entries(state)
    if bad:
        raise NonFinite(
            f'not writing {path}: {len(bad)} tensors of the model hold inf or NaN ({", ".join(bad[:5])}'
            f'{" ..." if len(bad) > 5 else ""}); the last file written there is intact. Lower --lr, check the '
            'data, or train without --amp.')


def _fsync(path: str, directory: bool = False) -> None:
    """Flush `path` (a file, or a folder's entries) to the disk: a rename is durable only when both are."""
    if directory and not hasattr(os, 'O_DIRECTORY'):      # Windows cannot open a folder
        return
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_save(obj, path: str) -> None:
    """paddle.save to a temporary file in the same folder, flushed to the disk, then renamed over `path` (and
    the folder flushed), so that a crash or power loss leaves the old file or the new one, never a mix."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f'.{os.path.basename(path)}{TMP_MARK}{os.getpid()}')
    try:
        paddle.save(obj, tmp)
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(folder, directory=True)
    except OSError as error:        # disk full, read-only, quota: the file at `path` is the previous one
        kept = 'the previous file there is intact' if os.path.exists(path) else 'nothing was written there'
        raise NotWritable(f'cannot write {path}: {error.strerror or error}; {kept}. Free space there (or choose '
                          'another --output_dir) and resume.') from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def remove_stale_temporaries(folder: str) -> list:
    """Delete the temporary files atomic_save left in `folder` when its process was killed mid-save
    (.<name>.tmp<pid>, of other pids); returns their paths. Call it while holding the folder's run lock."""
    removed = []
    if not os.path.isdir(folder):
        return removed
    for name in sorted(os.listdir(folder)):
        stem, mark, pid = name.rpartition(TMP_MARK)
        if name.startswith('.') and mark and stem and pid.isdigit() and int(pid) != os.getpid():
            os.remove(os.path.join(folder, name))
            removed.append(os.path.join(folder, name))
    return removed


def load_file(path: str):
    """paddle.load(path), without running code: the one place a .pdparams / .pdopt / checkpoint is read.
    The file may only ask for numpy arrays, dicts, lists, numbers and strings (lib/utils/safe_unpickle.py);
    anything else (os.system, eval, a class) is refused before it is called, with an UnsafeWeightsError
    naming the file and the global."""
    if not os.path.isfile(path):
        raise MissingFile(f'weights file not found: {path}. Pass the .pdparams written by train.py '
                          '(e.g. output/<run>/best_model/model.pdparams) or a converted checkpoint.')
    try:
        with open(path, 'rb') as f:
            loaded = as_paddle_load(unpickle_weights(f, path))
    except UnsafeWeightsError:
        raise
    except Exception as error:
        raise BadValue(f'cannot read {path} as a Paddle weights file ({type(error).__name__}: {error}); '
                       'it may be truncated or not a .pdparams file.') from None
    bad = nonfinite_entries(dict(_arrays(loaded)))
    if bad:
        raise NonFinite(f'{path} holds inf or NaN in {len(bad)} tensors ({", ".join(bad[:5])}'
                        f'{" ..." if len(bad) > 5 else ""}): the run that wrote it diverged, or the file is damaged. '
                        'Use an earlier checkpoint, or retrain with a lower --lr.')
    return loaded


def _arrays(obj, prefix: str = ''):
    """(dotted name, array) of every tensor or array in a loaded weights file, however nested."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _arrays(value, f'{prefix}{key}.')
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            yield from _arrays(value, f'{prefix}{index}.')
    elif hasattr(obj, 'shape') and hasattr(obj, 'dtype'):
        yield prefix[:-1], obj


def model_state_from(obj: dict, path: str) -> Dict[str, object]:
    """Accept a plain state dict or a resumable checkpoint (which keeps the weights under 'model')."""
    if isinstance(obj, dict) and 'model' in obj and isinstance(obj['model'], dict):
        return obj['model']
    if not isinstance(obj, dict):
        raise BadValue(f'{path} holds a {type(obj).__name__}, expected a dict of parameter name -> tensor.')
    return obj


def _shape(value) -> tuple:
    return tuple(value.shape) if hasattr(value, 'shape') else tuple(np.shape(value))


def key_mismatches(expected: Dict[str, object], state: Dict[str, object], what: str = '') -> Optional[str]:
    """The lines naming every missing key, unexpected key and shape mismatch of `state` against `expected`
    (what: e.g. 'backbone ' in 'missing backbone keys'), or None when they fit."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f'{k}: file {_shape(state[k])} vs model {_shape(expected[k])}'
                  for k in expected if k in state and _shape(state[k]) != _shape(expected[k])]
    if not (missing or unexpected or mismatched):
        return None

    def show(items):
        return ', '.join(items[:8]) + (f' ... ({len(items)} in all)' if len(items) > 8 else '') if items else 'none'
    return (f'  missing {what}keys: {show(missing)}\n  unexpected keys: {show(unexpected)}\n'
            f'  shape mismatches: {show(mismatched)}\n')


def check_state_dict(model: paddle.nn.Layer, state: Dict[str, object], source: str) -> None:
    """Raise ValueError naming every missing key, unexpected key and shape mismatch."""
    problems = key_mismatches(model.state_dict(), state)
    if problems:
        raise BadValue(
            f'weights in {source} do not fit the model {type(model).__name__}:\n' + problems +
            'Check that --model, --num_stacks, --num_features and the number of joints match the run that '
            'produced the file (its config.json lies beside it).')


def save_weights(model: paddle.nn.Layer, path: str) -> None:
    state = model.state_dict()
    require_finite(state, path)
    atomic_save(state, path)


def _rename_accumulators(state: dict, renames: Dict[str, str]) -> dict:
    """Rename optimizer accumulator keys '<param>_<accumulator>' by their parameter prefix."""
    out = {}
    for key, value in state.items():
        prefix = max((p for p in renames if key.startswith(p + '_')), key=len, default=None)
        out[renames[prefix] + key[len(prefix):] if prefix else key] = value
    return out


def portable_optimizer_state(optimizer: paddle.optimizer.Optimizer, model: paddle.nn.Layer) -> dict:
    """Paddle keys optimizer state by global parameter names (conv2d_112.w_0), which depend on how many
    layers the process built before; key it by the model's structured names instead, so a checkpoint
    resumes in any process."""
    renames = {p.name: structured for structured, p in model.named_parameters()}
    return _rename_accumulators(optimizer.state_dict(), renames)


def restore_optimizer_state(optimizer: paddle.optimizer.Optimizer, model: paddle.nn.Layer, state: dict) -> None:
    renames = {structured: p.name for structured, p in model.named_parameters()}
    optimizer.set_state_dict(_rename_accumulators(state, renames))

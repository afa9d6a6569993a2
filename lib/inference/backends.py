"""Inference backends: callables that map normalised crops [N, 3, H, W] float32 to heatmaps [N, K, h, w].

BACKENDS is the registry. A string entry 'module:Class' is imported on first use, so that Paddle
Inference and ONNX Runtime are only needed by those who ask for them, and the onnxruntime path imports no
Paddle at all. Every backend class has `from_config(path, config, threads=None, saved=None)`: the weights or
the exported folder at `path`, run as the resolved configuration says (config.model, config.device); `saved` is
what weights_config(path) read (an exported folder's inference.json, not read again).
"""
import importlib
from typing import Dict, Optional, Union

from lib.utils.errors import BadValue, MissingPackage


BACKENDS: Dict[str, Union[type, str]] = {
    'dygraph': 'lib.inference.dygraph:DygraphBackend',                     # .pdparams from train.py
    'paddle-inference': 'lib.inference.exported:PaddleInferenceBackend',   # export.py's model folder
    'onnxruntime': 'lib.inference.exported:OnnxRuntimeBackend',
}


def backend_class(kind: str) -> type:
    """The class registered as `kind`, importing a 'module:Class' entry now."""
    if kind not in BACKENDS:
        raise BadValue(f'unknown backend {kind!r}; choose one of {sorted(BACKENDS)}.')
    entry = BACKENDS[kind]
    if not isinstance(entry, str):
        return entry
    module_name, class_name = entry.split(':')
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise MissingPackage(f'backend {kind!r} lives in {module_name}, which cannot be imported ({error}). '
                             'Install what it names, or use --backend dygraph with the .pdparams.') from error
    if not hasattr(module, class_name):
        raise ImportError(f'backend {kind!r}: {module_name} has no class {class_name} (BACKENDS names {entry!r}).')
    return getattr(module, class_name)


def load_backend(kind: str, path: str, config, threads: Optional[int] = None, saved=None):
    """The backend `kind` for a .pdparams (dygraph) or an exported model folder, as the resolved TrainConfig
    `config` describes it (resolve_config with run_config=saved, saved = weights_config(path))."""
    return backend_class(kind).from_config(path, config, threads=threads, saved=saved)

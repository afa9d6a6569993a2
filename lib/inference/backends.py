"""Inference backends: callables that map normalised crops [N, 3, H, W] float32 to heatmaps [N, K, h, w].

BACKENDS is the registry. A string entry 'module:Class' is imported on first use, so that Paddle
Inference and ONNX Runtime are only needed by those who ask for them. Every backend class takes
(path, device); load_backend also returns the input conventions the model expects.
"""
import importlib
from typing import Dict, Tuple, Union

import numpy as np
import paddle

from lib.inference.conventions import Conventions, conventions_for_model_dir, conventions_for_weights
from lib.inference.foreign_weights import load_pretrained
from lib.models import build_model_from
from lib.utils.device import select_device


class DygraphBackend:
    """A .pdparams run in Paddle's dynamic graph; the architecture comes from the config.json beside the
    weights (or in their parent folder), else the hourglass preset (see conventions_for_weights)."""

    def __init__(self, weights_path: str, device: str = 'auto'):
        self.conventions = conventions_for_weights(weights_path)
        self.device = select_device(device)
        self.model = build_model_from(self.conventions.model)
        load_pretrained(self.model, weights_path)
        self.model.eval()

    @paddle.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        """images [N, 3, H, W] float32 -> heatmaps [N, K, h, w] float32 of the last stack."""
        outputs = self.model(paddle.to_tensor(np.ascontiguousarray(images, dtype=np.float32)))
        return outputs[-1].astype('float32').numpy()


BACKENDS: Dict[str, Union[type, str]] = {
    'dygraph': DygraphBackend,                                             # .pdparams from train.py
    'paddle-inference': 'lib.inference.exported:PaddleInferenceBackend',   # export.py's model folder
    'onnxruntime': 'lib.inference.exported:OnnxRuntimeBackend',
}


def backend_class(kind: str) -> type:
    """The class registered as `kind`, importing a 'module:Class' entry now."""
    if kind not in BACKENDS:
        raise ValueError(f'unknown backend {kind!r}; choose one of {sorted(BACKENDS)}.')
    entry = BACKENDS[kind]
    if not isinstance(entry, str):
        return entry
    module_name, class_name = entry.split(':')
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ImportError(f'backend {kind!r} lives in {module_name}, which cannot be imported ({error}). '
                          'Install what it names, or use --backend dygraph with the .pdparams.') from error
    if not hasattr(module, class_name):
        raise ImportError(f'backend {kind!r}: {module_name} has no class {class_name} (BACKENDS names {entry!r}).')
    return getattr(module, class_name)


def load_backend(kind: str, path: str, device: str = 'auto') -> Tuple[object, Conventions]:
    """(backend, (ModelConfig, DataConfig, TestConfig)) for a .pdparams (dygraph) or an exported model folder.

    The conventions are the backend's own `conventions` attribute when it has one, else those of
    <path>/inference.json.
    """
    backend = backend_class(kind)(path, device)
    conventions = getattr(backend, 'conventions', None)
    if conventions is None:
        conventions = conventions_for_model_dir(path)
    return backend, Conventions(*conventions)

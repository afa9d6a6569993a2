"""Export an eval-mode model for deployment: a Paddle inference model, optionally ONNX, and inference.json
(the input conventions), then a check of the exported files against dygraph. export.py and the benchmarks
call it."""
import json
import os
from typing import Dict

import numpy as np
import paddle
import paddle.nn as nn

from lib.config import to_dict
from lib.inference.conventions import (EXPORTED_CONFIG_NAME, ONNX_FILE, PADDLE_MODEL_FILES, PADDLE_PARAMS_FILE,
                                       weight_conventions)
from lib.inference.exported import OnnxRuntimeBackend, PaddleInferenceBackend
from lib.utils.errors import MissingPackage

EXPORT_FILES = (*PADDLE_MODEL_FILES, PADDLE_PARAMS_FILE, PADDLE_PARAMS_FILE + '.info', ONNX_FILE, EXPORTED_CONFIG_NAME)
CHECK_TOLERANCE = 1e-3   # max |exported - dygraph| / max |dygraph heatmap| above which the export fails


class LastStack(nn.Layer):
    """The deployment contract: images [N, 3, H, W] -> the last stack's heatmaps [N, K, h, w] (the prediction)."""

    def __init__(self, model: nn.Layer):
        super().__init__()
        self.model = model

    def forward(self, images):
        return self.model(images)[-1]


def export_model(model: nn.Layer, config, output_dir: str, onnx: bool = False, opset: int = 11,
                 source: str = '') -> Dict[str, str]:
    """Write the Paddle inference model, model.onnx (if onnx) and inference.json of an eval-mode `model`
    to output_dir; returns {kind: path} of the written files. config: the TrainConfig of the weights; what
    travels with weights (lib/inference/conventions.WEIGHT_CONVENTIONS) goes into inference.json."""
    model_cfg, data = config.model, config.data
    os.makedirs(output_dir, exist_ok=True)
    for name in EXPORT_FILES:   # a re-export must not leave an older model.onnx or .pdmodel behind
        if os.path.isfile(os.path.join(output_dir, name)):
            os.remove(os.path.join(output_dir, name))
    height, width = data.input_wh[1], data.input_wh[0]
    spec = [paddle.static.InputSpec([None, 3, height, width], 'float32', name='image')]
    paddle.jit.save(LastStack(model), os.path.join(output_dir, 'model'), input_spec=spec)
    # Paddle 3.x (PIR, the default) writes model.json; with FLAGS_enable_pir_api=0, model.pdmodel.
    program = next(name for name in PADDLE_MODEL_FILES if os.path.isfile(os.path.join(output_dir, name)))
    files = {'paddle_model': program, 'paddle_params': PADDLE_PARAMS_FILE}
    if onnx:
        write_onnx(output_dir, program, opset)
        files['onnx'] = ONNX_FILE
    inference_config = {
        **weight_conventions(to_dict(config)),
        'num_joints': model_cfg.num_joints,
        'input': {'name': 'image', 'shape': [-1, 3, height, width], 'dtype': 'float32', 'layout': 'NCHW'},
        'output': {'shape': [-1, model_cfg.num_joints, data.heatmap_wh[1], data.heatmap_wh[0]],
                   'dtype': 'float32', 'meaning': 'heatmaps of the last stack'},
        'files': files,
        'source_weights': os.path.abspath(source) if source else '',
        'paddle_version': paddle.__version__}
    with open(os.path.join(output_dir, EXPORTED_CONFIG_NAME), 'w') as f:
        json.dump(inference_config, f, indent=2)
    files['conventions'] = EXPORTED_CONFIG_NAME
    return {kind: os.path.join(output_dir, name) for kind, name in files.items()}


def import_paddle2onnx():
    try:
        import paddle2onnx
    except ImportError:
        raise MissingPackage('--onnx needs paddle2onnx: pip install paddle2onnx onnxruntime (or export without '
                             '--onnx and use the Paddle Inference model).') from None
    except ValueError as error:      # paddle2onnx 2.x refuses, at import, a Paddle older than 3.0 (e.g. 2.6.2)
        raise MissingPackage(f'--onnx: the installed paddle2onnx does not work with Paddle {paddle.__version__} '
                             f'("{error}"). Fix: export without --onnx and use the Paddle Inference model, or run '
                             'the export with Paddle 3.0 or newer.') from None
    return paddle2onnx


def write_onnx(output_dir: str, program: str, opset: int) -> None:
    """paddle2onnx.export of the saved program (2.x reads PIR model.json directly, and translates .pdmodel)."""
    paddle2onnx = import_paddle2onnx()
    path = os.path.join(output_dir, ONNX_FILE)
    if os.path.exists(path):
        os.remove(path)   # paddle2onnx logs its errors instead of raising: success = a new file
    # optimize_tool='none': its default, polygraphy constant folding, is not installed and would only warn.
    paddle2onnx.export(os.path.join(output_dir, program), os.path.join(output_dir, PADDLE_PARAMS_FILE), path,
                       opset_version=opset, enable_onnx_checker=True, optimize_tool='none')
    if not os.path.isfile(path):
        raise RuntimeError(f'paddle2onnx {paddle2onnx.__version__} did not write {path}; its log above names the '
                           'op it could not convert. Deploy the Paddle Inference model, or retry with a higher '
                           '--opset.')


def check_exported(model: nn.Layer, output_dir: str, input_wh, onnx: bool) -> Dict[str, float]:
    """{backend: max |exported - dygraph|} on a random batch of 2, and {'max |heatmap|': max |dygraph|}."""
    images = np.random.default_rng(0).standard_normal((2, 3, input_wh[1], input_wh[0]), dtype=np.float32)
    with paddle.no_grad():
        expected = model(paddle.to_tensor(images))[-1].numpy()
    backends = {'paddle-inference (oneDNN)': PaddleInferenceBackend(output_dir, 'cpu')}
    if onnx:
        backends['onnxruntime'] = OnnxRuntimeBackend(output_dir, 'cpu')
    scale = max(float(np.abs(expected).max()), 1e-30)
    result = {'max |heatmap|': scale}
    for name, backend in backends.items():
        result[name] = float(np.abs(backend(images) - expected).max())
    return result

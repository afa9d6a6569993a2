r"""Export trained weights for deployment: a Paddle Inference model and, with --onnx, an ONNX model.

    python export.py --pretrained_model output/mpii_hourglass8_256x256/best_model/model.pdparams
    python export.py --pretrained_model <...>.pdparams --onnx --output_dir output/export/hg8
    python infer.py --input photo.jpg --backend paddle-inference --model_dir output/export/hourglass8_256

The architecture, input size and conventions come from the config.json beside the weights (or in their
parent folder), as in val.py; --model, --num_stacks, --num_features and --image_size override them.
Writes to --output_dir (default output/export/<label>_<size>):
    model.json + model.pdiparams   paddle.jit.save (PIR program): input `image` [N, 3, H, W] float32, N free;
                                   output the last stack's heatmaps [N, K, h, w]. With FLAGS_enable_pir_api=0
                                   in the environment: model.pdmodel (old IR), which both backends read too
    model.onnx                     with --onnx: the same program through paddle2onnx (opset --opset)
    inference.json                 model, data (input_wh, heatmap_wh, sigma, color_rgb, mean, std), test
                                   (flip_test, shift_heatmap, post_process), num_joints, files
and checks that the exported models give the dygraph model's heatmaps on a random batch of 2.
"""
import argparse
import json
import os
import sys
import warnings
from typing import Dict

warnings.filterwarnings('ignore', message='No ccache found')  # Paddle's import-time notice: noise in logs
import numpy as np  # noqa: E402
import paddle  # noqa: E402
import paddle.nn as nn  # noqa: E402

from lib.config import PRESETS, to_dict  # noqa: E402
from lib.inference.conventions import EXPORTED_CONFIG_NAME, Conventions, conventions_from_config, run_config_for  # noqa: E402
from lib.inference.exported import ONNX_FILE, PADDLE_PARAMS_FILE, OnnxRuntimeBackend, PaddleInferenceBackend  # noqa: E402
from lib.inference.foreign_weights import load_pretrained  # noqa: E402
from lib.models import build_model_from, check_input_size  # noqa: E402

DATA_KEYS = ('input_wh', 'heatmap_wh', 'sigma', 'color_rgb', 'mean', 'std')   # DataConfig minus dataset paths
TEST_KEYS = ('flip_test', 'shift_heatmap', 'post_process', 'batch_size')
EXPORT_FILES = ('model.json', 'model.pdmodel', PADDLE_PARAMS_FILE, PADDLE_PARAMS_FILE + '.info', ONNX_FILE,
                EXPORTED_CONFIG_NAME)
CHECK_TOLERANCE = 1e-3   # max |exported - dygraph| / max |dygraph heatmap| above which the export fails


class LastStack(nn.Layer):
    """The deployment contract: images [N, 3, H, W] -> the last stack's heatmaps [N, K, h, w] (the prediction)."""

    def __init__(self, model: nn.Layer):
        super().__init__()
        self.model = model

    def forward(self, images):
        return self.model(images)[-1]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--pretrained_model', required=True, help='.pdparams written by train.py or tools/convert_weights.py')
    p.add_argument('--model', choices=sorted(PRESETS), help='architecture (default: from config.json beside the weights)')
    p.add_argument('--num_stacks', type=int, help='hourglass stacks (default: from config.json)')
    p.add_argument('--num_features', type=int, help='hourglass width (default: from config.json)')
    p.add_argument('--image_size', type=int, help='square input side (default: from config.json, else 256)')
    p.add_argument('--output_dir', help='default output/export/<label>_<size>, e.g. output/export/hourglass8_256')
    p.add_argument('--onnx', action='store_true', help='also write model.onnx (needs pip install paddle2onnx)')
    p.add_argument('--opset', type=int, default=11, help='ONNX opset (default 11; paddle2onnx raises it if an op needs it)')
    p.add_argument('--no_check', action='store_true', help='skip running the exported models against dygraph')
    return p.parse_args(argv)


def export_model(model: nn.Layer, conventions: Conventions, output_dir: str, onnx: bool = False, opset: int = 11,
                 source: str = '') -> Dict[str, str]:
    """Write the Paddle inference model, model.onnx (if onnx) and inference.json of an eval-mode `model`
    to output_dir; returns {kind: path} of the written files."""
    model_cfg, data, test = conventions
    os.makedirs(output_dir, exist_ok=True)
    for name in EXPORT_FILES:   # a re-export must not leave an older model.onnx or .pdmodel behind
        if os.path.isfile(os.path.join(output_dir, name)):
            os.remove(os.path.join(output_dir, name))
    height, width = data.input_wh[1], data.input_wh[0]
    spec = [paddle.static.InputSpec([None, 3, height, width], 'float32', name='image')]
    paddle.jit.save(LastStack(model), os.path.join(output_dir, 'model'), input_spec=spec)
    # Paddle 3.x (PIR, the default) writes model.json; with FLAGS_enable_pir_api=0, model.pdmodel.
    program = next(name for name in ('model.json', 'model.pdmodel') if os.path.isfile(os.path.join(output_dir, name)))
    files = {'paddle_model': program, 'paddle_params': PADDLE_PARAMS_FILE}
    if onnx:
        write_onnx(output_dir, program, opset)
        files['onnx'] = ONNX_FILE
    config = {'model': to_dict(model_cfg),
              'data': {key: getattr(data, key) for key in DATA_KEYS},
              'test': {key: getattr(test, key) for key in TEST_KEYS},
              'num_joints': model_cfg.num_joints,
              'input': {'name': 'image', 'shape': [-1, 3, height, width], 'dtype': 'float32', 'layout': 'NCHW'},
              'output': {'shape': [-1, model_cfg.num_joints, data.heatmap_wh[1], data.heatmap_wh[0]],
                         'dtype': 'float32', 'meaning': 'heatmaps of the last stack'},
              'files': files,
              'source_weights': os.path.abspath(source) if source else '',
              'paddle_version': paddle.__version__}
    with open(os.path.join(output_dir, EXPORTED_CONFIG_NAME), 'w') as f:
        json.dump(config, f, indent=2)
    files['conventions'] = EXPORTED_CONFIG_NAME
    return {kind: os.path.join(output_dir, name) for kind, name in files.items()}


def import_paddle2onnx():
    try:
        import paddle2onnx
    except ImportError:
        raise ImportError('--onnx needs paddle2onnx: pip install paddle2onnx onnxruntime (or export without '
                          '--onnx and use the Paddle Inference model).') from None
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


def main(argv=None) -> int:
    args = parse_args(argv)
    overrides = {'model': args.model, 'num_stacks': args.num_stacks, 'num_features': args.num_features,
                 'image_size': args.image_size}
    conventions = conventions_from_config(run_config_for(args.pretrained_model), overrides)
    model_cfg, data, _ = conventions
    check_input_size(model_cfg.name, data.input_wh)
    if args.onnx:
        import_paddle2onnx()   # fail before the slow part
    output_dir = args.output_dir or os.path.join('output', 'export', f'{model_cfg.label}_{data.input_wh[0]}')
    paddle.set_device('cpu')   # the program does not depend on the device it was traced on
    model = build_model_from(model_cfg)
    load_pretrained(model, args.pretrained_model)
    model.eval()
    print(f'{model_cfg.label}, input W x H {data.input_wh[0]} x {data.input_wh[1]}, {model_cfg.num_joints} joints, '
          f'from {args.pretrained_model}')
    files = export_model(model, conventions, output_dir, args.onnx, args.opset, args.pretrained_model)
    for kind, path in files.items():
        print(f'wrote {path} ({kind}, {os.path.getsize(path) / 2**20:.1f} MiB)')
    if args.no_check:
        return 0
    diffs = check_exported(model, output_dir, data.input_wh, args.onnx)
    scale = diffs.pop('max |heatmap|')
    worst = max(diffs.values()) / scale
    print('check, random batch of 2 vs dygraph: ' + ', '.join(f'{name} max abs diff {diff:.3g}'
                                                               for name, diff in diffs.items())
          + f' (max |heatmap| {scale:.3g}): ' + ('OK' if worst <= CHECK_TOLERANCE else
                                                f'MISMATCH, above {CHECK_TOLERANCE:g} of max |heatmap|'))
    return 0 if worst <= CHECK_TOLERANCE else 1


if __name__ == '__main__':
    sys.exit(main())

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
    inference.json                 model, data (input_wh, heatmap_wh, sigma, color_rgb, mean, std, udp), test
                                   (flip_test, shift_heatmap, post_process, decode_offset, decode, blur_kernel),
                                   num_joints, files
and checks that the exported models give the dygraph model's heatmaps on a random batch of 2.
"""
import argparse
import os
import sys
import warnings

warnings.filterwarnings('ignore', message='No ccache found')  # Paddle's import-time notice: noise in logs
import paddle  # noqa: E402

from lib.utils.errors import add_debug_argument, run_cli  # noqa: E402
from lib.config import DECODERS, preset_names  # noqa: E402
from lib.inference.conventions import conventions_for_weights  # noqa: E402
from lib.inference.export import (CHECK_TOLERANCE, DATA_KEYS, EXPORT_FILES, TEST_KEYS, check_exported,  # noqa: E402,F401
                                  export_model, import_paddle2onnx)
from lib.inference.foreign_weights import load_pretrained  # noqa: E402
from lib.models import build_model_from, check_input_size  # noqa: E402
from lib.utils.files import require_writable_dir  # noqa: E402

OPSETS = (7, 21)      # the opsets paddle2onnx 2.1 accepts


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--pretrained_model', required=True, help='.pdparams written by train.py or tools/convert_weights.py')
    p.add_argument('--model', choices=preset_names(), help='architecture (default: from config.json beside the weights)')
    p.add_argument('--num_stacks', type=int, help='hourglass stacks (default: from config.json)')
    p.add_argument('--num_features', type=int, help='hourglass width (default: from config.json)')
    p.add_argument('--image_size', type=int, help='square input side (default: from config.json, else 256)')
    p.add_argument('--decode', choices=DECODERS, help="heatmap decoder the exported model's users get: quarter or "
                   "dark (default: the weights' config.json, else quarter; README \"DARK and UDP\")")
    p.add_argument('--output_dir', help='default output/export/<label>_<size>, e.g. output/export/hourglass8_256')
    p.add_argument('--onnx', action='store_true', help='also write model.onnx (needs pip install paddle2onnx)')
    p.add_argument('--opset', type=int, default=11, help='ONNX opset (default 11; paddle2onnx raises it if an op needs it)')
    p.add_argument('--no_check', action='store_true', help='skip running the exported models against dygraph')
    add_debug_argument(p)
    args = p.parse_args(argv)
    if not OPSETS[0] <= args.opset <= OPSETS[1]:     # paddle2onnx aborts the process on another value
        p.error(f'--opset must be between {OPSETS[0]} and {OPSETS[1]} (what paddle2onnx 2.x writes); received '
                f'{args.opset}')
    if args.image_size is not None and args.image_size < 1:
        p.error(f'--image_size must be a positive side in pixels, e.g. 256; received {args.image_size}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    overrides = {'model': args.model, 'num_stacks': args.num_stacks, 'num_features': args.num_features,
                 'image_size': args.image_size, 'decode': args.decode}
    conventions = conventions_for_weights(args.pretrained_model, overrides)
    model_cfg, data, _ = conventions
    check_input_size(model_cfg.name, data.input_wh)
    if args.onnx:
        import_paddle2onnx()   # fail before the slow part
    output_dir = args.output_dir or os.path.join('output', 'export', f'{model_cfg.label}_{data.input_wh[0]}')
    require_writable_dir(output_dir, '--output_dir')
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
    sys.exit(run_cli(main))

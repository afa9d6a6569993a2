r"""Export trained weights for deployment: a Paddle Inference model and, with --onnx, an ONNX model.

    python export.py --pretrained_model output/mpii_hourglass8_256x256/best_model/model.pdparams
    python export.py --pretrained_model output/coco_pose_resnet_50_256x192/best_model/model.pdparams --onnx
    python infer.py --input photo.jpg --backend paddle-inference --model_dir output/export/hourglass8_256x256

The network, input size and conventions come from the configuration of the weights (the config.json beside
them or in their parent folder), as in val.py; --config, the flags and --set override them.
Writes to --output_dir (default output/export/<model>_<H>x<W>, e.g. pose_resnet_50_256x192):
    model.json + model.pdiparams   paddle.jit.save (PIR program): input `image` [N, 3, H, W] float32, N free;
                                   output the last stack's heatmaps [N, K, h, w]. With FLAGS_enable_pir_api=0
                                   in the environment: model.pdmodel (old IR), which both backends read too
    model.onnx                     with --onnx: the same program through paddle2onnx (opset --opset)
    inference.json                 what travels with the weights (lib/inference/conventions.WEIGHT_CONVENTIONS):
                                   model, data (input_wh, heatmap_wh, sigma, color_rgb, mean, std, udp), test
                                   (flip_test, shift_heatmap, post_process, decode_offset, decode, blur_kernel,
                                   batch_size), num_joints, files
and checks that the exported models give the dygraph model's heatmaps on a random batch of 2.
"""
import argparse
import os
import sys
import warnings

warnings.filterwarnings('ignore', message='No ccache found')  # Paddle's import-time notice: noise in logs
import paddle  # noqa: E402

from lib.utils.errors import run_cli  # noqa: E402
from lib.cli import (DATA, MODEL, TEST, add_front_door, add_weights_argument, flag_values, pick,  # noqa: E402
                     print_config, script_parser)
from lib.config import TrainConfig, resolve_config, size_name  # noqa: E402
from lib.convert.loading import load_weights  # noqa: E402
from lib.inference.conventions import weights_config  # noqa: E402
from lib.inference.export import CHECK_TOLERANCE, check_exported, export_model, import_paddle2onnx  # noqa: E402
from lib.models import build_model_from, check_model  # noqa: E402
from lib.utils.files import require_writable_dir  # noqa: E402

OPSETS = (7, 21)      # the opsets paddle2onnx 2.1 accepts
# What the exported program is (network, input size) and what inference.json records for infer.py (test).
GROUPS = (pick(DATA, 'image_size'), MODEL, TEST)


def parse_args(argv=None) -> argparse.Namespace:
    p, preset = script_parser(__doc__, argv, weights=True)
    add_weights_argument(p)
    p.add_argument('--output_dir', help='default output/export/<model>_<H>x<W>, e.g. output/export/hourglass8_256x256')
    p.add_argument('--onnx', action='store_true', help='also write model.onnx (needs pip install paddle2onnx)')
    p.add_argument('--opset', type=int, default=11, help='ONNX opset (default 11; paddle2onnx raises it if an op needs it)')
    p.add_argument('--no_check', action='store_true', help='skip running the exported models against dygraph')
    add_front_door(p, GROUPS, preset, threads=False)
    args = p.parse_args(argv)
    if not args.pretrained_model and not args.print_config:
        p.error('the following arguments are required: --pretrained_model')
    if not OPSETS[0] <= args.opset <= OPSETS[1]:     # paddle2onnx aborts the process on another value
        p.error(f'--opset must be between {OPSETS[0]} and {OPSETS[1]} (what paddle2onnx 2.x writes); received '
                f'{args.opset}')
    return args


def build_config(args: argparse.Namespace) -> TrainConfig:
    """The configuration of the weights <- --config <- flags <- --set, checked against the network."""
    config = resolve_config(flag_values(args, GROUPS), run_config=weights_config(args.pretrained_model),
                            config_file=args.config, sets=args.set)
    check_model(config)
    return config


def main(argv=None) -> int:
    args = parse_args(argv)
    config = build_config(args)
    if args.print_config:
        return print_config(config)
    if args.onnx:
        import_paddle2onnx()   # fail before the slow part
    model_cfg, size = config.model, size_name(config.data.input_wh)
    output_dir = args.output_dir or os.path.join('output', 'export', f'{model_cfg.label}_{size}')
    require_writable_dir(output_dir, '--output_dir')
    paddle.set_device('cpu')   # the program does not depend on the device it was traced on
    model = build_model_from(model_cfg)
    load_weights(model, args.pretrained_model)
    model.eval()
    print(f'{model_cfg.label}, input {size}, {model_cfg.num_joints} joints, from {args.pretrained_model}')
    files = export_model(model, config, output_dir, args.onnx, args.opset, args.pretrained_model)
    for kind, path in files.items():
        print(f'wrote {path} ({kind}, {os.path.getsize(path) / 2**20:.1f} MiB)')
    if args.no_check:
        return 0
    diffs = check_exported(model, output_dir, config.data.input_wh, args.onnx)
    scale = diffs.pop('max |heatmap|')
    worst = max(diffs.values()) / scale
    print('check, random batch of 2 vs dygraph: ' + ', '.join(f'{name} max abs diff {diff:.3g}'
                                                               for name, diff in diffs.items())
          + f' (max |heatmap| {scale:.3g}): ' + ('OK' if worst <= CHECK_TOLERANCE else
                                                f'MISMATCH, above {CHECK_TOLERANCE:g} of max |heatmap|'))
    return 0 if worst <= CHECK_TOLERANCE else 1


if __name__ == '__main__':
    sys.exit(run_cli(main))

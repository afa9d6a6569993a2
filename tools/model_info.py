"""Print one JSON line with a model's trainable parameters and forward multiply-adds (GMACs, counted by
mmcv's rules, see lib/utils/complexity.py) for one input size.

Usage, from the repo root:
    python tools/model_info.py --model pose_resnet_50 --image_size 192 --image_height 256
    python tools/model_info.py --model hourglass --num_stacks 8 --num_features 256 --image_size 256
    -> {"model": "pose_resnet_50", "input_wh": [192, 256], "params": 33999440, "gmacs": 5.461}
"""
import argparse
import json
import os
import sys
import warnings
from typing import List, Optional

# Python puts tools/ (this file's folder), not the cwd, on sys.path; add the repo root so `lib` imports.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
warnings.filterwarnings('ignore', message='No ccache found')   # printed by `import paddle` on CPU builds

from lib.utils.errors import BadValue, add_debug_argument, run_cli  # noqa: E402
from lib.models import MODELS, build_model, check_input_size  # noqa: E402
from lib.utils.complexity import count_macs, count_parameters  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', required=True, choices=sorted(MODELS), help='registry name in lib/models')
    parser.add_argument('--num_joints', type=int, default=16, help='heatmap channels K (MPII 16, COCO 17)')
    parser.add_argument('--num_stacks', type=int, help="stacks of the 'hourglass' model")
    parser.add_argument('--num_features', type=int, help="feature width of the 'hourglass' model")
    parser.add_argument('--image_size', type=int, required=True, help='input width W (and height unless given)')
    parser.add_argument('--image_height', type=int, help='input height H when it differs from the width')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    options = {key: getattr(args, key) for key in ('num_stacks', 'num_features') if getattr(args, key) is not None}
    if options and args.model != 'hourglass':
        raise BadValue(f'--num_stacks/--num_features are options of the model "hourglass"; received {options} for '
                       f'{args.model!r}. Fix: drop them (hourglass52/104 have 1/2 stacks).')
    input_wh = [args.image_size, args.image_height or args.image_size]
    check_input_size(args.model, input_wh)
    model = build_model(args.model, num_joints=args.num_joints, **options)
    macs = count_macs(model, input_wh)
    info = {'model': args.model, 'input_wh': input_wh, 'params': count_parameters(model),
            'gmacs': round(macs / 1e9, 3)}
    print(json.dumps(info))
    return info


if __name__ == '__main__':
    sys.exit(run_cli(main))

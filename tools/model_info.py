"""Print one JSON line with a model's trainable parameters and forward multiply-adds (GMACs, counted by
mmcv's rules, see lib/utils/complexity.py) for one input size, as train.py would build it.

Usage, from the repo root:
    python tools/model_info.py --model pose_resnet_50 --image_size 256x192
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

from lib.utils.errors import run_cli  # noqa: E402
from lib.cli import DATA, MODEL, add_front_door, flag_values, pick, print_config, script_parser  # noqa: E402
from lib.config import resolve_config  # noqa: E402
from lib.models import build_model_from, check_model  # noqa: E402
from lib.utils.complexity import count_macs, count_parameters  # noqa: E402

# The network and its input; --dataset sets the number of joints (MPII 16, COCO 17).
GROUPS = (pick(DATA, 'dataset', 'image_size'), MODEL)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser, preset = script_parser(__doc__, argv)
    add_front_door(parser, GROUPS, preset, threads=False)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None):
    args = parse_args(argv)
    config = resolve_config(flag_values(args, GROUPS), config_file=args.config, sets=args.set)
    if args.print_config:
        return print_config(config)
    check_model(config)
    model = build_model_from(config.model)
    input_wh = list(config.data.input_wh)
    info = {'model': config.model.name, 'input_wh': input_wh, 'params': count_parameters(model),
            'gmacs': round(count_macs(model, input_wh) / 1e9, 3)}
    print(json.dumps(info))
    return info


if __name__ == '__main__':
    sys.exit(run_cli(main))

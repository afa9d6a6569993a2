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

from lib.utils.errors import add_debug_argument, run_cli  # noqa: E402
from lib.cli import (DATA, MODEL, add_config_arguments, add_groups, chosen_preset, defaults_note,  # noqa: E402
                     flag_values, pick)
from lib.config import dump_yaml, resolve_config, to_dict  # noqa: E402
from lib.models import build_model_from, check_model  # noqa: E402
from lib.utils.complexity import count_macs, count_parameters  # noqa: E402

# The network and its input; --dataset sets the number of joints (MPII 16, COCO 17).
GROUPS = (pick(DATA, 'dataset', 'image_size'), MODEL)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    preset = chosen_preset(argv)
    parser = argparse.ArgumentParser(description=f'{__doc__}\n{defaults_note(preset)}',
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_groups(parser, GROUPS, preset)
    add_config_arguments(parser)
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None):
    args = parse_args(argv)
    config = resolve_config(flag_values(args, GROUPS), config_file=args.config, sets=args.set)
    if args.print_config:
        print(dump_yaml(to_dict(config)), end='')
        return 0
    check_model(config)
    model = build_model_from(config.model)
    input_wh = list(config.data.input_wh)
    info = {'model': config.model.name, 'input_wh': input_wh, 'params': count_parameters(model),
            'gmacs': round(count_macs(model, input_wh) / 1e9, 3)}
    print(json.dumps(info))
    return info


if __name__ == '__main__':
    sys.exit(run_cli(main))

"""Draw a model's predictions (or the ground truth) on validation people, as an image grid.

    python tools/draw_predictions.py --dataset_root data/synthetic \
        --pretrained_model output/mpii_hourglass1_64x64/best_model/model.pdparams --output images/quickstart.jpg

Each tile is the person's crop (as the network sees it, at 192 px) with the predicted skeleton;
without --pretrained_model the ground truth is drawn. The configuration is the weights' (weights_config),
under --config, the flags and --set, as in val.py.
"""
import os
import sys
import warnings

# Run as `python tools/draw_predictions.py` from the repo root: Python puts tools/ on sys.path, not the root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
warnings.filterwarnings('ignore', message='No ccache found')

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from lib.utils.errors import run_cli  # noqa: E402
from lib.cli import (DATA, MODEL, RUN, TEST, add_front_door, add_weights_argument, flag_values, pick,  # noqa: E402
                     print_config, script_parser)
from lib.config import TrainConfig, resolve_config  # noqa: E402
from lib.datasets.image_io import read_image  # noqa: E402
from lib.datasets.mpii import load_mpii_annotations  # noqa: E402
from lib.datasets.skeletons import MPII  # noqa: E402
from lib.datasets.transforms import affine_transform_points, crop_image  # noqa: E402
from lib.inference.conventions import weights_config  # noqa: E402
from lib.utils.files import require_writable_dir  # noqa: E402
from lib.vis.drawing import draw_skeleton, image_grid  # noqa: E402

TILE = 192
GROUPS = (pick(DATA, 'dataset_root', 'valid_set', 'image_size'), MODEL, TEST, pick(RUN, 'device'))


def parse_args(argv=None):
    p, preset = script_parser(__doc__, argv, weights=True)
    add_weights_argument(p, '; without it the ground truth is drawn')
    p.add_argument('--num', type=int, default=8, help='people to draw (the first N of the annotation file)')
    p.add_argument('--columns', type=int, default=4)
    p.add_argument('--output', help='.jpg or .png to write')
    add_front_door(p, GROUPS, preset, threads=False)
    args = p.parse_args(argv)
    if not args.output and not args.print_config:
        p.error('the following arguments are required: --output')
    for name in ('num', 'columns'):
        if getattr(args, name) < 1:
            p.error(f'--{name} must be at least 1; received {getattr(args, name)}')
    return args


def predict_joints(weights: str, config: TrainConfig, count: int) -> np.ndarray:
    """Predictions [count, 16, 2] in image pixels, with the flip test, by val.py's pipeline."""
    from lib.core.validate import predict_split
    from lib.datasets.records import load_split
    from lib.models import check_model
    check_model(config)
    data, test = config.data, config.test
    preds, _ = predict_split(weights, config.model, data, test, load_split(data, data.valid_set, test),
                             config.device, workers=0)
    return preds[:count]


def main(argv=None) -> int:
    args = parse_args(argv)
    config = resolve_config(flag_values(args, GROUPS), run_config=weights_config(args.pretrained_model),
                            config_file=args.config, sets=args.set)
    if args.print_config:
        return print_config(config)
    root, valid_set = config.data.dataset_root, config.data.valid_set
    records = load_mpii_annotations(root, valid_set)[:args.num]
    if args.pretrained_model:
        joints, visible = predict_joints(args.pretrained_model, config, len(records)), [np.ones(16, bool)] * len(records)
    else:
        joints, visible = [r['joints'] for r in records], [r['joints_vis'] > 0 for r in records]
    tiles = []
    for record, points, shown in zip(records, joints, visible):
        image = read_image(os.path.join(root, 'images', record['image']), color_rgb=False)
        crop, matrix = crop_image(image, record['center'], record['scale'], 0, (TILE, TILE))
        tiles.append(draw_skeleton(crop, affine_transform_points(points, matrix), MPII, shown))
    require_writable_dir(os.path.dirname(os.path.abspath(args.output)), '--output')
    cv2.imwrite(args.output, image_grid(tiles, args.columns))
    print(f'wrote {args.output} ({len(tiles)} people)')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))

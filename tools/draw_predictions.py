"""Draw a model's predictions (or the ground truth) on validation people, as an image grid.

    python tools/draw_predictions.py --dataset_root data/synthetic \
        --pretrained_model output/mpii_hourglass1_64x64/best_model/model.pdparams --output images/quickstart.jpg

Each tile is the person's crop (as the network sees it, at 192 px) with the predicted skeleton;
without --pretrained_model the ground truth is drawn.
"""
import argparse
import os
import sys
import warnings

# Run as `python tools/draw_predictions.py` from the repo root: Python puts tools/ on sys.path, not the root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
warnings.filterwarnings('ignore', message='No ccache found')

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from lib.utils.errors import add_debug_argument, run_cli  # noqa: E402
from lib.datasets.mpii import load_mpii_annotations  # noqa: E402
from lib.datasets.pose_dataset import read_image  # noqa: E402
from lib.datasets.skeletons import MPII  # noqa: E402
from lib.datasets.transforms import affine_transform_points, crop_image  # noqa: E402
from lib.utils.files import require_writable_dir  # noqa: E402
from lib.utils.vis import draw_skeleton, image_grid  # noqa: E402

TILE = 192


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dataset_root', required=True)
    p.add_argument('--valid_set', default='valid')
    p.add_argument('--pretrained_model', help='weights to predict with (default: draw the ground truth)')
    p.add_argument('--num', type=int, default=8, help='people to draw (the first N of the annotation file)')
    p.add_argument('--columns', type=int, default=4)
    p.add_argument('--output', required=True, help='.jpg or .png to write')
    add_debug_argument(p)
    args = p.parse_args(argv)
    for name in ('num', 'columns'):
        if getattr(args, name) < 1:
            p.error(f'--{name} must be at least 1; received {getattr(args, name)}')
    return args


def predict_joints(args, count: int) -> np.ndarray:
    """Predictions [count, 16, 2] in image pixels, with the flip test, by val.py's pipeline."""
    from lib.core.validate import predict_split
    from lib.datasets.records import load_split
    from lib.inference.conventions import conventions_for_weights
    model, data, test = conventions_for_weights(args.pretrained_model, {'dataset_root': args.dataset_root,
                                                                        'valid_set': args.valid_set})
    preds, _ = predict_split(args.pretrained_model, model, data, test, load_split(data, data.valid_set, test),
                             workers=0)
    return preds[:count]


def main(argv=None) -> None:
    args = parse_args(argv)
    records = load_mpii_annotations(args.dataset_root, args.valid_set)[:args.num]
    if args.pretrained_model:
        joints, visible = predict_joints(args, len(records)), [np.ones(16, bool)] * len(records)
    else:
        joints, visible = [r['joints'] for r in records], [r['joints_vis'] > 0 for r in records]
    tiles = []
    for record, points, shown in zip(records, joints, visible):
        image = read_image(os.path.join(args.dataset_root, 'images', record['image']), color_rgb=False)
        crop, matrix = crop_image(image, record['center'], record['scale'], 0, (TILE, TILE))
        tiles.append(draw_skeleton(crop, affine_transform_points(points, matrix), MPII, shown))
    require_writable_dir(os.path.dirname(os.path.abspath(args.output)), '--output')
    cv2.imwrite(args.output, image_grid(tiles, args.columns))
    print(f'wrote {args.output} ({len(tiles)} people)')


if __name__ == '__main__':
    sys.exit(run_cli(main))

"""Draw augmented training samples with their targets, to check a data preparation by eye.

    python tools/browse_dataset.py --dataset_root data/mpii --image_size 256 --num 16 --output_dir output/browse

Writes samples_gt.jpg (the crops the network is trained on, with the target joints) and
samples_hm_gt.jpg (the target heatmaps over the crops), with exactly train.py's pipeline and
augmentation for the given --model preset (its scale / rotation factors, sigma, RGB or BGR input).
"""
import argparse
import os
import sys
import warnings

# Run as `python tools/browse_dataset.py` from the repo root: Python puts tools/ on sys.path, not the root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
warnings.filterwarnings('ignore', message='No ccache found')

import numpy as np  # noqa: E402

from lib.utils.errors import add_debug_argument, run_cli  # noqa: E402
from lib.config import preset_names, resolve_config  # noqa: E402
from lib.datasets.loaders import build_dataset  # noqa: E402
from lib.utils.debug_images import save_batch_debug  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dataset_root', required=True)
    p.add_argument('--dataset', choices=('mpii', 'coco'), default='mpii')
    p.add_argument('--image_set', help='default: train (MPII) or train2017 (COCO)')
    p.add_argument('--model', default='hourglass', choices=preset_names(), help='preset whose pipeline to use')
    p.add_argument('--image_size', type=int, default=None, help='square input side (default: the preset\'s)')
    p.add_argument('--num', type=int, default=16, help='samples to draw (at most 16 per picture)')
    p.add_argument('--epoch', type=int, default=0, help='augmentation draw of this epoch')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no_augmentation', action='store_true', help='the validation crops instead')
    p.add_argument('--output_dir', default='output/browse')
    add_debug_argument(p)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    input_wh = (args.image_size, args.image_size) if args.image_size else None
    data = resolve_config({'data.dataset': args.dataset, 'model.name': args.model, 'data.input_wh': input_wh,
                           'data.dataset_root': args.dataset_root}).data
    image_set = args.image_set or data.train_set
    dataset = build_dataset(data, image_set, is_train=not args.no_augmentation)
    count = min(args.num, len(dataset))
    samples = [dataset[(i, args.seed, args.epoch)] for i in range(count)]
    batch = {key: np.stack([s[key] for s in samples]) for key in ('image', 'joints', 'joints_vis', 'target')}
    save_batch_debug(args.output_dir, 'samples', batch, batch['target'], data, dataset.layout, ('gt', 'hm_gt'))
    print(f'wrote {os.path.join(args.output_dir, "samples_gt.jpg")} and samples_hm_gt.jpg ({count} samples)')


if __name__ == '__main__':
    sys.exit(run_cli(main))

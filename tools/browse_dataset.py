"""Draw augmented training samples with their targets, to check a data preparation by eye.

    python tools/browse_dataset.py --dataset_root data/mpii --image_size 256 --num 16 --output_dir output/browse
    python tools/browse_dataset.py --config output/mpii_hourglass8_256x256/config.json   # a run's pipeline

Writes samples_gt.jpg (the crops the network is trained on, with the target joints) and
samples_hm_gt.jpg (the target heatmaps over the crops), with exactly train.py's pipeline and
augmentation: the --model preset's (its scale / rotation factors, sigma, RGB or BGR input) under --config,
the flags and --set, as train.py resolves them.
"""
import os
import sys
import warnings

# Run as `python tools/browse_dataset.py` from the repo root: Python puts tools/ on sys.path, not the root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
warnings.filterwarnings('ignore', message='No ccache found')

import numpy as np  # noqa: E402

from lib.utils.errors import run_cli  # noqa: E402
from lib.cli import DATA, MODEL, TRAIN_DATA, add_front_door, flag_values, pick, print_config, script_parser  # noqa: E402
from lib.config import resolve_config  # noqa: E402
from lib.datasets.loaders import build_dataset  # noqa: E402
from lib.vis.debug_images import save_batch_debug  # noqa: E402

# train.py's data pipeline: the data, the training set and its augmentation, and the model's preset.
GROUPS = (DATA, TRAIN_DATA, pick(MODEL, 'model'))


def parse_args(argv=None):
    p, preset = script_parser(__doc__, argv)
    p.add_argument('--num', type=int, default=16, help='samples to draw (at most 16 per picture)')
    p.add_argument('--epoch', type=int, default=0, help='augmentation draw of this epoch')
    p.add_argument('--no_augmentation', action='store_true', help='the crops of --train_set without augmentation, '
                   'as validation makes them')
    p.add_argument('--output_dir', default='output/browse', help='where samples_gt.jpg and samples_hm_gt.jpg go '
                   '(default output/browse)')
    add_front_door(p, GROUPS, preset, threads=False)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    config = resolve_config(flag_values(args, GROUPS), config_file=args.config, sets=args.set)
    if args.print_config:
        return print_config(config)
    data = config.data
    dataset = build_dataset(data, data.train_set, is_train=not args.no_augmentation)
    count = min(args.num, len(dataset))
    samples = [dataset[(i, config.seed, args.epoch)] for i in range(count)]
    batch = {key: np.stack([s[key] for s in samples]) for key in ('image', 'joints', 'joints_vis', 'target')}
    save_batch_debug(args.output_dir, 'samples', batch, batch['target'], data, dataset.layout, ('gt', 'hm_gt'))
    print(f'wrote {os.path.join(args.output_dir, "samples_gt.jpg")} and samples_hm_gt.jpg ({count} samples)')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))

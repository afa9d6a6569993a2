"""Write a synthetic MPII dataset in HRNet's layout (no download needed).

Usage, from the repo root:
    python tools/make_synthetic_mpii.py --output data/synthetic [--num_train 1000] [--num_valid 200] [--seed 0]
"""
import argparse
import os
import sys
import time
from typing import List, Optional

# Python puts tools/ (this file's folder), not the cwd, on sys.path; add the repo root so `lib` imports.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lib.utils.errors import add_debug_argument, run_cli  # noqa: E402
from lib.datasets.synthetic import make_synthetic_mpii  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--output', required=True, help='dataset root to write, e.g. data/synthetic')
    parser.add_argument('--num_train', type=int, default=1000, help='number of training images')
    parser.add_argument('--num_valid', type=int, default=200, help='number of validation images')
    parser.add_argument('--seed', type=int, default=0, help='same seed -> byte-identical output')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    make_synthetic_mpii(args.output, num_train=args.num_train, num_valid=args.num_valid, seed=args.seed)
    print(f'wrote {args.num_train} train + {args.num_valid} valid synthetic MPII images (seed {args.seed}) '
          f'to {args.output} in {time.perf_counter() - start:.1f} s')


if __name__ == '__main__':
    sys.exit(run_cli(main))

"""Decoding time per validation batch, host side (lib/datasets/codec.HeatmapCodec.decode): argmax, refinement
and the mapping back to image pixels, for each decoder. A figure, not a test.

    python benchmarks/decode.py                                   # [32, 16, 64, 64], the MPII 256 batch
    python benchmarks/decode.py --shape 32 17 96 72 --iters 20    # COCO 384x288

The heatmaps are Gaussians at random sub-pixel positions plus noise, the shape of a network's output.
"""
import argparse
import os
import shlex
import sys
import time

# Run as `python benchmarks/decode.py`: Python puts benchmarks/, not the repo root, on sys.path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from lib.datasets.codec import HeatmapCodec  # noqa: E402

DECODERS = (('quarter', False), ('dark', False), ('dark-udp', True))


def heatmaps(shape, sigma: float, seed: int = 0) -> np.ndarray:
    n, k, h, w = shape
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    mu = rng.uniform([2, 2], [w - 3, h - 3], (n, k, 2))
    maps = np.exp(-((xs - mu[..., :1, None]) ** 2 + (ys - mu[..., 1:, None]) ** 2) / (2 * sigma ** 2))
    return (maps + 0.02 * rng.standard_normal(maps.shape)).astype(np.float32)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--shape', type=int, nargs=4, default=[32, 16, 64, 64], metavar=('N', 'K', 'H', 'W'))
    p.add_argument('--sigma', type=float, default=2.0, help='target sigma; sets DARK\'s blur kernel (2: 11)')
    p.add_argument('--iters', type=int, default=20)
    args = p.parse_args(argv)
    n, k, h, w = args.shape
    maps = heatmaps(args.shape, args.sigma)
    centers, scales = np.full((n, 2), 500.0), np.full((n, 2), 2.0)
    print(f'command: python benchmarks/decode.py {shlex.join(argv if argv is not None else sys.argv[1:])}'.rstrip())
    print(f'heatmaps [{n}, {k}, {h}, {w}] float32, sigma {args.sigma:g}, {args.iters} iterations, numpy '
          f'{np.__version__}')
    print('| decoder | ms per batch | us per joint |\n|---|---|---|')
    for name, udp in DECODERS:
        codec = HeatmapCodec(input_wh=(4 * w, 4 * h), heatmap_wh=(w, h), sigma=args.sigma, udp=udp,
                             decoder='quarter' if name == 'quarter' else 'dark')
        codec.decode(maps, centers, scales)      # warm-up
        start = time.perf_counter()
        for _ in range(args.iters):
            codec.decode(maps, centers, scales)
        seconds = (time.perf_counter() - start) / args.iters
        print(f'| {codec.method} | {seconds * 1e3:.2f} | {seconds * 1e6 / (n * k):.2f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Training data pipeline throughput of ONE worker: TopDownPoseDataset.__getitem__ with is_train=True
(JPEG decode, HRNet scale/rotation/flip, affine crop, Gaussian targets, normalisation), against
cv2.imread of the same files alone, with full-resolution decoding and with DataConfig.reduced_decode
(JPEGs decoded at 1/2, 1/4 or 1/8 when the augmented box is large enough). A figure, not a test.

    python benchmarks/data_pipeline.py                                  # 64 generated 1280x720 JPEGs
    python benchmarks/data_pipeline.py --image_sizes 256 384 --seconds 10 --reduced_decode on
    python benchmarks/data_pipeline.py --box_h_range 300 900            # larger people: more reduced decodes
    python benchmarks/data_pipeline.py --dataset_root data/mpii         # real MPII (annot/train.json)
    python benchmarks/data_pipeline.py --dataset_root ../shared/data/mpii --train_set valid_photos --num_images 269

Samples/s per worker times the number of DataLoader workers (at most one per free core) bounds what
the loader can feed the model.
"""
import argparse
import itertools
import os
import shlex
import sys
import tempfile
import time
import warnings

# Run as `python benchmarks/data_pipeline.py`: Python puts benchmarks/, not the repo root, on sys.path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
warnings.filterwarnings('ignore', message='No ccache found')   # printed by `import paddle` on CPU builds

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import paddle  # noqa: E402

from benchmarks.machine import load_text  # noqa: E402
from lib.config import DataConfig  # noqa: E402
from lib.datasets.mpii import SCALE_PADDING as MPII_SCALE_FACTOR  # noqa: E402  (crops as load_mpii_annotations)
from lib.datasets.mpii import load_mpii_annotations  # noqa: E402
from lib.datasets.pose_dataset import TopDownPoseDataset  # noqa: E402
from lib.datasets.sampler import SeededBatchSampler  # noqa: E402
from lib.datasets.skeletons import MPII  # noqa: E402
from lib.datasets.transforms import PIXEL_STD  # noqa: E402

JPEG_QUALITY = 90


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--image_sizes', type=int, nargs='+', default=[256, 384], help='square input sides')
    p.add_argument('--num_images', type=int, default=64, help='JPEGs generated (or records sampled from --dataset_root)')
    p.add_argument('--image_wh', type=int, nargs=2, default=[1280, 720], help='generated image width height')
    p.add_argument('--box_h_range', type=float, nargs=2, default=[200.0, 600.0],
                   help='generated person box heights in px (crop side: x1.25, then the scale augmentation)')
    p.add_argument('--reduced_decode', nargs='+', choices=['off', 'on'], default=['off', 'on'],
                   help='rows with DataConfig.reduced_decode off and/or on')
    p.add_argument('--seconds', type=float, default=5.0, help='time budget per measurement')
    p.add_argument('--warmup', type=int, default=8, help='untimed samples before each measurement')
    p.add_argument('--dataset_root', default='', help='MPII in the HRNet layout instead of generated images')
    p.add_argument('--train_set', default='train', help='with --dataset_root: the annotation set annot/<name>.json '
                   'whose people are sampled (default train; valid_photos for the real photos of the shared data)')
    p.add_argument('--cv2_threads', type=int, default=1,
                   help='cv2.setNumThreads; 1 = one core, as one of several workers gets (-1 = OpenCV default)')
    p.add_argument('--seed', type=int, default=0)
    return p.parse_args(argv)


def make_images(folder: str, num: int, image_wh, rng: np.random.Generator, box_h_range=(200.0, 600.0)):
    """Write `num` photo-like JPEGs (gradient, sensor-like noise, shapes) and MPII-like records for them."""
    w, h = image_wh
    if h < box_h_range[1] or w < box_h_range[1] * 0.8:
        raise ValueError(f'--image_wh {w} {h} cannot hold a {box_h_range[1]:.0f} px tall person box; '
                         f'use at least {box_h_range[1] * 0.8:.0f} {box_h_range[1]:.0f}, or lower --box_h_range.')
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    records = []
    for i in range(num):
        c0, cx, cy = rng.uniform(0, 255, 3), rng.uniform(-120, 120, 3), rng.uniform(-120, 120, 3)
        image = c0 + (xx / w)[..., None] * cx + (yy / h)[..., None] * cy
        image = np.clip(image + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)
        for _ in range(40):
            color = tuple(int(v) for v in rng.integers(0, 256, 3))
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            r = int(rng.integers(5, 120))
            if rng.random() < 0.5:
                cv2.circle(image, (x, y), r, color, -1 if rng.random() < 0.5 else 3, cv2.LINE_AA)
            else:
                cv2.rectangle(image, (x, y), (x + r, y + int(rng.integers(5, 120))), color, -1)
        name = f'{i:06d}.jpg'
        cv2.imwrite(os.path.join(folder, name), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        box_h = rng.uniform(*box_h_range)
        box_w = box_h * rng.uniform(0.4, 0.8)
        center = np.array([rng.uniform(box_w / 2, w - box_w / 2), rng.uniform(box_h / 2, h - box_h / 2)])
        joints = center + rng.uniform(-0.45, 0.45, (MPII.num_joints, 2)) * [box_w, box_h]
        records.append({'image': name, 'center': center, 'scale': np.full(2, box_h * MPII_SCALE_FACTOR / PIXEL_STD),
                        'joints': np.clip(joints, 0, [w - 1, h - 1]), 'joints_vis': np.ones(MPII.num_joints)})
    return records


def sample_keys(num: int, seed: int):
    """Endless (index, seed, epoch) keys in SeededBatchSampler's order, as train.py's loader sees them."""
    sampler = SeededBatchSampler(num, 1, seed, shuffle=True, drop_last=False)
    for epoch in itertools.count():
        sampler.set_epoch(epoch)
        for batch in sampler:
            yield from batch


def time_alternating(fns, seed: int, num: int, warmup: int, seconds: float):
    """(seconds per call of each fn(key), number of keys). Every key goes to all fns in turn, in rotating
    order, so they see the same samples and the same load from other jobs; about `seconds` per fn."""
    keys = sample_keys(num, seed)
    for key in itertools.islice(keys, warmup):
        for fn in fns:
            fn(key)
    elapsed, calls = np.zeros(len(fns)), 0
    while calls == 0 or elapsed.sum() < seconds * len(fns):
        key = next(keys)
        for i in np.roll(np.arange(len(fns)), calls):
            start = time.perf_counter()
            fns[i](key)
            elapsed[i] += time.perf_counter() - start
        calls += 1
    return elapsed / calls, calls


def mean_reduction(dataset: TopDownPoseDataset, seed: int, warmup: int, calls: int):
    """(mean decode reduction factor, fraction of samples decoded reduced) over the keys a timed run used."""
    keys = itertools.islice(sample_keys(len(dataset), seed), warmup, warmup + calls)
    factors = np.array([dataset.plan_sample(key).reduction for key in keys])
    return factors.mean(), (factors > 1).mean()


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.cv2_threads >= 0:
        cv2.setNumThreads(args.cv2_threads)
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix='pose_bench_') as tmp:
        if args.dataset_root:
            all_records = load_mpii_annotations(args.dataset_root, args.train_set)
            keep = rng.permutation(len(all_records))[:args.num_images]
            records, image_dir = [all_records[i] for i in keep], os.path.join(args.dataset_root, 'images')
            sides = [float(r['scale'][0]) * PIXEL_STD for r in records]   # crop side before the augmentation
            source = (f'{len(records)} records of {args.dataset_root}/annot/{args.train_set}.json on '
                      f'{len({r["image"] for r in records})} images, crop sides {min(sides):.0f}-{max(sides):.0f} px '
                      f'(median {np.median(sides):.0f}; the annotated scale x{MPII_SCALE_FACTOR})')
        else:
            records, image_dir = make_images(tmp, args.num_images, args.image_wh, rng, args.box_h_range), tmp
            source = (f'{len(records)} generated {args.image_wh[0]}x{args.image_wh[1]} JPEGs (quality {JPEG_QUALITY}), '
                      f'person boxes {args.box_h_range[0]:.0f}-{args.box_h_range[1]:.0f} px tall, '
                      f'crop side x{MPII_SCALE_FACTOR} as MPII\'s loader')
        paths = [os.path.join(image_dir, r['image']) for r in records]
        mean_kb = np.mean([os.path.getsize(p) for p in set(paths)]) / 1024

        def decode(key):   # read_image's flags, without its BGR->RGB conversion
            if cv2.imread(paths[key[0]], cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) is None:
                raise OSError(f'cannot decode {paths[key[0]]}; check the file or drop its record.')

        rows = []
        for size in args.image_sizes:
            datasets = [TopDownPoseDataset(records, image_dir, MPII, DataConfig(
                dataset_root=args.dataset_root or tmp, input_wh=(size, size), heatmap_wh=(size // 4, size // 4),
                reduced_decode=mode == 'on'), is_train=True) for mode in args.reduced_decode]
            per_call, calls = time_alternating([decode] + [d.__getitem__ for d in datasets], args.seed,
                                               len(records), args.warmup, args.seconds)
            only, load = per_call[0], load_text()
            times = dict(zip(args.reduced_decode, per_call[1:]))
            for mode, dataset in zip(args.reduced_decode, datasets):
                per_item = times[mode]
                factor, reduced = mean_reduction(dataset, args.seed, args.warmup, calls)
                speedup = f'{times["off"] / per_item:.2f}x' if mode == 'on' and 'off' in times else '-'
                rows.append(f'| {size}x{size} | {mode} | {1 / per_item:.1f} | {per_item * 1e3:.2f} | {1 / only:.1f} '
                            f'| {only * 1e3:.2f} | {per_item / only:.2f} | {factor:.2f} | {reduced:.0%} | {speedup} '
                            f'| {load} |')
                print(f'{size} reduced_decode {mode}: {1 / per_item:.1f} samples/s, decode {only * 1e3:.2f} ms, '
                      f'mean reduction {factor:.2f} (load {load})', flush=True)

    argv_shown = sys.argv[1:] if argv is None else list(argv)
    print(f'\ncommand: {shlex.join(["python", "benchmarks/data_pipeline.py"] + argv_shown)}')
    print(f'paddle {paddle.__version__}; device: CPU (numpy/OpenCV, one process); os.cpu_count() {os.cpu_count()}, '
          f'usable {len(os.sched_getaffinity(0))}; OpenCV {cv2.__version__}, {cv2.getNumThreads()} thread(s)')
    print(f'data: {source}, mean file {mean_kb:.0f} KiB; {args.seconds:g} s per measurement after '
          f'{args.warmup} warm-up samples; the rows of one input size alternate per sample, on the same keys')
    print('decode-only = full-resolution cv2.imread alone; ratio = pipeline ms / decode-only ms; mean r = mean '
          'decode reduction factor (1 = full resolution); speed-up = samples/s against the reduced_decode off row\n')
    print('| input | reduced_decode | samples/s per worker | ms/sample | decode-only images/s | decode-only ms/image '
          '| ratio | mean r | decoded reduced | speed-up | load 1/5/15 min |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    print('\n'.join(rows))


if __name__ == '__main__':
    main()

"""Time of one training iteration of the stacked hourglass (forward, StackedHeatmapLoss over all
stacks, backward, RMSprop step) on random input, and peak memory. A figure, not a test.

    python benchmarks/train_step.py                                   # 2 and 8 stacks, 256x256, batch 4
    python benchmarks/train_step.py --num_stacks 8 --image_size 384 --batch_size 16 --iters 20

Each row runs in a fresh process, so its peak memory is its own: on CPU the process's peak RSS
(resource ru_maxrss: everything the process touched, Paddle runtime included), on GPU
paddle.device.cuda.max_memory_allocated (tensors only).
"""
import argparse
import multiprocessing
import os
import resource
import shlex
import sys
import time
import warnings

# Run as `python benchmarks/train_step.py`: Python puts benchmarks/, not the repo root, on sys.path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
warnings.filterwarnings('ignore', message='No ccache found')   # printed by `import paddle` on CPU builds
warnings.filterwarnings('ignore', message='When training, we now always track')   # BatchNorm, every build
OMP_BEFORE_PADDLE = os.environ.get('OMP_NUM_THREADS')   # `import paddle` sets it to 1 when unset

import numpy as np  # noqa: E402
import paddle  # noqa: E402

from lib.core.loss import StackedHeatmapLoss  # noqa: E402
from lib.core.optim import build_optimizer  # noqa: E402
from lib.models import build_model  # noqa: E402
from lib.utils.device import select_device  # noqa: E402

NUM_JOINTS = 16
LR = 2.5e-4   # the paper's RMSprop learning rate; the step's cost does not depend on it


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--num_stacks', type=int, nargs='+', default=[2, 8])
    p.add_argument('--image_size', type=int, default=256, choices=[256, 384], help='square input side')
    p.add_argument('--batch_size', type=int, default=4, help='4 keeps a CPU run to minutes; use 16+ on GPU')
    p.add_argument('--num_features', type=int, default=256)
    p.add_argument('--iters', type=int, default=3, help='timed iterations per row')
    p.add_argument('--warmup', type=int, default=1, help='untimed iterations per row')
    p.add_argument('--device', default='auto', choices=['auto', 'cpu', 'gpu'])
    p.add_argument('--seed', type=int, default=0)
    return p.parse_args(argv)


def cpu_name() -> str:
    with open('/proc/cpuinfo') as f:
        names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
    return names[0] if names else 'CPU'


def peak_memory_mib(device: str) -> float:
    if device == 'gpu':
        return paddle.device.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux


def run_row(args: argparse.Namespace, num_stacks: int) -> dict:
    """Build the model and optimizer, then time warmup + iters full steps. Runs in its own process."""
    device = select_device(args.device)
    paddle.seed(args.seed)
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model = build_model('hourglass', num_stacks=num_stacks, num_features=args.num_features, num_joints=NUM_JOINTS)
    model.train()
    criterion = StackedHeatmapLoss('sum')
    optimizer = build_optimizer('rmsprop', LR, model.parameters())
    size, n = args.image_size, args.batch_size
    images = paddle.randn([n, 3, size, size])                               # [N, 3, H, W]
    target = paddle.rand([n, NUM_JOINTS, size // 4, size // 4])             # [N, K, h, w]
    target_weight = paddle.ones([n, NUM_JOINTS, 1])                         # [N, K, 1]
    times, cpu_times = [], []
    for i in range(args.warmup + args.iters):
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = criterion(model(images), target, target_weight)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        if device == 'gpu':
            paddle.device.synchronize()
        float(loss)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        print(f'  {num_stacks} stacks, iteration {i + 1}/{args.warmup + args.iters}'
              f'{" (warm-up)" if i < args.warmup else ""}: {(time.perf_counter() - start) * 1e3:.0f} ms, '
              f'load {os.getloadavg()[0]:.2f}', flush=True)
    return {'device': device, 'times': times, 'busy': sum(cpu_times) / sum(times), 'peak': peak_memory_mib(device), 'rss_start': rss_start,
            'load': os.getloadavg(), 'params': sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)}


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.iters < 1 or args.batch_size < 1:
        raise ValueError(f'--iters and --batch_size must be >= 1; received {args.iters} and {args.batch_size}.')
    rows, results = [], []
    context = multiprocessing.get_context('spawn')   # a fresh process per row: its own peak memory
    for num_stacks in args.num_stacks:
        pool = context.Pool(1)
        result = pool.apply(run_row, (args, num_stacks))
        pool.close()   # not terminate(): Paddle's SIGTERM handler would print a fatal-error report
        pool.join()
        results.append(result)
        ms = np.array(result['times']) * 1e3
        load = '/'.join(f'{v:.2f}' for v in result['load'])
        rows.append(f'| {num_stacks} | {result["params"] / 1e6:.2f} M | {args.image_size}x{args.image_size} '
                    f'| {args.batch_size} | {ms.mean():.0f} | {ms.min():.0f} '
                    f'| {args.batch_size / ms.mean() * 1e3:.2f} | {result["busy"]:.2f} | {result["peak"]:.0f} | {load} |')

    device = results[0]['device']
    memory = ('GPU max_memory_allocated, MiB' if device == 'gpu' else
              f'peak process RSS (ru_maxrss), MiB, of which ~{results[0]["rss_start"]:.0f} MiB before the model was built')
    argv_shown = sys.argv[1:] if argv is None else list(argv)
    print(f'\ncommand: {shlex.join(["python", "benchmarks/train_step.py"] + argv_shown)}')
    place = paddle.device.cuda.get_device_name() if device == 'gpu' else cpu_name()
    print(f'paddle {paddle.__version__}; device: {device} ({place}); os.cpu_count() {os.cpu_count()}, '
          f'usable {len(os.sched_getaffinity(0))}; OMP_NUM_THREADS {OMP_BEFORE_PADDLE or "unset (Paddle uses 1)"}')
    print(f'{args.num_features} features, {NUM_JOINTS} joints, random input; {args.iters} timed iteration(s) after '
          f'{args.warmup} warm-up; RMSprop lr {LR}; cores busy = CPU time / wall time; peak memory = {memory}\n')
    print('| stacks | trainable params | input | batch | ms/iter mean | ms/iter min | samples/s | cores busy | peak memory MiB | load 1/5/15 min |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    print('\n'.join(rows))


if __name__ == '__main__':
    main()

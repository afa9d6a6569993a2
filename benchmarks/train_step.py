"""Time of one training step as train.py runs it (lib.core.engine.train_step: forward, StackedHeatmapLoss
over all outputs, backward, finiteness check, optimizer step, lr step) on random images and Gaussian
targets, with the forward GMACs, the achieved TFLOP/s and the peak memory. A figure, not a test.

    python benchmarks/train_step.py                      # hourglass 2 and 8 stacks, hourglass52, pose_resnet_50; 256
    python benchmarks/train_step.py --models hourglass --num_stacks 2 --to_static        # eager vs to_static
    python benchmarks/train_step.py --models pose_resnet_50 --coco --image_sizes 256 384 --batch_sizes 16 32 --iters 20

Each row runs in a fresh process, so its peak memory is its own: on CPU peak RSS (ru_maxrss, Paddle runtime
included), on GPU max_memory_allocated (tensors only). Optimizer, lr and stack loss: each model's preset.
"""
import argparse
import dataclasses
import itertools
import logging
import multiprocessing
import os
import resource
import shlex
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import List, NamedTuple, Tuple

# Run as `python benchmarks/train_step.py`: Python puts benchmarks/, not the repo root, on sys.path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
warnings.filterwarnings('ignore', message='No ccache found')   # printed by `import paddle` on CPU builds
warnings.filterwarnings('ignore', message='When training, we now always track')   # BatchNorm, every build
OMP_BEFORE_PADDLE = os.environ.get('OMP_NUM_THREADS')   # `import paddle` sets it to 1 when unset

import numpy as np  # noqa: E402
import paddle  # noqa: E402

from benchmarks.machine import cpu_name, load_text  # noqa: E402
from lib.config import ModelConfig, preset_config  # noqa: E402
from lib.core.engine import Training, TrainState, train_step  # noqa: E402
from lib.core.loss import StackedHeatmapLoss  # noqa: E402
from lib.core.optim import build_optimizer, build_scheduler  # noqa: E402
from lib.core.precision import LEVELS, MODES, Precision  # noqa: E402
from lib.datasets.heatmaps import generate_target  # noqa: E402
from lib.models import MODELS, build_model_from, check_input_size  # noqa: E402
from lib.utils.complexity import count_macs, count_parameters  # noqa: E402
from lib.utils.device import select_device  # noqa: E402

MPII_JOINTS, COCO_JOINTS = 16, 17
COCO_INPUT_WH = (192, 256)   # SimpleBaselines' COCO "256x192" (H x W)
SIGMA = 2.0                  # HRNet's target sigma at 1/4 resolution
TRAIN_FLOPS_PER_MAC = 3 * 2  # forward + backward ~ 3 x forward; 1 multiply-add = 2 FLOPs


class Row(NamedTuple):
    model: ModelConfig
    input_wh: Tuple[int, int]
    batch: int
    amp: str
    mode: str                # 'eager' or 'to_static'

    @property
    def name(self) -> str:
        return f'{self.model.label} {self.input_wh[1]}x{self.input_wh[0]} batch {self.batch} amp {self.amp} {self.mode}'


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', nargs='+', choices=sorted(MODELS),
                   default=['hourglass', 'hourglass52', 'pose_resnet_50'])
    p.add_argument('--num_stacks', type=int, nargs='+', default=[2, 8], help="'hourglass' only: one row per value")
    p.add_argument('--num_features', type=int, default=0, help="'hourglass' only; 0 = the builder's 256")
    p.add_argument('--image_sizes', type=int, nargs='+', default=[256], help='square sides (references: 256, 384)')
    p.add_argument('--coco', action='store_true', help='pose_resnet models: also a COCO 256x192 (H x W) row, 17 joints')
    p.add_argument('--batch_sizes', type=int, nargs='+', help='default: 2 on CPU, 16 on GPU')
    p.add_argument('--amp', nargs='+', choices=MODES, help='default: off on CPU (auto_cast: no-op there), all on GPU')
    p.add_argument('--amp_level', choices=LEVELS, default='O1')
    p.add_argument('--to_static', action='store_true',
                   help='time every row twice: eager and with paddle.jit.to_static(model, full_graph=True)')
    p.add_argument('--iters', type=int, default=3, help='timed steps per row')
    p.add_argument('--warmup', type=int, default=1, help='untimed steps per row (to_static compiles in the first)')
    p.add_argument('--device', default='auto', choices=['auto', 'cpu', 'gpu'])
    p.add_argument('--seed', type=int, default=0)
    return p.parse_args(argv)


def random_batch(n: int, num_joints: int, input_wh: Tuple[int, int], rng: np.random.Generator) -> dict:
    """Random images [N, 3, H, W] and HRNet Gaussian targets [N, K, H/4, W/4] around random joints."""
    heatmap_wh = (input_wh[0] // 4, input_wh[1] // 4)
    pairs = [generate_target(rng.uniform(0, 1, (num_joints, 2)) * input_wh, np.ones(num_joints), input_wh,
                             heatmap_wh, SIGMA) for _ in range(n)]
    return {'image': paddle.to_tensor(rng.standard_normal((n, 3, input_wh[1], input_wh[0]), dtype=np.float32)),
            'target': paddle.to_tensor(np.stack([target for target, _ in pairs])),             # [N, K, h, w]
            'target_weight': paddle.to_tensor(np.stack([weight for _, weight in pairs]))}     # [N, K, 1]


def build_training(row: Row, steps: int, level: str) -> Tuple[Training, int, int]:
    """The Training train.py builds for this model's preset; also (forward MACs per image, parameters)."""
    config = preset_config(row.model.name, dataset_root='')
    model = build_model_from(row.model)
    macs, params = count_macs(model, row.input_wh), count_parameters(model)
    model.train()
    # Milestones in steps: one "epoch" is the whole run, so no decay falls inside it (cost is the same).
    scheduler = build_scheduler(config.lr, config.lr_steps, config.lr_gamma, steps, config.warmup_iters,
                                config.warmup_ratio)
    optimizer = build_optimizer(config.optimizer, scheduler, model.parameters(), config.weight_decay)
    precision = Precision(row.amp, level)
    model, optimizer = precision.prepare(model, optimizer)
    # full_graph=True (Paddle 2.6 and 3.x): translate the whole forward, no SOT bytecode fallback.
    runner = paddle.jit.to_static(model, full_graph=True) if row.mode == 'to_static' else model
    training = Training(model=runner, criterion=StackedHeatmapLoss(config.stack_loss), optimizer=optimizer,
                        scheduler=scheduler, precision=precision, logger=logging.getLogger('benchmark'),
                        num_epochs=1, total_iters=steps, log_every=steps, max_nonfinite=config.max_nonfinite)
    return training, macs, params


def run_row(args: argparse.Namespace, row: Row) -> dict:
    """Build the step's pieces, then time warmup + iters steps. Runs in its own process."""
    device = select_device(args.device)
    paddle.seed(args.seed)
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux
    try:
        steps = args.warmup + args.iters
        training, macs, params = build_training(row, steps, args.amp_level)
        batch = random_batch(row.batch, row.model.num_joints, row.input_wh, np.random.default_rng(args.seed))
        state, times, cpu_times = TrainState(), [], []
        for i in range(steps):
            start, cpu_start = time.perf_counter(), time.process_time()
            train_step(training, batch, state, stop_requested=False)
            if device == 'gpu':
                paddle.device.synchronize()
            elapsed = time.perf_counter() - start
            if i >= args.warmup:
                times.append(elapsed)
                cpu_times.append(time.process_time() - cpu_start)
            print(f'  {row.name}, step {i + 1}/{steps}{" (warm-up)" if i < args.warmup else ""}: '
                  f'{elapsed * 1e3:.0f} ms, load {load_text()}', flush=True)
    except Exception as error:   # one line in the table instead of ending the run (e.g. to_static unsupported)
        return {'error': f'{type(error).__name__}: {" ".join(str(error).split())[:400]}', 'device': device}
    peak = (paddle.device.cuda.max_memory_allocated() if device == 'gpu'
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20
    return {'device': device, 'times': times, 'busy': sum(cpu_times) / sum(times), 'peak': peak,
            'rss_start': rss_start, 'load': load_text(), 'macs': macs, 'params': params}


def plan_rows(args: argparse.Namespace, batch_sizes: List[int], amps: List[str]) -> List[Row]:
    rows = []
    for name in args.models:
        configs = ([ModelConfig(name, num_stacks=s, num_features=args.num_features) for s in args.num_stacks]
                   if name == 'hourglass' else [ModelConfig(name)])
        sizes = [((side, side), MPII_JOINTS) for side in args.image_sizes]
        sizes += [(COCO_INPUT_WH, COCO_JOINTS)] if args.coco and name.startswith('pose_resnet') else []
        for (input_wh, joints), config in itertools.product(sizes, configs):
            check_input_size(name, input_wh)
            modes = ['eager', 'to_static'] if args.to_static else ['eager']
            rows += [Row(dataclasses.replace(config, num_joints=joints), input_wh, batch, amp, mode)
                     for batch, amp, mode in itertools.product(batch_sizes, amps, modes)]
    return rows


def format_row(row: Row, result: dict, eager_ms: dict) -> str:
    head = f'| {row.model.label} | {row.input_wh[1]}x{row.input_wh[0]} | {row.batch} | {row.amp} | {row.mode} '
    if 'error' in result:
        return head + '| failed (below) |' + ' - |' * 9
    ms = np.array(result['times']) * 1e3
    key = row._replace(mode='eager')
    if row.mode == 'eager':
        eager_ms[key] = ms.mean()
    speedup = f'{eager_ms[key] / ms.mean():.2f}x' if row.mode != 'eager' and key in eager_ms else '-'
    tflops = TRAIN_FLOPS_PER_MAC * result['macs'] * row.batch / (ms.mean() / 1e3) / 1e12
    return (head + f'| {result["params"] / 1e6:.2f} M | {result["macs"] / 1e9:.2f} | {ms.mean():.0f} | {ms.min():.0f} '
            f'| {row.batch / ms.mean() * 1e3:.2f} | {tflops:.3f} | {speedup} | {result["busy"]:.2f} '
            f'| {result["peak"]:.0f} | {result["load"]} |')


def main(argv=None) -> None:
    args = parse_args(argv)
    device = select_device(args.device)
    batch_sizes = args.batch_sizes or ([16] if device == 'gpu' else [2])
    amps = args.amp or (['off', 'bf16', 'fp16'] if device == 'gpu' else ['off'])
    if args.iters < 1 or args.warmup < 0 or min(batch_sizes) < 1:
        raise ValueError(f'--iters and --batch_sizes must be >= 1 and --warmup >= 0; received {args.iters}, '
                         f'{batch_sizes} and {args.warmup}.')
    rows, lines, errors, eager_ms, rss_start = plan_rows(args, batch_sizes, amps), [], [], {}, []
    print(f'{len(rows)} row(s), each in a fresh process; load {load_text()}', flush=True)
    for row in rows:
        # A fresh process per row: its own peak memory. The executor ends it with a sentinel, not SIGTERM
        # (Paddle's SIGTERM handler prints a fatal-error report), and reports a crash instead of hanging.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn')) as pool:
            try:
                result = pool.submit(run_row, args, row).result()
            except BrokenProcessPool as error:
                result = {'error': f'the row process died ({error}); run this row alone to see why'}
        if 'error' in result:
            errors.append(f'{row.name}: {result["error"]}')
            print(f'  {errors[-1]}', flush=True)
        rss_start += [result['rss_start']] if 'rss_start' in result else []
        lines.append(format_row(row, result, eager_ms))

    memory = ('GPU max_memory_allocated' if device == 'gpu' else 'peak process RSS (ru_maxrss)' +
              (f', ~{rss_start[0]:.0f} MiB of it before the model was built' if rss_start else ''))
    argv_shown = sys.argv[1:] if argv is None else list(argv)
    print(f'\ncommand: {shlex.join(["python", "benchmarks/train_step.py"] + argv_shown)}')
    place = paddle.device.cuda.get_device_name() if device == 'gpu' else cpu_name()
    print(f'paddle {paddle.__version__}; device: {device} ({place}); os.cpu_count() {os.cpu_count()}, '
          f'usable {len(os.sched_getaffinity(0))}; OMP_NUM_THREADS {OMP_BEFORE_PADDLE or "unset (Paddle uses 1)"}')
    optimizers = ', '.join(f'{name} {preset_config(name, "").optimizer} lr {preset_config(name, "").lr:g}'
                           for name in args.models)
    print(f'step = lib.core.engine.train_step (forward, StackedHeatmapLoss, backward, finiteness check, optimizer '
          f'step, lr step); optimizer from each preset: {optimizers}; random images, Gaussian targets '
          f'(sigma {SIGMA:g}) at random joints; {MPII_JOINTS} joints ({COCO_JOINTS} in COCO rows); '
          f'{args.iters} timed step(s) after {args.warmup} warm-up')
    print('GMACs = forward multiply-adds per image (lib/utils/complexity.py, mmcv rules); TFLOP/s = 3 x 2 x MACs x '
          'batch / mean step time (forward + backward ~ 3 x forward, 1 MAC = 2 FLOPs); vs eager = eager ms / this '
          f'row\'s ms; cores busy = CPU time / wall time; peak memory (MiB) = {memory}')
    if device == 'cpu' and any(amp != 'off' for amp in amps):
        print('note: on CPU paddle.amp.auto_cast is a no-op (it warns "amp_guard can only be enabled on CUDAPlace"), '
              'and O2 keeps float32 weights: the bf16/fp16 rows compute in float32 there.')
    print('\n| model | input HxW | batch | amp | mode | trainable params | fwd GMACs | ms/step mean | ms/step min '
          '| samples/s | TFLOP/s | vs eager | cores busy | peak memory MiB | load 1/5/15 min |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    print('\n'.join(lines))
    for error in errors:
        print(f'failed: {error}')


if __name__ == '__main__':
    main()

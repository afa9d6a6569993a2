"""What decides whether a run fits this device and how fast it goes: synchronisations and memory of a training step,
its throughput, the data pipeline's rate per worker against it, and shared memory for the loader's workers."""
import dataclasses
import logging
import math
import os
import resource
import shutil
import tempfile
import time
import types
from typing import List, Optional, Tuple

import cv2
import numpy as np
import paddle

from lib.config import TrainConfig
from lib.core.engine import Training, TrainState, train_step
from lib.core.loss import StackedHeatmapLoss
from lib.core.optim import build_optimizer, build_scheduler
from lib.core.precision import Precision
from lib.datasets import loaders
from lib.datasets.sampler import SeededBatchSampler
from lib.models import build_model_from
from lib.preflight.findings import FAIL, INFO, NOT_RUN, PASS, Finding
from lib.utils.errors import UserError
from lib.utils.op_count import host_syncs

GiB = 2.0 ** 30


def _out_of_memory(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, MemoryError) or 'out of memory' in text or 'resourceexhausted' in text


def measure_step(config: TrainConfig, batch_size: int, device: str, note: str,
                 seconds: float = 3.0) -> Tuple[List[Finding], Optional[float]]:
    """Train steps of the configured network, input size and precision at `batch_size` on random data: the first
    (warm-up: the BatchNorm probe, the optimizer's formula check, cuDNN's algorithm search) is not counted; the
    second is watched for host reads and copies; then steps until `seconds` have passed (at most 5, at least 1).
    Returns the findings and the steps' images/s."""
    gpu = device.startswith('gpu')
    paddle.seed(config.seed)
    model = build_model_from(config.model)
    scheduler = build_scheduler(config.lr, config.lr_steps, config.lr_gamma, 10 ** 6, config.warmup_iters,
                                config.warmup_ratio)
    optimizer = build_optimizer(config.optimizer, scheduler, model.parameters(), config.weight_decay)
    precision = Precision(config.amp, config.amp_level)
    model, optimizer = precision.prepare(model, optimizer)
    training = Training(model, StackedHeatmapLoss(config.stack_loss), optimizer, scheduler, precision,
                        logging.getLogger('preflight'), num_epochs=1, total_iters=10 ** 6, log_every=10 ** 6, max_nonfinite=10 ** 6)
    (width, height), (h_width, h_height) = config.data.input_wh, config.data.heatmap_wh
    rng = np.random.RandomState(0)
    joints = config.model.num_joints
    batch = {'image': paddle.to_tensor(rng.randn(batch_size, 3, height, width).astype(np.float32)),
             'target': paddle.to_tensor(rng.rand(batch_size, joints, h_height, h_width).astype(np.float32)),
             'target_weight': paddle.ones([batch_size, joints, 1], dtype='float32')}
    reset = getattr(paddle.device.cuda, 'reset_max_memory_allocated', None) if gpu else None
    if reset is not None:
        reset()
    state, times = TrainState(), []
    label = f'{config.model.label} {height}x{width}, batch {batch_size}{note}, {config.amp} {config.amp_level}'
    try:
        start = time.perf_counter()
        train_step(training, batch, state, stop_requested=False)
        warm_up = time.perf_counter() - start
        with host_syncs() as syncs:
            start = time.perf_counter()
            train_step(training, batch, state, stop_requested=False)
            if gpu:
                paddle.device.synchronize()
        times.append(time.perf_counter() - start)
        while sum(times) < seconds and len(times) < 5:
            start = time.perf_counter()
            train_step(training, batch, state, stop_requested=False)
            if gpu:
                paddle.device.synchronize()
            times.append(time.perf_counter() - start)
    except Exception as error:  # noqa: BLE001 - an out-of-memory is a finding, anything else a bug
        if not _out_of_memory(error):
            raise
        return [Finding('peak device memory of a training step', FAIL, f'out of memory at {label}',
                        'the configured batch must fit the device',
                        f'lower --batch_size (now {config.batch_size}) or use --amp (if this GPU supports it)',
                        {'error': str(error)[:500]})], None
    syncs_ok = len(syncs['reads']) <= 1 and not syncs['copies']
    findings = [Finding('host synchronisations per step', PASS if syncs_ok else FAIL,
                        f'{len(syncs["reads"])} read(s) {syncs["reads"]}, {len(syncs["copies"])} host-to-device '
                        f'cop(ies) {syncs["copies"]}', '1 read (loss, verdicts and stop vote together), 0 copies',
                        'each extra synchronisation stalls the GPU every step; report it with this file', syncs)]
    if gpu:
        peak = paddle.device.cuda.max_memory_allocated() / GiB
        total = paddle.device.cuda.get_device_properties().total_memory / GiB
        findings.append(Finding('peak device memory of a training step', INFO, f'{peak:.2f} GiB of {total:.1f} GiB',
                                f'{label}; max_memory_allocated' + ('' if reset else ' since the process started'),
                                data={'peak_gib': peak, 'total_gib': total}))
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20     # KiB on Linux
        findings.append(Finding('peak memory of a training step', INFO, f'{rss:.2f} GiB peak RSS',
                                f'{label}; a CPU has no device memory: the whole process\'s peak resident memory',
                                data={'peak_rss_gib': rss}))
    step = float(np.mean(times))
    rate = batch_size / step
    findings.append(Finding('training-step throughput', INFO, f'{rate:.2f} img/s ({step * 1e3:.0f} ms/step)',
                            f'{label}; mean of {len(times)} step(s) after a warm-up of {warm_up:.1f} s',
                            data={'images_per_second': rate, 'step_seconds': times, 'warm_up_seconds': warm_up}))
    return findings, rate


# -------------------------------------------------------------------------------------- data pipeline

def training_set(config: TrainConfig):
    """(the configured training set, how it was found); generated synthetic MPII data when it is absent."""
    try:
        return loaders.build_dataset(config.data, config.data.train_set, is_train=True), \
            f'{config.data.dataset} {config.data.train_set} at {config.data.dataset_root}'
    except UserError as error:
        root = tempfile.mkdtemp(prefix='preflight_synthetic_')
        from lib.datasets.synthetic import make_synthetic_mpii
        make_synthetic_mpii(root, num_train=64, num_valid=2, seed=0)
        data = dataclasses.replace(config.data, dataset='mpii', dataset_root=root, train_set='train')
        first_line = str(error).splitlines()[0]
        return loaders.build_dataset(data, 'train', is_train=True), \
            (f'no training set ({first_line}): 64 generated synthetic MPII images of 376x291 px, smaller than real '
             'photos, so the rate is optimistic')


def samples_per_second_in_process(dataset, seconds: float) -> float:
    """One process decoding and augmenting samples (what one DataLoader worker does), cv2 on one thread."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    sampler = SeededBatchSampler(len(dataset), 1, seed=0, shuffle=True, drop_last=True)
    try:
        seen, count, start, epoch = 0, 0, None, 0
        while True:
            sampler.set_epoch(epoch)
            for keys in sampler:
                dataset[keys[0]]
                seen += 1
                if seen == 2:                       # two warm-up samples, then the clock starts
                    start = time.perf_counter()
                elif seen > 2:
                    count += 1
                    if time.perf_counter() - start >= seconds:
                        return count / (time.perf_counter() - start)
            epoch += 1
    finally:
        cv2.setNumThreads(threads)


def samples_per_second_loaded(dataset, batch_size: int, workers: int, seconds: float) -> float:
    """The loader train.py builds, with these workers, after its first batch (the workers' start)."""
    loader = loaders.train_loader(dataset, batch_size, workers, seed=0)
    count, start, epoch = 0, None, 0
    while True:
        loader.batch_sampler.set_epoch(epoch)
        for batch in loader:
            if start is None:
                start = time.perf_counter()
                continue
            count += batch['image'].shape[0]
            if time.perf_counter() - start >= seconds:
                return count / (time.perf_counter() - start)
        epoch += 1


def measure_pipeline(config: TrainConfig, step_rate: Optional[float], device: str,
                     seconds: float = 3.0) -> List[Finding]:
    dataset, source = training_set(config)
    per_worker = samples_per_second_in_process(dataset, seconds)
    findings = [Finding('data pipeline per worker', INFO, f'{per_worker:.1f} samples/s',
                        f'{source}; decode, augmentation, crop, targets in one process', data={'source': source})]
    workers = config.workers
    try:
        loaded = samples_per_second_loaded(dataset, min(config.batch_size, len(dataset)), workers, 2 * seconds)
    except UserError as error:       # e.g. the shared-memory check: reported by check_shared_memory's finding
        findings.append(Finding(f'data loader with --workers {workers}', NOT_RUN, '-', fix=str(error)))
        return findings
    findings.append(Finding(f'data loader with --workers {workers}', INFO, f'{loaded:.1f} samples/s',
                            f'batch {config.batch_size}, after the first batch', data={'samples_per_second': loaded}))
    if step_rate is None:
        return findings
    needed = max(1, math.ceil(step_rate / per_worker))
    bound = 'compute-bound' if loaded >= step_rate else 'data-bound'
    shared = '' if device.startswith('gpu') else '; on a CPU the workers and the step share the same cores'
    findings.append(Finding('verdict', INFO, f'{bound}: the step takes {step_rate:.1f} img/s, the loader gives '
                            f'{loaded:.1f}', f'{needed} worker(s) keep this device busy at {per_worker:.0f} '
                            f'samples/s each, given that many free cores{shared}',
                            data={'verdict': bound, 'workers_needed': needed}))
    return findings


def check_shared_memory(config: TrainConfig) -> Finding:
    """Free /dev/shm against the batches the loader keeps in flight (lib/datasets/loaders.check_shared_memory)."""
    dataset = types.SimpleNamespace(config=config.data,
                                    layout=types.SimpleNamespace(num_joints=config.model.num_joints))
    need = loaders.shared_memory_needed(dataset, config.batch_size, config.workers) if config.workers else 0
    label = f'shared memory for --workers {config.workers}'
    if not config.workers or not os.path.isdir(loaders.SHARED_MEMORY):
        return Finding(label, INFO, 'not used' if not config.workers else f'no {loaders.SHARED_MEMORY}',
                       'workers 0 load in the main process' if not config.workers else 'not Linux')
    free = shutil.disk_usage(loaders.SHARED_MEMORY).free
    try:
        loaders.check_shared_memory(dataset, config.batch_size, config.workers)
        fix = ''
    except UserError as error:
        fix = str(error)
    return Finding(label, PASS if not fix else FAIL, f'needs {need / 2**20:.0f} MiB, {free / 2**20:.0f} MiB free',
                   f'{loaders.PREFETCH_FACTOR} batches in flight per worker x batch {config.batch_size} (float32)',
                   fix, {'needed_bytes': need, 'free_bytes': free})

"""Dataset and loader builders shared by train.py and val.py."""
import functools
import os
import shutil
from typing import Optional, Union

import numpy as np
import paddle
from paddle.io import BatchSampler, DataLoader
from paddle.io.dataloader.collate import default_collate_fn

from lib.config import DataConfig, TestConfig
from lib.datasets.pose_dataset import TopDownPoseDataset
from lib.datasets.records import load_split
from lib.datasets.sampler import SeededBatchSampler
from lib.utils.errors import Unavailable
from lib.utils.processes import die_with_parent

# Paddle's DataLoader keeps prefetch_factor (default 2) x max(workers, places) batches outstanding
# (python/paddle/io/dataloader/dataloader_iter.py, _outstanding_capacity, 2.6 and 3.x); with use_shared_memory each
# lives as memory-mapped files in /dev/shm (python/paddle/io/reader.py, the use_shared_memory note).
PREFETCH_FACTOR = 2
SHARED_MEMORY = '/dev/shm'


def build_dataset(config: DataConfig, image_set: str, is_train: bool,
                  test: Optional[TestConfig] = None) -> TopDownPoseDataset:
    """The TopDownPoseDataset of config.dataset (mpii or coco); `test` chooses COCO's evaluation boxes
    (ground truth, or test.det_file when not test.use_gt_bbox), see lib.datasets.records.load_split."""
    split = load_split(config, image_set, None if is_train else test)
    return TopDownPoseDataset(split.records, split.image_dir, split.layout, config, is_train)


# What the network needs on the device; the other fields (joints, centre, scale, index, ...) are read on the host
# (decoding, metrics, pictures) and stay CPU tensors.
DEVICE_FIELDS = ('image', 'target', 'target_weight')


class InProcessLoader:
    """The batches of `batch_sampler`, read in this process, as Paddle's DataLoader gives them (a dict of
    [N, ...] tensors). Used for workers=0 instead of DataLoader, whose reader thread, when the dataset raises
    (a missing or truncated image), dies without closing its queue: the main thread then waits forever.

    Only DEVICE_FIELDS are copied to the device: on a GPU each paddle.to_tensor of host memory is a synchronous
    cudaMemcpy (lib/utils/op_count.HOST_TO_DEVICE), so ten of them per batch stalled the device ten times."""

    def __init__(self, dataset, batch_sampler):
        self.dataset = dataset
        self.batch_sampler = batch_sampler

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self):
        for keys in self.batch_sampler:
            batch = default_collate_fn([self.dataset[key] for key in keys])
            yield {name: paddle.to_tensor(np.asarray(value), place=None if name in DEVICE_FIELDS else paddle.CPUPlace())
                   for name, value in batch.items()}


Loader = Union[DataLoader, InProcessLoader]


def batch_bytes(dataset: TopDownPoseDataset, batch_size: int) -> int:
    """Bytes of one collated batch: float32 image [N, 3, H, W] and target [N, K, h, w], plus the small fields."""
    (width, height), (h_width, h_height) = dataset.config.input_wh, dataset.config.heatmap_wh
    joints = dataset.layout.num_joints
    per_sample = 4 * (3 * width * height + joints * h_width * h_height + joints * 4 + 8) + 8
    return batch_size * per_sample


def shared_memory_needed(dataset: TopDownPoseDataset, batch_size: int, workers: int) -> int:
    return PREFETCH_FACTOR * max(workers, 1) * batch_bytes(dataset, batch_size)


def check_shared_memory(dataset: TopDownPoseDataset, batch_size: int, workers: int, path: str = SHARED_MEMORY) -> None:
    """Unavailable, before any worker starts, when the batches the workers keep in flight do not fit in the free
    shared memory (a container's default /dev/shm is 64 MB): there the workers would die with a bus error."""
    if workers == 0 or not os.path.isdir(path) or not hasattr(dataset, 'config'):
        return      # no workers, no /dev/shm (not Linux), or a dataset that does not say its sizes
    need, free = shared_memory_needed(dataset, batch_size, workers), shutil.disk_usage(path).free
    if need <= free:
        return
    fitting = free // (PREFETCH_FACTOR * batch_bytes(dataset, batch_size))
    raise Unavailable(
        f'the data loader needs {need / 2**20:.0f} MiB of shared memory ({PREFETCH_FACTOR} batches in flight x '
        f'{workers} workers x {batch_bytes(dataset, batch_size) / 2**20:.1f} MiB per batch of {batch_size} float32 '
        f'images and targets), but {path} has {free / 2**20:.0f} MiB free, so the workers would be killed. Fix: give '
        f'the container more shared memory (docker run --shm-size=8g, or remount {path} larger), or use '
        + (f'--workers {fitting}' if fitting >= 1 else '--workers 0') + ' or a smaller --batch_size.')


def _loader(dataset: TopDownPoseDataset, sampler, workers: int) -> Loader:
    if workers == 0:
        return InProcessLoader(dataset, sampler)
    check_shared_memory(dataset, sampler.batch_size, workers)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, use_shared_memory=True,
                      prefetch_factor=PREFETCH_FACTOR,
                      worker_init_fn=functools.partial(die_with_parent, parent_pid=os.getpid()))


def train_loader(dataset: TopDownPoseDataset, batch_size: int, workers: int, seed: int,
                 num_replicas: int = 1, rank: int = 0) -> Loader:
    sampler = SeededBatchSampler(len(dataset), batch_size, seed, shuffle=True, drop_last=True,
                                 num_replicas=num_replicas, rank=rank)
    return _loader(dataset, sampler, workers)


def eval_loader(dataset: TopDownPoseDataset, batch_size: int, workers: int) -> Loader:
    """File order, every sample once: PCKh pairs prediction n with ground-truth column n."""
    sampler = BatchSampler(dataset, batch_size=batch_size, shuffle=False, drop_last=False)
    return _loader(dataset, sampler, workers)

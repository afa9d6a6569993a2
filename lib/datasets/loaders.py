"""Dataset and loader builders shared by train.py and val.py."""
import functools
import os
from typing import Optional, Union

import numpy as np
import paddle
from paddle.io import BatchSampler, DataLoader
from paddle.io.dataloader.collate import default_collate_fn

from lib.config import DataConfig, TestConfig
from lib.datasets.pose_dataset import TopDownPoseDataset
from lib.datasets.records import load_split
from lib.datasets.sampler import SeededBatchSampler
from lib.utils.processes import die_with_parent


def build_dataset(config: DataConfig, image_set: str, is_train: bool,
                  test: Optional[TestConfig] = None) -> TopDownPoseDataset:
    """The TopDownPoseDataset of config.dataset (mpii or coco); `test` chooses COCO's evaluation boxes
    (ground truth, or test.det_file when not test.use_gt_bbox), see lib.datasets.records.load_split."""
    split = load_split(config, image_set, None if is_train else test)
    return TopDownPoseDataset(split.records, split.image_dir, split.layout, config, is_train)


class InProcessLoader:
    """The batches of `batch_sampler`, read in this process, as Paddle's DataLoader gives them (a dict of
    [N, ...] tensors). Used for workers=0 instead of DataLoader, whose reader thread, when the dataset raises
    (a missing or truncated image), dies without closing its queue: the main thread then waits forever."""

    def __init__(self, dataset, batch_sampler):
        self.dataset = dataset
        self.batch_sampler = batch_sampler

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self):
        for keys in self.batch_sampler:
            batch = default_collate_fn([self.dataset[key] for key in keys])
            yield {name: paddle.to_tensor(np.asarray(value)) for name, value in batch.items()}


Loader = Union[DataLoader, InProcessLoader]


def _loader(dataset: TopDownPoseDataset, sampler, workers: int) -> Loader:
    if workers == 0:
        return InProcessLoader(dataset, sampler)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, use_shared_memory=True,
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

"""Batch sampler whose order depends only on (seed, epoch): reproducible, resumable mid-epoch, and
shardable across processes so that N ranks together see the batches of a single-process run."""
from typing import Iterator, List, Tuple

import numpy as np
from paddle.io import BatchSampler
from lib.utils.errors import BadValue


class SeededBatchSampler(BatchSampler):
    """Yields per-rank batches of keys (index, seed, epoch) for TopDownPoseDataset.

    One global batch is batch_size x num_replicas samples of a permutation drawn from (seed, epoch);
    rank r takes its r-th slice. The last incomplete global batch is dropped when training
    (drop_last), as HRNet's loader does not, but BatchNorm dislikes a batch of one.
    """

    def __init__(self, dataset_size: int, batch_size: int, seed: int, shuffle: bool = True,
                 drop_last: bool = True, num_replicas: int = 1, rank: int = 0):
        if batch_size < 1:
            raise BadValue(f'batch_size must be >= 1; received {batch_size}.')
        global_batch = batch_size * num_replicas
        if drop_last and dataset_size < global_batch:
            raise BadValue(f'the training set has {dataset_size} samples, fewer than one batch of '
                           f'{global_batch} (batch_size {batch_size} x {num_replicas} processes); '
                           'lower --batch_size.')
        self.dataset_size = dataset_size
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch's order; skip the first `start_batch` batches (resuming mid-epoch)."""
        self.epoch = epoch
        self.start_batch = start_batch

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.dataset_size)
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.dataset_size)

    def __len__(self) -> int:
        global_batch = self.batch_size * self.num_replicas
        if self.drop_last:
            return self.dataset_size // global_batch
        return -(-self.dataset_size // global_batch)

    def __iter__(self) -> Iterator[List[Tuple[int, int, int]]]:
        order = self._order()
        global_batch = self.batch_size * self.num_replicas
        for b in range(self.start_batch, len(self)):
            chunk = order[b * global_batch:(b + 1) * global_batch]
            mine = chunk[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
            yield [(int(i), self.seed, self.epoch) for i in mine]

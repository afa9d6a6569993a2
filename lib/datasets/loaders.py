"""Dataset and loader builders shared by train.py and val.py."""
from typing import Optional

from paddle.io import BatchSampler, DataLoader

from lib.config import DataConfig, TestConfig
from lib.datasets.pose_dataset import TopDownPoseDataset
from lib.datasets.records import load_split
from lib.datasets.sampler import SeededBatchSampler


def build_dataset(config: DataConfig, image_set: str, is_train: bool,
                  test: Optional[TestConfig] = None) -> TopDownPoseDataset:
    """The TopDownPoseDataset of config.dataset (mpii or coco); `test` chooses COCO's evaluation boxes
    (ground truth, or test.det_file when not test.use_gt_bbox), see lib.datasets.records.load_split."""
    split = load_split(config, image_set, None if is_train else test)
    return TopDownPoseDataset(split.records, split.image_dir, split.layout, config, is_train)


def train_loader(dataset: TopDownPoseDataset, batch_size: int, workers: int, seed: int,
                 num_replicas: int = 1, rank: int = 0) -> DataLoader:
    sampler = SeededBatchSampler(len(dataset), batch_size, seed, shuffle=True, drop_last=True,
                                 num_replicas=num_replicas, rank=rank)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, use_shared_memory=workers > 0)


def eval_loader(dataset: TopDownPoseDataset, batch_size: int, workers: int) -> DataLoader:
    """File order, every sample once: PCKh pairs prediction n with ground-truth column n."""
    sampler = BatchSampler(dataset, batch_size=batch_size, shuffle=False, drop_last=False)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, use_shared_memory=workers > 0)

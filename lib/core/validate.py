"""A trained model's flip-tested predictions on a dataset split: val.py and tools/draw_predictions.py."""
from typing import Tuple

import numpy as np

from lib.config import DataConfig, ModelConfig, TestConfig
from lib.core.engine import predict
from lib.datasets.loaders import eval_loader
from lib.datasets.pose_dataset import TopDownPoseDataset
from lib.datasets.records import SplitRecords
from lib.models import build_model_from
from lib.inference.foreign_weights import load_pretrained
from lib.utils.device import select_device


def predict_split(weights: str, model_cfg: ModelConfig, data: DataConfig, test: TestConfig, split: SplitRecords,
                  device: str = 'auto', batch_size: int = 32, workers: int = 2,
                  logger=None) -> Tuple[np.ndarray, np.ndarray]:
    """(preds [N, K, 2] in image pixels, maxvals [N, K, 1]) of the weights on `split`, in its record order;
    progress lines to `logger` when stdout is not a terminal."""
    select_device(device)
    dataset = TopDownPoseDataset(split.records, split.image_dir, split.layout, data, is_train=False)
    model = build_model_from(model_cfg)
    load_pretrained(model, weights)
    loader = eval_loader(dataset, batch_size, workers)
    return predict(model, loader, len(dataset), split.layout.flip_pairs, test, logger=logger)

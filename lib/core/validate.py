"""Where a split's predictions come from: a trained model with the flip test (predict_split: val.py and
tools/draw_predictions.py), or the oracle, the ground truth pushed through the target pipeline (val.py
--oracle). lib/core/evaluators.py scores them."""
from typing import List, Tuple

import numpy as np

from lib.config import DataConfig, ModelConfig, TestConfig
from lib.datasets.heatmaps import generate_target, get_final_preds
from lib.datasets.records import SplitRecords
from lib.datasets.transforms import affine_transform_points, get_affine_transform


def predict_split(weights: str, model_cfg: ModelConfig, data: DataConfig, test: TestConfig, split: SplitRecords,
                  device: str = 'auto', workers: int = 2, logger=None) -> Tuple[np.ndarray, np.ndarray]:
    """(preds [N, K, 2] in image pixels, maxvals [N, K, 1]) of the weights on `split`, in its record order,
    test.batch_size crops per forward pass; progress lines to `logger` when stdout is not a terminal."""
    # Paddle is imported here, not with the module: the oracle (and val.py --oracle) runs without it.
    from lib.convert.loading import load_weights
    from lib.core.engine import predict
    from lib.datasets.loaders import eval_loader
    from lib.datasets.pose_dataset import TopDownPoseDataset
    from lib.models import build_model_from
    from lib.utils.device import select_device
    select_device(device)
    dataset = TopDownPoseDataset(split.records, split.image_dir, split.layout, data, is_train=False)
    model = build_model_from(model_cfg)
    load_weights(model, weights)
    loader = eval_loader(dataset, test.batch_size, workers)
    return predict(model, loader, len(dataset), split.layout.flip_pairs, test, logger=logger)


def oracle_predictions(records: List[dict], input_wh, heatmap_wh, sigma: float, refine: bool = True) -> np.ndarray:
    """Ground truth pushed through the target pipeline: annotation -> crop -> Gaussian target ->
    decode -> original-image pixels. What a perfect network could score at this heatmap resolution.
    Returns [N, K, 2] 0-based pixels."""
    preds = []
    for record in records:
        matrix = get_affine_transform(record['center'], record['scale'], 0, input_wh)
        joints = affine_transform_points(record['joints'], matrix)
        target, _ = generate_target(joints, record['joints_vis'], input_wh, heatmap_wh, sigma)
        decoded, _ = get_final_preds(target[None], record['center'][None], record['scale'][None], refine=refine)
        preds.append(decoded[0])
    return np.stack(preds)


def oracle(records: List[dict], data: DataConfig, refine: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """The ground truth of `records` through crop -> Gaussian target -> decode (no model, no images): preds
    [N, K, 2] image pixels and maxvals [N, K, 1] = joints_vis (unannotated joints decode to the crop corner
    with score 0, as a network's empty heatmap would)."""
    preds = oracle_predictions(records, data.input_wh, data.heatmap_wh, data.sigma, refine=refine)
    vis = np.stack([np.asarray(r['joints_vis'], dtype=np.float64) for r in records])
    return preds, vis[:, :, None]

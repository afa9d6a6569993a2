"""Where a split's predictions come from: a trained model with the flip test (predict_split: val.py and
tools/draw_predictions.py), or the oracle, the ground truth pushed through the target pipeline of the
codec (lib/datasets/codec.py: crop, target, decoder; val.py --oracle). lib/core/evaluators.py scores them."""
from typing import List, Optional, Tuple

import numpy as np

from lib.config import DataConfig, ModelConfig, TestConfig
from lib.datasets.codec import HeatmapCodec, codec_for
from lib.datasets.records import SplitRecords
from lib.datasets.transforms import affine_transform_points

ORACLE_CHUNK = 256   # people decoded at once by the oracle ([256, K, h, w] float32 heatmaps at a time)


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


def oracle_predictions(records: List[dict], codec: HeatmapCodec) -> np.ndarray:
    """Ground truth pushed through the target pipeline of `codec`: annotation -> crop -> target -> decode ->
    original-image pixels. What a perfect network could score with these targets, this decoder and this
    heatmap resolution. Returns [N, K, 2] 0-based pixels."""
    preds = []
    for start in range(0, len(records), ORACLE_CHUNK):
        chunk = records[start:start + ORACLE_CHUNK]
        targets = []
        for record in chunk:
            joints = affine_transform_points(record['joints'], codec.crop_matrix(record['center'], record['scale']))
            targets.append(codec.encode(joints, record['joints_vis'])[0])
        decoded, _ = codec.decode(np.stack(targets), np.stack([r['center'] for r in chunk]),
                                  np.stack([r['scale'] for r in chunk]))
        preds.append(decoded)
    return np.concatenate(preds)


def oracle(records: List[dict], data: DataConfig, test: Optional[TestConfig] = None) -> Tuple[np.ndarray, np.ndarray]:
    """The ground truth of `records` through crop -> target -> decode with the encoding of `data` (HRNet's,
    DARK's unbiased or UDP's) and the decoder of `test` (default TestConfig(): quarter-pixel), no model, no
    images: preds [N, K, 2] image pixels and maxvals [N, K, 1] = joints_vis (unannotated joints decode to the
    crop corner with score 0, as a network's empty heatmap would)."""
    preds = oracle_predictions(records, codec_for(data, test or TestConfig()))
    vis = np.stack([np.asarray(r['joints_vis'], dtype=np.float64) for r in records])
    return preds, vis[:, :, None]

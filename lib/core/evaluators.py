"""One evaluator per dataset, so that train.py and val.py validate without knowing which dataset it is, and
the oracle of both.

An evaluator turns predictions (by dataset index) into metrics, writes its result files, prints its table
and the `[EVAL]` line, and names the metric that selects the best model:

    MPII (lib/core/mpii_eval.py): PCKh (HRNet's MPIIDataset.evaluate, SPEC B), selection metric 'Mean';
          files results.json, pred.mat.
    COCO (lib/core/coco_eval.py): rescoring, OKS-NMS and COCOeval (HRNet's COCODataset.evaluate, SPEC H.3),
          selection metric 'AP'; files results.json, keypoints_<set>_results.json (COCO results format).
"""
import os
from typing import List, Optional, Tuple

import numpy as np

from lib.config import DataConfig, TestConfig
from lib.core.coco_eval import COCOEvaluator
from lib.core.mpii_eval import MPIIEvaluator
from lib.datasets.codec import HeatmapCodec, codec_for
from lib.datasets.transforms import affine_transform_points
from lib.utils.errors import BadValue

ORACLE_CHUNK = 256   # people decoded at once by the oracle ([256, K, h, w] float32 heatmaps at a time)


def build_evaluator(data: DataConfig, image_set: str, records: List[dict], test: TestConfig):
    """The evaluator of data.dataset for `image_set`, whose samples are `records` (dataset order)."""
    if data.dataset == 'mpii':
        evaluator = MPIIEvaluator(data.dataset_root, image_set)
        if records and len(records) != evaluator.gt.num_samples:
            annot = os.path.join(data.dataset_root, 'annot')
            raise BadValue(f'{os.path.join(annot, f"gt_{image_set}.mat")} holds {evaluator.gt.num_samples} people but '
                           f'{os.path.join(annot, f"{image_set}.json")} {len(records)}; PCKh pairs them in file order, '
                           'so both must come from the same annotation package (HRNet\'s MPII annot folder).')
        return evaluator
    if data.dataset == 'coco':
        return COCOEvaluator(data.dataset_root, image_set, records, test)
    raise BadValue(f'unknown dataset {data.dataset!r}; choose one of mpii, coco.')


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

"""One evaluator per dataset, so that train.py and val.py validate without knowing which dataset it is.

An evaluator turns predictions (by dataset index) into metrics, writes its result files, prints its table
and the `[EVAL]` line, and names the metric that selects the best model:

    MPII: PCKh (HRNet's MPIIDataset.evaluate, SPEC B), selection metric 'Mean'; files results.json, pred.mat.
    COCO: rescoring, OKS-NMS and COCOeval (HRNet's COCODataset.evaluate, SPEC H.3), selection metric 'AP';
          files results.json, keypoints_<set>_results.json (COCO results format).
"""
import json
import os
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from lib.config import DataConfig, TestConfig
from lib.core import coco_eval
from lib.core.evaluation import (eval_line, evaluate_predictions, format_table, load_predictions,
                                 oracle_predictions, write_results)
from lib.core.metrics import load_mpii_ground_truth
from lib.datasets.coco import coco_files
from lib.datasets.records import layout_of


class MPIIEvaluator:
    """PCKh against annot/gt_<set>.mat; predictions must be in the annotation file's order."""
    indicator = 'Mean'
    metric_name = 'PCKh'

    def __init__(self, dataset_root: str, image_set: str):
        self.gt = load_mpii_ground_truth(os.path.join(dataset_root, 'annot', f'gt_{image_set}.mat'))
        self.layout = layout_of('mpii')
        self.files = ('results.json', 'pred.mat')

    def evaluate(self, preds: np.ndarray, maxvals: Optional[np.ndarray], output_dir: str,
                 extra: dict) -> Dict[str, float]:
        """preds [N, 16, 2] 0-based pixels (maxvals unused) -> PCKh table; writes results.json and pred.mat."""
        metrics = evaluate_predictions(preds, self.gt)
        write_results(output_dir, metrics, preds, extra)
        return metrics

    def evaluate_file(self, path: str, output_dir: str, extra: dict) -> Dict[str, float]:
        """A saved pred.mat (HRNet's layout) instead of a model's predictions."""
        return self.evaluate(load_predictions(path, self.gt.num_samples), None, output_dir, extra)

    @staticmethod
    def table(metrics: Dict[str, float], name: str) -> str:
        return format_table(metrics, name)

    @staticmethod
    def eval_line(metrics: Dict[str, float]) -> str:
        return eval_line(metrics)


class COCOEvaluator:
    """HRNet's COCO evaluation of top-down predictions on `records` (ground-truth or detected boxes).

    records: the evaluated samples in dataset order, with center, scale, score (box score, 1 for ground truth)
    and image_id. Needs pycocotools (checked here, so that a training run fails before its first epoch).
    """
    indicator = 'AP'

    def __init__(self, dataset_root: str, image_set: str, records: Sequence[dict], test: TestConfig):
        coco_eval._pycocotools()
        self.annotation = coco_files(dataset_root, image_set).annotation
        self.image_set = image_set
        self.records = records
        self.in_vis_thre, self.oks_thre = test.in_vis_thre, test.oks_thre
        self.layout = layout_of('coco')
        self.results_name = f'keypoints_{image_set}_results.json'
        self.files = ('results.json', self.results_name)
        boxes = 'GT boxes' if test.use_gt_bbox else f'detected boxes, image_thre {test.image_thre}'
        self.metric_name = f'COCO keypoint AP, {boxes}'

    def evaluate(self, preds: np.ndarray, maxvals: np.ndarray, output_dir: str,
                 extra: dict) -> 'OrderedDict[str, float]':
        """preds [N, 17, 2] image pixels, maxvals [N, 17] or [N, 17, 1] -> rescoring, OKS-NMS per image, the
        results JSON, COCOeval (SPEC H.3). Writes keypoints_<set>_results.json and results.json."""
        if len(preds) != len(self.records):
            raise ValueError(f'{len(preds)} predictions for {len(self.records)} evaluated boxes; predict every '
                             'sample of the validation set once, in dataset order.')
        kept = coco_eval.select_keypoints(
            preds, maxvals, np.stack([r['center'] for r in self.records]),
            np.stack([r['scale'] for r in self.records]), np.array([r.get('score', 1.0) for r in self.records]),
            [r['image_id'] for r in self.records], self.in_vis_thre, self.oks_thre)
        path = os.path.join(output_dir, self.results_name)
        coco_eval.write_keypoint_results(kept, path)
        return self.evaluate_file(path, output_dir, dict(extra, num_poses=len(kept)))

    def evaluate_file(self, path: str, output_dir: str, extra: dict) -> 'OrderedDict[str, float]':
        """COCOeval of a results JSON ([{image_id, category_id, keypoints, score}], COCO results format)
        against the set's annotation file, as it is (no rescoring or NMS); writes results.json."""
        metrics = coco_eval.evaluate_coco(self.annotation, path)
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, 'results.json'), 'w') as f:
            json.dump(OrderedDict(metrics=metrics, results_file=os.path.abspath(path),
                                  annotation_file=os.path.abspath(self.annotation), **extra), f, indent=2)
        return metrics

    @staticmethod
    def table(metrics: Dict[str, float], name: str) -> str:
        return coco_eval.coco_table(metrics, name)

    @staticmethod
    def eval_line(metrics: Dict[str, float]) -> str:
        return coco_eval.coco_eval_line(metrics)


def build_evaluator(data: DataConfig, image_set: str, records: List[dict], test: TestConfig):
    """The evaluator of data.dataset for `image_set`, whose samples are `records` (dataset order)."""
    if data.dataset == 'mpii':
        return MPIIEvaluator(data.dataset_root, image_set)
    if data.dataset == 'coco':
        return COCOEvaluator(data.dataset_root, image_set, records, test)
    raise ValueError(f'unknown dataset {data.dataset!r}; choose one of mpii, coco.')


def oracle(records: List[dict], data: DataConfig, refine: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """The ground truth of `records` through crop -> Gaussian target -> decode (no model, no images): preds
    [N, K, 2] image pixels and maxvals [N, K, 1] = joints_vis (unannotated joints decode to the crop corner
    with score 0, as a network's empty heatmap would)."""
    preds = oracle_predictions(records, data.input_wh, data.heatmap_wh, data.sigma, refine=refine)
    vis = np.stack([np.asarray(r['joints_vis'], dtype=np.float64) for r in records])
    return preds, vis[:, :, None]

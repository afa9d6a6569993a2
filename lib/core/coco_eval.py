"""COCO keypoint evaluation as HRNet's COCODataset.evaluate (SPEC H.3): rescoring, OKS-NMS, results JSON, COCOeval,
the results table, and the evaluator train.py and val.py use (as mpii_eval.py for MPII).

oks / oks_nms follow HRNet's lib/nms/nms.py (OKS over all joints, no visibility filter); the AP numbers come
from pycocotools, an optional dependency imported only by evaluate_coco.
"""
import contextlib
import io
import json
import os
from collections import OrderedDict, defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np

from lib.config import TestConfig
from lib.datasets.coco import coco_files
from lib.datasets.skeletons import COCO
from lib.core.metrics import require_finite_predictions
from lib.datasets.transforms import PIXEL_STD
from lib.utils.files import read_json
from lib.utils.logger import format_table
from lib.utils.errors import BadValue, MissingFile, MissingPackage

# Per-keypoint standard deviations of the COCO OKS (cocoeval.py, HRNet nms.py), in COCO joint order.
COCO_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07,
                        .87, .87, .89, .89]) / 10.0
# COCOeval.stats[0:10]; HRNet names the second one 'Ap .5' (a typo), we write 'AP .5'.
STATS_NAMES = ('AP', 'AP .5', 'AP .75', 'AP (M)', 'AP (L)', 'AR', 'AR .5', 'AR .75', 'AR (M)', 'AR (L)')


def oks(g: np.ndarray, d: np.ndarray, area_g: float, area_d: np.ndarray,
        sigmas: np.ndarray = COCO_SIGMAS) -> np.ndarray:
    """Object keypoint similarity of one pose g [K, 3] (or [3K]) with poses d [M, K, 3] (or [M, 3K]) -> [M].

    HRNet's oks_iou: e_k = (dx^2 + dy^2) / (2 sigma_k)^2 / ((area_g + area_d) / 2 + eps) / 2 and
    OKS = mean_k exp(-e_k) over all K joints; the third column (scores) is not used.
    """
    variances = (np.asarray(sigmas) * 2) ** 2
    g = np.asarray(g, dtype=np.float64).reshape(-1, 3)                     # [K, 3]
    if g.shape[0] != len(variances):
        raise BadValue(f'oks: poses have {g.shape[0]} joints but sigmas has {len(variances)}; pass the sigmas '
                       'of your keypoint layout.')
    d = np.asarray(d, dtype=np.float64).reshape(-1, g.shape[0], 3)         # [M, K, 3]
    dx = d[:, :, 0] - g[None, :, 0]
    dy = d[:, :, 1] - g[None, :, 1]
    area_d = np.asarray(area_d, dtype=np.float64)
    e = (dx ** 2 + dy ** 2) / variances / ((area_g + area_d[:, None]) / 2 + np.spacing(1)) / 2
    return np.exp(-e).mean(axis=1)


def oks_nms(kpts_db: Sequence[dict], thresh: float, sigmas: np.ndarray = COCO_SIGMAS) -> List[int]:
    """Greedy OKS non-maximum suppression (HRNet's oks_nms): indices to keep, best score first.

    kpts_db: dicts with keypoints [K, 3], score and area. Repeatedly keep the best remaining pose and drop
    those whose OKS with it is > thresh.
    """
    if len(kpts_db) == 0:
        return []
    scores = np.array([p['score'] for p in kpts_db])
    kpts = np.array([np.asarray(p['keypoints']).flatten() for p in kpts_db])
    areas = np.array([p['area'] for p in kpts_db])
    order = scores.argsort()[::-1]   # the same (unstable) sort as HRNet, so ties resolve identically
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        overlap = oks(kpts[i], kpts[order[1:]], areas[i], areas[order[1:]], sigmas)
        order = order[np.where(overlap <= thresh)[0] + 1]
    return keep


def rescore(maxvals: np.ndarray, box_scores: np.ndarray, in_vis_thre: float = TestConfig.in_vis_thre) -> np.ndarray:
    """HRNet's rescoring: box score x mean of the joint maxvals [N, K] that are > in_vis_thre (0 if none) -> [N]."""
    maxvals = np.asarray(maxvals, dtype=np.float64).reshape(len(box_scores), -1)
    confident = maxvals > in_vis_thre
    count = confident.sum(axis=1)
    kpt_score = np.where(count > 0, (maxvals * confident).sum(axis=1) / np.maximum(count, 1), 0.0)
    return kpt_score * np.asarray(box_scores, dtype=np.float64)


def select_keypoints(preds: np.ndarray, maxvals: np.ndarray, centers: np.ndarray, scales: np.ndarray,
                     box_scores: np.ndarray, image_ids: Sequence[int], in_vis_thre: float = TestConfig.in_vis_thre,
                     oks_thre: float = TestConfig.oks_thre, sigmas: np.ndarray = COCO_SIGMAS) -> List[dict]:
    """HRNet's evaluate steps before writing (SPEC H.3 1-3): per image, rescore, then OKS-NMS.

    preds [N, K, 2] image pixels, maxvals [N, K] or [N, K, 1], centers/scales [N, 2], box_scores [N] (1 for
    ground-truth boxes), image_ids [N]. Area = (200 s_0)(200 s_1), the padded box. Returns the kept poses
    as dicts {image_id, keypoints [K, 3], center, scale, area, score}, images in order of first appearance.
    """
    maxvals = np.asarray(maxvals).reshape(len(preds), -1)
    scales = np.asarray(scales, dtype=np.float64)
    areas = np.prod(scales * PIXEL_STD, axis=1)
    scores = rescore(maxvals, box_scores, in_vis_thre)
    per_image = defaultdict(list)
    for n in range(len(preds)):
        per_image[int(image_ids[n])].append({
            'image_id': int(image_ids[n]),
            'keypoints': np.concatenate([preds[n], maxvals[n][:, None]], axis=1),
            'center': np.asarray(centers[n]), 'scale': scales[n], 'area': areas[n], 'score': scores[n]})
    kept = []
    for poses in per_image.values():
        keep = oks_nms(poses, oks_thre, sigmas)
        kept.extend([poses[i] for i in keep] if keep else poses)   # HRNet keeps all if NMS keeps none
    return kept


def write_keypoint_results(poses: Sequence[dict], path: str, category_id: int = 1) -> List[dict]:
    """Write the COCO results JSON (HRNet's _write_coco_keypoint_results) and return its list:
    {image_id, category_id, keypoints (K*3 floats: x, y, score), score, center, scale} per pose."""
    results = [{'image_id': int(p['image_id']), 'category_id': category_id,
                'keypoints': [float(v) for v in np.asarray(p['keypoints'], dtype=np.float64).reshape(-1)],
                'score': float(p['score']),
                'center': [float(v) for v in np.asarray(p.get('center', (0, 0))).reshape(-1)],
                'scale': [float(v) for v in np.asarray(p.get('scale', (0, 0))).reshape(-1)]}
               for p in poses]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(results, f)
    return results


def _pycocotools():
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise MissingPackage('COCO evaluation needs pycocotools, which is not installed: pip install pycocotools') \
            from None
    return COCO, COCOeval


def check_results(results: list, path: str) -> None:
    """Each result must be {image_id: int, category_id, keypoints: 3K finite numbers, score: finite number}."""
    for index, result in enumerate(results):
        problem = None
        if not isinstance(result, dict) or not all(k in result for k in ('image_id', 'keypoints', 'score')):
            problem = 'it lacks image_id, keypoints or score'
        elif not isinstance(result['image_id'], int) or isinstance(result['image_id'], bool):
            problem = f'image_id {result["image_id"]!r} is not an integer'
        else:
            try:
                values = np.asarray(result['keypoints'], dtype=np.float64)
                score = float(result['score'])
            except (TypeError, ValueError):
                values, score = None, None
            if values is None or values.ndim != 1 or values.size % 3 or not np.isfinite(score) \
                    or not np.all(np.isfinite(values)):
                problem = 'keypoints must be a flat list of finite numbers [x, y, v] x K and score a finite number'
        if problem:
            raise BadValue(f'{path}: result {index} is malformed: {problem}. Received {str(result)[:200]}. Expected '
                           'COCO keypoint results [{image_id, category_id, keypoints, score}], as val.py writes them.')


def evaluate_coco(gt_json: str, results_json: str, image_ids: Optional[Sequence[int]] = None,
                  verbose: bool = False) -> 'OrderedDict[str, float]':
    """COCOeval(iouType 'keypoints', useSegm None) of a results file against a person_keypoints file.

    image_ids: the images of the evaluated set (params.imgIds); default all images of gt_json, as HRNet.
    Returns OrderedDict of STATS_NAMES -> stats[0..9]. verbose prints pycocotools' summary.
    """
    COCO, COCOeval = _pycocotools()
    for path, what in ((gt_json, 'annotation file'), (results_json, 'results file')):
        if not os.path.isfile(path):
            raise MissingFile(f'COCO {what} not found: {path}')
    results = read_json(results_json, 'COCO keypoint results (a JSON list)')
    if not isinstance(results, list) or not results:
        raise BadValue(f'{results_json} holds no predictions (an empty list); COCOeval needs at least one. '
                       'Check that the validation set was not empty.')
    check_results(results, results_json)
    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with quiet:   # pycocotools prints progress and the summary
        coco_gt = COCO(gt_json)
        missing = sorted({r['image_id'] for r in results} - set(coco_gt.getImgIds()))
        if missing:
            raise BadValue(f'{results_json}: predictions for {len(missing)} image ids that are not in {gt_json} '
                           f'(first: {missing[:5]}); evaluate against the annotation file of the same set.')
        coco_dt = coco_gt.loadRes(results_json)
        coco_eval = COCOeval(coco_gt, coco_dt, 'keypoints')
        coco_eval.params.useSegm = None
        coco_eval.params.imgIds = sorted(coco_gt.getImgIds() if image_ids is None else {int(i) for i in image_ids})
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return OrderedDict((name, float(coco_eval.stats[i])) for i, name in enumerate(STATS_NAMES))


def _short(name: str) -> str:
    return name.replace(' ', '')


def coco_eval_line(metrics: Dict[str, float]) -> str:
    """The one-line summary users parse: `[EVAL] AP=.. AP.5=.. AP.75=.. AP(M)=.. ... AR(L)=..`."""
    return '[EVAL] ' + ' '.join(f'{_short(name)}={metrics[name]:.6f}' for name in STATS_NAMES)


def coco_table(metrics: Dict[str, float], name: str) -> str:
    """Markdown table as HRNet's _print_name_value: one row, values in [0, 1] with 3 decimals."""
    return format_table(metrics, name, STATS_NAMES)


# ------------------------------------------------------------------------------------------ evaluator

class COCOEvaluator:
    """HRNet's COCO evaluation of top-down predictions on `records` (ground-truth or detected boxes).

    records: the evaluated samples in dataset order, with center, scale, score (box score, 1 for ground truth)
    and image_id. Needs pycocotools (checked here, so that a training run fails before its first epoch).
    """
    indicator = 'AP'

    def __init__(self, dataset_root: str, image_set: str, records: Sequence[dict], test: TestConfig):
        _pycocotools()
        self.annotation = coco_files(dataset_root, image_set, need_images=False).annotation
        self.image_set = image_set
        self.records = records
        self.in_vis_thre, self.oks_thre = test.in_vis_thre, test.oks_thre
        self.layout = COCO
        self.results_name = f'keypoints_{image_set}_results.json'
        self.files = ('results.json', self.results_name)
        boxes = 'GT boxes' if test.use_gt_bbox else f'detected boxes, image_thre {test.image_thre}'
        self.metric_name = f'COCO keypoint AP, {boxes}'

    def evaluate(self, preds: np.ndarray, maxvals: np.ndarray, output_dir: str,
                 extra: dict) -> 'OrderedDict[str, float]':
        """preds [N, 17, 2] image pixels, maxvals [N, 17] or [N, 17, 1] -> rescoring, OKS-NMS per image, the
        results JSON, COCOeval (SPEC H.3). Writes keypoints_<set>_results.json and results.json."""
        if len(preds) != len(self.records):
            raise BadValue(f'{len(preds)} predictions for {len(self.records)} evaluated boxes; predict every '
                           'sample of the validation set once, in dataset order.')
        require_finite_predictions(preds, maxvals)
        kept = select_keypoints(
            preds, maxvals, np.stack([r['center'] for r in self.records]),
            np.stack([r['scale'] for r in self.records]), np.array([r.get('score', 1.0) for r in self.records]),
            [r['image_id'] for r in self.records], self.in_vis_thre, self.oks_thre)
        path = os.path.join(output_dir, self.results_name)
        write_keypoint_results(kept, path)
        return self.evaluate_file(path, output_dir, dict(extra, num_poses=len(kept)))

    def evaluate_file(self, path: str, output_dir: str, extra: dict) -> 'OrderedDict[str, float]':
        """COCOeval of a results JSON ([{image_id, category_id, keypoints, score}], COCO results format)
        against the set's annotation file, as it is (no rescoring or NMS); writes results.json."""
        metrics = evaluate_coco(self.annotation, path)
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, 'results.json'), 'w') as f:
            json.dump(OrderedDict(metrics=metrics, results_file=os.path.abspath(path),
                                  annotation_file=os.path.abspath(self.annotation), **extra), f, indent=2)
        return metrics

    table = staticmethod(coco_table)
    eval_line = staticmethod(coco_eval_line)


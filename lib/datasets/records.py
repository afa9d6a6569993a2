"""Records of a dataset split, whatever the dataset: what TopDownPoseDataset crops and the evaluators score.

No Paddle here, so that val.py --oracle and --preds_file start fast.
"""
import os
from typing import List, NamedTuple, Optional

from lib.config import DataConfig, TestConfig
from lib.datasets.coco import coco_files, load_coco_annotations, load_detection_boxes
from lib.datasets.mpii import load_mpii_annotations
from lib.datasets.skeletons import KeypointLayout, layout_of  # noqa: F401 (layout_of: re-exported)
from lib.utils.errors import BadValue


class SplitRecords(NamedTuple):
    records: List[dict]     # image (relative to image_dir), center [2], scale [2], joints [K, 2], joints_vis [K], ...
    image_dir: str
    layout: KeypointLayout


def load_split(config: DataConfig, image_set: str, test: Optional[TestConfig] = None,
               need_images: bool = True) -> SplitRecords:
    """Records of `image_set`: MPII's annotation file; COCO's ground-truth boxes, or the person detections of
    test.det_file when test.use_gt_bbox is False (evaluation only, SPEC H.2). COCO boxes get the aspect ratio
    of config.input_wh. need_images=False: the records only (the oracle), no image folder needed."""
    layout = layout_of(config.dataset)
    if config.dataset == 'mpii':
        records = load_mpii_annotations(config.dataset_root, image_set, need_images)
        return SplitRecords(records, os.path.join(config.dataset_root, 'images'), layout)
    files = coco_files(config.dataset_root, image_set, need_images)
    if test is not None and not test.use_gt_bbox:
        if not test.det_file:
            raise BadValue('COCO evaluation without ground-truth boxes needs a detection file: pass --det_file '
                           '(e.g. COCO_val2017_detections_AP_H_56_person.json) or use the ground-truth boxes.')
        records = load_detection_boxes(test.det_file, files.annotation, image_set, config.input_wh,
                                       test.image_thre, layout)
    else:
        records = load_coco_annotations(config.dataset_root, image_set, config.input_wh)
        if not records:
            raise BadValue(f'{files.annotation} has no person with keypoints (after skipping crowd annotations '
                           'and empty boxes); check the file.')
    return SplitRecords(records, files.image_dir, layout)

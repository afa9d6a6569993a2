"""One evaluator per dataset, so that train.py and val.py score predictions without knowing which dataset it
is (where the predictions come from, a model or the oracle: lib/core/validate.py).

An evaluator turns predictions (by dataset index) into metrics, writes its result files, prints its table
and the `[EVAL]` line, and names the metric that selects the best model:

    MPII (lib/core/mpii_eval.py): PCKh (HRNet's MPIIDataset.evaluate, SPEC B), selection metric 'Mean';
          files results.json, pred.mat.
    COCO (lib/core/coco_eval.py): rescoring, OKS-NMS and COCOeval (HRNet's COCODataset.evaluate, SPEC H.3),
          selection metric 'AP'; files results.json, keypoints_<set>_results.json (COCO results format).
"""
import os
from typing import List

from lib.config import DataConfig, TestConfig
from lib.core.coco_eval import COCOEvaluator
from lib.core.mpii_eval import MPIIEvaluator
from lib.utils.errors import BadValue


def build_evaluator(data: DataConfig, image_set: str, records: List[dict], test: TestConfig):
    """The evaluator of data.dataset for `image_set`, whose samples are `records` (dataset order)."""
    if data.dataset == 'mpii':
        evaluator = MPIIEvaluator(data.dataset_root, image_set)
        if records and len(records) != evaluator.gt.num_samples:
            annot = os.path.join(data.dataset_root, 'annot')
            raise BadValue(f'{os.path.join(annot, f"gt_{image_set}.mat")} holds {evaluator.gt.num_samples} people but '
                           f'{os.path.join(annot, f"{image_set}.json")} {len(records)}; PCKh pairs them in file order, '
                           'so both must come from the same annotation package (HRNet\'s MPII annot folder); for a subset of '
                           'valid.json, write its own gt_<set>.mat: the columns of gt_valid.mat at the subset\'s indices.')
        return evaluator
    if data.dataset == 'coco':
        return COCOEvaluator(data.dataset_root, image_set, records, test)
    raise BadValue(f'unknown dataset {data.dataset!r}; choose one of mpii, coco.')

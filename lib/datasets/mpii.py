"""MPII Human Pose in the HRNet JSON layout: annotation parsing (SPEC A).

    <root>/annot/{train,valid,trainval,test}.json   one entry per person (any other <name>.json too, as
                                                    HRNet's DATASET.TRAIN_SET / TEST_SET allow)
    <root>/annot/gt_valid.mat                       ground truth for PCKh (SPEC B.1); gt_<name>.mat for set <name>
    <root>/images/<name>.jpg
"""
import os
import re
from typing import Dict, List

import numpy as np

from lib.datasets.skeletons import MPII
from lib.datasets.transforms import BOX_PADDING
from lib.utils.files import read_json
from lib.utils.errors import BadValue, MissingFile

SCALE_PADDING = BOX_PADDING   # HRNet's MPII boxes get the same 25% as its COCO boxes (_xywh2cs)

IMAGE_SETS = ('train', 'valid', 'trainval', 'test')     # the sets of HRNet's package; any other name works too
SET_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*')     # a file name under annot/, never a path

LAYOUT_HELP = """Expected the MPII dataset in the HRNet layout:
    {root}/annot/train.json, valid.json (and trainval.json, test.json)
    {root}/annot/gt_valid.mat
    {root}/images/*.jpg
Get the images from http://human-pose.mpi-inf.mpg.de/ (mpii_human_pose_v1.tar.gz) and the annotations
in this JSON format from the HRNet repository (leoxiaobin/deep-high-resolution-net.pytorch, "Data
preparation"), or make a small synthetic set with the same layout:
    python tools/make_synthetic_mpii.py --output data/synthetic"""


VISIBILITY_FLAGS = (0, 1)
MAX_SCALE = 100.0    # a 20000 px tall person: anything larger is a broken annotation


def check_dataset_root(root: str, image_set: str, need_images: bool = True) -> str:
    """Return the annotation path of `image_set` (annot/<image_set>.json, any name), or raise with the expected
    layout (images/ only when `need_images`) and the sets that annot/ does hold."""
    if not isinstance(image_set, str) or not SET_NAME.fullmatch(image_set):
        raise BadValue(f'MPII image set {image_set!r} is not a set name; expected the name of a file '
                       f'annot/<name>.json without folder or extension, e.g. {", ".join(IMAGE_SETS)} or valid_photos.')
    annot_dir = os.path.join(root, 'annot')
    annot = os.path.join(annot_dir, f'{image_set}.json')
    for path in (root, annot_dir) + ((os.path.join(root, 'images'),) if need_images else ()):
        if not os.path.exists(path):
            raise MissingFile(f'{path} does not exist (--dataset_root {root!r}).\n'
                              + LAYOUT_HELP.format(root=root))
    if not os.path.exists(annot):
        present = sorted(name[:-5] for name in os.listdir(annot_dir) if name.endswith('.json'))
        raise MissingFile(f'{annot} does not exist: no MPII image set {image_set!r} under --dataset_root {root!r}. '
                          f'Sets found there: {", ".join(present) or "none"}.\n' + LAYOUT_HELP.format(root=root))
    return annot


def _fail(annot: str, index: int, entry, problem: str) -> None:
    raise BadValue(f'{annot}: entry {index} is malformed: {problem}. Received {str(entry)[:300]}. '
                   'Each entry must be {"image": "<name>.jpg", "center": [x, y], "scale": s, '
                   '"joints": [[x, y] x 16], "joints_vis": [16 x 0/1]} (HRNet MPII format); '
                   'fix or remove that entry.')


def parse_entry(entry: dict, index: int, annot: str, with_joints: bool) -> Dict[str, np.ndarray]:
    """One JSON entry -> record in 0-based pixels, adjusted exactly as HRNet's MPIIDataset._get_db."""
    if not isinstance(entry, dict):
        _fail(annot, index, entry, 'not a JSON object')
    for key in ('image', 'center', 'scale') + (('joints', 'joints_vis') if with_joints else ()):
        if key not in entry:
            _fail(annot, index, entry, f'missing field {key!r}')
    try:
        center = np.array(entry['center'], dtype=np.float64)
        scale = float(entry['scale'])
    except (TypeError, ValueError):
        _fail(annot, index, entry, 'center must be two numbers and scale one number')
    if center.shape != (2,) or not np.all(np.isfinite(center)) or not np.isfinite(scale) or scale <= 0:
        _fail(annot, index, entry, 'center must be two finite numbers and scale a positive number')
    if scale > MAX_SCALE:
        _fail(annot, index, entry, f'scale {scale:g} means a person {scale * 200:g} px tall; MPII scales are box '
                                   f'heights / 200 px, at most {MAX_SCALE} here (the real annotations stay below 13)')
    if not isinstance(entry['image'], str) or not entry['image']:
        _fail(annot, index, entry, f'image must be a file name under images/, received {entry["image"]!r}')
    scale = np.array([scale, scale], dtype=np.float64)
    # Newell's Torch loader: move the centre down by 15*scale px and enlarge the box by 1.25
    # to include the whole body; then MATLAB 1-based -> 0-based (HRNet mpii.py, SPEC A.4).
    if center[0] != -1:
        center[1] = center[1] + 15 * scale[1]
        scale = scale * SCALE_PADDING
    center = center - 1

    num_joints = MPII.num_joints
    joints = np.zeros((num_joints, 2), dtype=np.float64)
    joints_vis = np.zeros(num_joints, dtype=np.float64)
    if with_joints:
        try:
            joints = np.array(entry['joints'], dtype=np.float64)
            joints_vis = np.array(entry['joints_vis'], dtype=np.float64)
        except (TypeError, ValueError):
            _fail(annot, index, entry, 'joints must be 16 [x, y] pairs and joints_vis 16 numbers')
        if joints.shape != (num_joints, 2) or joints_vis.shape != (num_joints,):
            _fail(annot, index, entry, f'joints has shape {joints.shape} and joints_vis {joints_vis.shape}, '
                                       f'expected ({num_joints}, 2) and ({num_joints},)')
        if not np.all(np.isfinite(joints)):
            _fail(annot, index, entry, 'joints contain NaN or infinity')
        if not np.all(np.isin(joints_vis, VISIBILITY_FLAGS)):
            _fail(annot, index, entry, f'joints_vis holds {sorted(set(joints_vis.tolist()) - set(VISIBILITY_FLAGS))}; '
                                       'MPII flags are 0 (not annotated) or 1 (annotated). A larger value would '
                                       'multiply that joint\'s loss weight')
        joints = joints - 1
    return {'image': str(entry['image']), 'center': center, 'scale': scale,
            'joints': joints, 'joints_vis': joints_vis}


def load_mpii_annotations(root: str, image_set: str, need_images: bool = True) -> List[Dict[str, np.ndarray]]:
    """Read <root>/annot/<image_set>.json into records (file order kept: PCKh relies on it).

    Each record: image (file name), center [2] and scale [2] (box side / 200 px) after HRNet's
    adjustment, joints [16, 2] 0-based pixels, joints_vis [16] (1 = annotated).
    """
    annot = check_dataset_root(root, image_set, need_images)
    entries = read_json(annot, 'a JSON list of person entries (HRNet layout)', 're-download or regenerate it')
    if not isinstance(entries, list) or not entries:
        raise BadValue(f'{annot} must hold a non-empty JSON list of person entries; '
                       f'received {type(entries).__name__} of length {len(entries) if hasattr(entries, "__len__") else "?"}.')
    with_joints = image_set != 'test'
    return [parse_entry(entry, i, annot, with_joints) for i, entry in enumerate(entries)]

"""Keypoint layouts: joint names, flip pairs, loss weights and the skeleton drawn between joints.

A dataset is its layout plus a parser; adding a keypoint dataset starts with one entry in LAYOUTS here.
"""
from dataclasses import dataclass
from typing import Tuple

import numpy as np
from lib.utils.errors import BadValue


@dataclass(frozen=True)
class KeypointLayout:
    name: str
    joint_names: Tuple[str, ...]          # long names, index = channel of the heatmap
    short_names: Tuple[str, ...]          # names used in annotation files (MPII's gt_valid.mat)
    flip_pairs: Tuple[Tuple[int, int], ...]
    skeleton: Tuple[Tuple[int, int], ...]  # limbs to draw, (joint, joint)
    # Per-joint loss weights of HRNet's LOSS.USE_DIFFERENT_JOINTS_WEIGHT (SPEC C.5); () = all 1, as HRNet's MPII.
    joints_weight: Tuple[float, ...] = ()

    @property
    def joints_weight_array(self) -> np.ndarray:
        """joints_weight as [K, 1] float32, shaped like target_weight (ones when the layout has none)."""
        weights = self.joints_weight or (1.0,) * self.num_joints
        array = np.array(weights, dtype=np.float32).reshape(-1, 1)
        array.flags.writeable = False
        return array

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def flip_index(self) -> Tuple[int, ...]:
        """Permutation that maps each joint to its mirror partner (itself if it has none)."""
        index = list(range(self.num_joints))
        for a, b in self.flip_pairs:
            index[a], index[b] = b, a
        return tuple(index)

    def is_left(self, joint: int) -> bool:
        return self.joint_names[joint].startswith('left')

    def is_right(self, joint: int) -> bool:
        return self.joint_names[joint].startswith('right')


# SPEC A.3 (HRNet lib/dataset/mpii.py, princeton-vl data/MPII/ref.py).
MPII = KeypointLayout(
    name='mpii',
    joint_names=('right_ankle', 'right_knee', 'right_hip', 'left_hip', 'left_knee', 'left_ankle',
                 'pelvis', 'thorax', 'upper_neck', 'head_top',
                 'right_wrist', 'right_elbow', 'right_shoulder', 'left_shoulder', 'left_elbow', 'left_wrist'),
    short_names=('rank', 'rkne', 'rhip', 'lhip', 'lkne', 'lank', 'pelv', 'thor', 'neck', 'head',
                 'rwri', 'relb', 'rsho', 'lsho', 'lelb', 'lwri'),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    skeleton=((0, 1), (1, 2), (2, 6), (3, 6), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
              (10, 11), (11, 12), (12, 7), (13, 7), (13, 14), (14, 15)),
)

# COCO person keypoints (person_keypoints_*.json "keypoints" and "skeleton", the latter converted to 0-based).
_COCO_NAMES = ('nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
               'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip',
               'left_knee', 'right_knee', 'left_ankle', 'right_ankle')
COCO = KeypointLayout(
    name='coco',
    joint_names=_COCO_NAMES,
    short_names=_COCO_NAMES,
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    skeleton=((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
              (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6)),
    # HRNet COCODataset.joints_weight: elbows and knees 1.2, wrists and ankles 1.5.
    joints_weight=(1., 1., 1., 1., 1., 1., 1., 1.2, 1.2, 1.5, 1.5, 1., 1., 1.2, 1.2, 1.5, 1.5),
)

LAYOUTS = {'mpii': MPII, 'coco': COCO}   # by dataset name: the one registry of keypoint layouts


def layout_of(dataset: str) -> KeypointLayout:
    """The layout of a dataset: 'mpii' -> MPII, 'coco' -> COCO."""
    if dataset not in LAYOUTS:
        raise BadValue(f'unknown dataset {dataset!r}; choose one of {sorted(LAYOUTS)}.')
    return LAYOUTS[dataset]


def layout_for(num_joints: int) -> KeypointLayout:
    """The layout of a model with `num_joints` heatmap channels: 16 -> MPII, 17 -> COCO."""
    by_joints = {layout.num_joints: layout for layout in LAYOUTS.values()}
    if num_joints not in by_joints:
        known = ', '.join(f'{k} ({layout.name})' for k, layout in sorted(by_joints.items()))
        raise BadValue(f'no keypoint layout has {num_joints} joints; known: {known}. Add a KeypointLayout '
                       'to lib/datasets/skeletons.py and register it in LAYOUTS.')
    return by_joints[num_joints]

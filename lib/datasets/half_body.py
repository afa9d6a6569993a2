"""Half-body augmentation of HRNet (Sun et al., CVPR 2019): crop the upper or the lower body (SPEC C.4).

HRNet's JointsDataset.half_body_transform, with the joint split derived from the KeypointLayout so that the
same code serves COCO (upper 0-10, lower = hips, knees, ankles) and MPII (upper 7-15, lower 0-6), which are
exactly HRNet's upper_body_ids of both datasets.
"""
from typing import Optional, Tuple

import numpy as np

from lib.datasets.skeletons import KeypointLayout
from lib.datasets.transforms import box_scale
from lib.utils.errors import BadValue

LOWER_BODY_WORDS = ('hip', 'knee', 'ankle', 'pelvis')
HALF_BODY_SCALE = 1.5   # HRNet enlarges the tight half-body box by 1.5


def upper_body_ids(layout: KeypointLayout) -> Tuple[int, ...]:
    """Joints above the hips: every joint whose name has none of LOWER_BODY_WORDS."""
    upper = tuple(j for j, name in enumerate(layout.joint_names)
                  if not any(word in name for word in LOWER_BODY_WORDS))
    if not upper or len(upper) == layout.num_joints:
        raise BadValue(f'layout {layout.name!r} has {len(upper)} upper-body joints out of {layout.num_joints}; '
                       f'the half-body split needs lower-body joints named with one of {LOWER_BODY_WORDS} '
                       'and at least one other joint. Rename the joints or keep prob_half_body <= 0.')
    return upper


def half_body_transform(joints: np.ndarray, joints_vis: np.ndarray, layout: KeypointLayout,
                        aspect_ratio: float, rng) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """A box around the visible upper or lower body: (center [2], scale [2]) float32, or None.

    joints [K, 2] pixels, joints_vis [K] (> 0 = annotated); aspect_ratio = input width / height; rng supplies
    one standard_normal() draw. As HRNet: take the upper body if N(0,1) < 0.5 (a *normal* draw, so about 69%)
    and more than 2 upper joints are visible, else the lower body if more than 2 are visible, else the upper
    body; None (keep the original box) if fewer than 2 joints are selected. The box is the joints' extent
    padded to the aspect ratio, times 1.5; its centre is the joints' mean.
    """
    upper = set(upper_body_ids(layout))
    visible = np.asarray(joints_vis).reshape(-1) > 0
    upper_joints = [joints[j] for j in range(layout.num_joints) if visible[j] and j in upper]
    lower_joints = [joints[j] for j in range(layout.num_joints) if visible[j] and j not in upper]

    if rng.standard_normal() < 0.5 and len(upper_joints) > 2:
        selected = upper_joints
    else:
        selected = lower_joints if len(lower_joints) > 2 else upper_joints
    if len(selected) < 2:
        return None

    selected = np.array(selected, dtype=np.float32)[:, :2]
    center = selected.mean(axis=0)
    w, h = selected.max(axis=0) - selected.min(axis=0)
    return center, box_scale(w, h, aspect_ratio, HALF_BODY_SCALE)


def random_half_body(joints: np.ndarray, joints_vis: np.ndarray, layout: KeypointLayout, aspect_ratio: float,
                     rng, prob: float, min_joints: int) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """HRNet's gate around half_body_transform (SPEC C.2 step 1): try it when sum(joints_vis) > min_joints
    (NUM_JOINTS_HALF_BODY, 8) and U(0,1) < prob (PROB_HALF_BODY). Returns (center, scale) or None.

    With prob <= 0 nothing is drawn from rng, so turning the option off leaves every other random draw
    (scale, rotation, flip) exactly as before.
    """
    if prob <= 0 or rng is None:
        return None
    if np.sum(joints_vis) > min_joints and rng.random() < prob:
        return half_body_transform(joints, joints_vis, layout, aspect_ratio, rng)
    return None

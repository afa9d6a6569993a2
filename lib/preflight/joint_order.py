"""Is the annotation's joint order the layout's? Read from the annotations themselves, before any training: in
photos of people the head is above the neck, the shoulders above the hips, the hips above the knees, for nearly
everyone; and in MPII and COCO most people face the camera, so their right shoulder and hip lie left of the left
ones in the image. Another dataset's order read as this one, or a left/right swap, breaks these shares; no training
check sees a consistent relabelling (the flip pairs map a whole left/right swap onto itself).

Measured shares (python -c, the pairs below, people with both joints annotated), on the real annotations:

    MPII valid.json (2958 people)          upright pairs 0.87-0.98          right left of left 0.73, 0.73
    MPII valid_photos.json (269)           upright pairs 0.87-0.99          right left of left 0.66, 0.70
    ... with left and right swapped        upright 0.87-0.98                0.27-0.34
    ... the joint order reversed           4 of 9 upright pairs 0.01-0.13
    ... right arm and right leg exchanged  shoulder above hip 0.02-0.03
    ... 3 random permutations              2 to 4 of 9 upright pairs 0.00-0.09
    COCO val2017 / train2017 samples       upright pairs 0.88-1.00          right left of left 0.65-0.83
    (coco_mini, 68 and 86 people)
    synthetic MPII (tools/make_synthetic_mpii.py, 200 people): upright 0.98 or more, right left of left 0.82

hence the bars: each upright pair holds for at least UPRIGHT_BAR of the people, and the right joints lie left of the
left ones for at least FACING_BAR (more people face the camera than turn away).
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

from lib.datasets.skeletons import KeypointLayout
from lib.preflight.findings import FAIL, NOT_RUN, PASS, Finding

UPRIGHT_BAR = 0.75
FACING_BAR = 0.5
MIN_PEOPLE = 8          # fewer people with both joints annotated: the share says nothing

# (upper joint, lower joint) by joint name; the image's y grows downwards.
UPRIGHT = {
    'mpii': (('head_top', 'upper_neck'), ('upper_neck', 'thorax'), ('thorax', 'pelvis'),
             ('right_shoulder', 'right_hip'), ('left_shoulder', 'left_hip'), ('right_hip', 'right_knee'),
             ('left_hip', 'left_knee'), ('right_knee', 'right_ankle'), ('left_knee', 'left_ankle')),
    'coco': (('nose', 'left_shoulder'), ('nose', 'right_shoulder'), ('left_shoulder', 'left_hip'),
             ('right_shoulder', 'right_hip'), ('left_hip', 'left_knee'), ('right_hip', 'right_knee'),
             ('left_knee', 'left_ankle'), ('right_knee', 'right_ankle')),
}
# (right joint, left joint): the right one has the smaller x for a person facing the camera.
FACING = {
    'mpii': (('right_shoulder', 'left_shoulder'), ('right_hip', 'left_hip')),
    'coco': (('right_shoulder', 'left_shoulder'), ('right_hip', 'left_hip')),
}


def shares(records: Sequence[dict], layout: KeypointLayout, pairs: Sequence[Tuple[str, str]],
           axis: int) -> Dict[Tuple[str, str], Tuple[float, int]]:
    """(share of people whose first joint has the smaller coordinate on `axis`, number of people) per pair, over the
    people with both joints annotated."""
    joints = np.stack([np.asarray(r['joints'], dtype=np.float64)[:, :2] for r in records])     # [N, K, 2]
    visible = np.stack([np.asarray(r['joints_vis'], dtype=np.float64).reshape(-1) for r in records]) > 0
    index = {name: i for i, name in enumerate(layout.joint_names)}
    result = {}
    for first, second in pairs:
        a, b = index[first], index[second]
        both = visible[:, a] & visible[:, b]
        count = int(both.sum())
        result[(first, second)] = (float(np.mean(joints[both, a, axis] < joints[both, b, axis])) if count else
                                   float('nan'), count)
    return result


def check_joint_order(records: Sequence[dict], layout: KeypointLayout, source: str) -> Finding:
    """One Finding: the upright and facing shares of `records` against their bars."""
    label = 'annotations: joint order is the layout\'s'
    if layout.name not in UPRIGHT:
        return Finding(label, NOT_RUN, '-', fix=f'no upright pairs known for the {layout.name} layout')
    upright = {k: v for k, v in shares(records, layout, UPRIGHT[layout.name], axis=1).items() if v[1] >= MIN_PEOPLE}
    facing = {k: v for k, v in shares(records, layout, FACING[layout.name], axis=0).items() if v[1] >= MIN_PEOPLE}
    if not upright:
        return Finding(label, NOT_RUN, '-', fix=f'fewer than {MIN_PEOPLE} people of {source} have both joints of '
                                                 'any upright pair annotated')
    wrong: List[str] = [f'{a} above {b} for {share:.0%} of {n} people' for (a, b), (share, n) in upright.items()
                        if share < UPRIGHT_BAR]
    wrong += [f'{a} left of {b} in the image for {share:.0%} of {n} people' for (a, b), (share, n) in facing.items()
              if share < FACING_BAR]
    low = min(share for share, _ in upright.values())
    value = (f'upright pairs {low:.0%} or more; right left of left ' +
             ', '.join(f'{share:.0%}' for share, _ in facing.values()))
    expected = (f'each upright pair (head above neck, shoulders above hips, ...) for >= {UPRIGHT_BAR:.0%} of the '
                f'people, the right shoulder and hip left of the left ones for >= {FACING_BAR:.0%} (real MPII: '
                'upright 87-99 %, right left of left 66-73 %)')
    if not wrong:
        return Finding(label, PASS, value, expected)
    return Finding(label, FAIL, '; '.join(wrong[:4]), expected,
                   fix=f'the joints of {source} do not seem to be in the {layout.name} order '
                       f'({", ".join(layout.joint_names)}): check the order in which your annotations list the '
                       'joints, and that "right" means the person\'s right; convert them to this order')

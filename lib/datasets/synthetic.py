"""Synthetic MPII: stick-figure images written in exactly HRNet's MPII layout (SPEC A.1, A.2, B.1).

For a no-download quick start and for tests. Each image shows one human-like figure posed from a
random kinematic skeleton of the 16 MPII joints; left limbs are bluish and right limbs reddish so that
left and right can be told apart. Coordinates in the JSON and the .mat are 1-based MATLAB pixels.
"""
import io
import json
import os
from typing import Dict, List, Tuple

import cv2
import numpy as np
import scipy.io as sio

from lib.datasets.skeletons import MPII
from lib.datasets.transforms import PIXEL_STD
from lib.utils.errors import BadValue
JPEG_QUALITY = 90
IMAGE_W_RANGE = (240, 400)
IMAGE_H_RANGE = (240, 320)
FIGURE_SIZE_RANGE = (100.0, 230.0)   # longer side of the posed figure's box in px
SPLIT_IDS = {'train': 0, 'valid': 1}
# Valid images are numbered from here, so a file name never depends on num_train.
VALID_NAME_OFFSET = 100_000_000
MAX_PER_SPLIT = VALID_NAME_OFFSET - 1
# Real MPII head boxes satisfy 0.6 * diagonal == 0.75 * |head_top - upper_neck| (measured on the real
# gt_valid.mat: 5th..95th percentile 0.74999..0.75000), i.e. diagonal = 1.25 * head length.
HEADBOX_DIAG_PER_HEAD_LENGTH = 1.25

J = {name: i for i, name in enumerate(MPII.joint_names)}   # joint index by long name

# Body proportions as fractions of standing height (roughly anthropometric).
HEAD_LEN, NECK_LEN, TORSO_LEN = 0.14, 0.055, 0.30
SHOULDER_HALF, HIP_HALF = 0.115, 0.08
UPPER_ARM, FOREARM, THIGH, SHIN = 0.17, 0.15, 0.25, 0.24


def _rot(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _limb_dir(frame: float, angle: float, side: float) -> np.ndarray:
    """Unit vector `angle` rad from "down" towards `side` (-1 = image left), in a frame rotated by `frame`."""
    return _rot(frame) @ np.array([side * np.sin(angle), np.cos(angle)])


def _foreshorten(rng: np.random.Generator) -> float:
    # A limb pointing towards the camera looks shorter; real MPII has many such limbs.
    return float(rng.uniform(0.55, 1.0)) if rng.random() < 0.3 else 1.0


def _add_limb(joints: np.ndarray, rng: np.random.Generator, root: int, mid: int, end: int,
              lengths: Tuple[float, float], side: float, first_deg: Tuple[float, float],
              bend_deg: Tuple[float, float], frame: float, lateral: float = 1.0) -> None:
    """Two-segment limb from joints[root]: first segment at `first_deg` from down, second bent further.

    `lateral` in (0, 1] is how much of the bend shows as an angle in the picture; the rest bends
    towards the camera and shows as a shorter second segment (a frontal knee bends forwards).
    """
    a1 = np.deg2rad(rng.uniform(*first_deg))
    bend = np.deg2rad(rng.uniform(*bend_deg))
    a2 = a1 + lateral * bend * rng.choice([-1.0, 1.0])
    second = lengths[1] * (1 - 0.6 * (1 - lateral) * np.sin(bend)) * _foreshorten(rng)
    joints[mid] = joints[root] + lengths[0] * _foreshorten(rng) * _limb_dir(frame, a1, side)
    joints[end] = joints[mid] + second * _limb_dir(frame, a2, side)


def sample_pose(rng: np.random.Generator) -> np.ndarray:
    """Random plausible pose for a figure of standing height 1, pelvis at the origin, y pointing down.

    Returns joints [K, 2] in MPII order. Facing the camera (80 %), the figure's right side is on the
    image left, as in real photos; otherwise it is seen from behind.
    """
    joints = np.zeros((MPII.num_joints, 2))
    lean = np.deg2rad(rng.uniform(-12, 12))
    head_tilt = lean + np.deg2rad(rng.uniform(-20, 20))
    right_side = -1.0 if rng.random() < 0.8 else 1.0
    width = rng.uniform(0.4, 1.0)              # body turned away from frontal view
    up, lateral = _rot(lean) @ np.array([0.0, -1.0]), _rot(lean) @ np.array([1.0, 0.0])
    joints[J['thorax']] = TORSO_LEN * rng.uniform(0.8, 1.0) * up
    neck_up = _rot(head_tilt) @ np.array([0.0, -1.0])
    joints[J['upper_neck']] = joints[J['thorax']] + NECK_LEN * neck_up
    joints[J['head_top']] = joints[J['upper_neck']] + HEAD_LEN * rng.uniform(0.9, 1.1) * neck_up
    for prefix, side in (('right', right_side), ('left', -right_side)):
        joints[J[prefix + '_shoulder']] = joints[J['thorax']] + side * SHOULDER_HALF * width * lateral
        joints[J[prefix + '_hip']] = side * HIP_HALF * width * lateral
        arm_first = (-20, 100) if rng.random() < 0.7 else (100, 170)   # arms mostly down, some raised
        _add_limb(joints, rng, J[prefix + '_shoulder'], J[prefix + '_elbow'], J[prefix + '_wrist'],
                  (UPPER_ARM, FOREARM), side, arm_first, (0, 140), lean)
        leg_first = (-12, 35) if rng.random() < 0.9 else (35, 95)      # legs mostly down, some kicks
        knee_bend = (0, 45) if rng.random() < 0.75 else (45, 110)
        knee_lateral = float(np.clip(1.15 - width, 0.15, 0.75))       # frontal knees bend towards the camera
        _add_limb(joints, rng, J[prefix + '_hip'], J[prefix + '_knee'], J[prefix + '_ankle'],
                  (THIGH, SHIN), side, leg_first, knee_bend, 0.0, lateral=knee_lateral)
    spin = rng.uniform(-8, 8) if rng.random() < 0.7 else rng.uniform(-40, 40)
    return joints @ _rot(np.deg2rad(spin)).T


def _head_ellipse(joints: np.ndarray, width_ratio: float) -> Tuple[np.ndarray, Tuple[float, float], float]:
    """Head ellipse from upper_neck to head_top: centre (x, y), semi-axes (along, across), angle in degrees."""
    top, neck = joints[J['head_top']], joints[J['upper_neck']]
    length = float(np.linalg.norm(top - neck))
    angle = float(np.degrees(np.arctan2(top[1] - neck[1], top[0] - neck[0])))
    return (top + neck) / 2, (length / 2, length * width_ratio), angle


def _head_box(joints: np.ndarray, width_ratio: float) -> np.ndarray:
    """Axis-aligned box [2 corners, (x, y)] around the drawn head, rescaled to real MPII's diagonal."""
    centre, (along, across), angle = _head_ellipse(joints, width_ratio)
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    half = np.array([np.hypot(along * c, across * s), np.hypot(along * s, across * c)])
    head_len = 2 * along
    half *= HEADBOX_DIAG_PER_HEAD_LENGTH * head_len / (2 * np.linalg.norm(half))
    return np.stack([centre - half, centre + half])


def _thickness(height: float) -> Dict[str, int]:
    return {'leg': max(3, round(0.055 * height)), 'arm': max(3, round(0.045 * height)),
            'neck': max(3, round(0.05 * height)), 'dot': max(2, round(0.018 * height))}


def _leg_pad(height: float) -> float:
    return _thickness(height)['leg'] / 2 + 1


def _figure_extent(joints: np.ndarray, head_width: float, pad: float) -> Tuple[np.ndarray, np.ndarray]:
    """Bounding box (top-left, bottom-right) of the drawn figure: joints padded by `pad`, and the head."""
    centre, (along, across), _ = _head_ellipse(joints, head_width)
    pts = np.concatenate([joints - pad, joints + pad, [centre - along, centre + along]])
    return pts.min(axis=0), pts.max(axis=0)


def _place(rng: np.random.Generator, unit_joints: np.ndarray, head_width: float,
           image_wh: Tuple[int, int]) -> Tuple[np.ndarray, float]:
    """Scale and translate a unit-height pose into the image; returns 0-based joints [K, 2] and height in px."""
    size_wh = np.array(image_wh, dtype=float)
    # Half a leg's thickness (0.055 * height, see _thickness) plus antialiasing, in units of height.
    lo, hi = _figure_extent(unit_joints, head_width, 0.04)
    height = rng.uniform(*FIGURE_SIZE_RANGE) / np.max(hi - lo)
    height = min(height, *(0.95 * size_wh / (hi - lo)))  # fit the figure's box into the image
    joints = unit_joints * height
    lo, hi = _figure_extent(joints, head_width, _leg_pad(height))
    # Mostly fully inside; sometimes cut by the border so that joints go missing as in real photos.
    slack = 0.0 if rng.random() < 0.88 else 0.35
    low = -lo - slack * (hi - lo)
    high = size_wh - 1 - hi + slack * (hi - lo)
    return joints + rng.uniform(low, np.maximum(high, low)), float(height)


def _annotate(rng: np.random.Generator, joints: np.ndarray, image_wh: Tuple[int, int]) -> np.ndarray:
    """joints_vis [K]: 0 outside the image, and a few randomly dropped (mostly extremities, like MPII)."""
    inside = np.all((joints >= 0) & (joints <= np.array(image_wh) - 1), axis=1)
    drop_p = np.full(MPII.num_joints, 0.004)
    for name in ('ankle', 'wrist'):
        drop_p[[J['left_' + name], J['right_' + name]]] = 0.04
    for name in ('knee', 'elbow'):
        drop_p[[J['left_' + name], J['right_' + name]]] = 0.02
    return (inside & (rng.random(MPII.num_joints) >= drop_p)).astype(int)


def _background(rng: np.random.Generator, image_wh: Tuple[int, int]) -> np.ndarray:
    """Smooth colour gradient plus a few random rectangles and circles as clutter; [H, W, 3] uint8 BGR."""
    w, h = image_wh
    angle = rng.uniform(0, 2 * np.pi)
    xs, ys = np.linspace(-0.5, 0.5, w, dtype=np.float32), np.linspace(-0.5, 0.5, h, dtype=np.float32)
    t = (xs[None, :] * np.cos(angle) + ys[:, None] * np.sin(angle) + 0.75) / 1.5   # [H, W] in [0, 1]
    c0, c1 = rng.uniform(30, 230, 3).astype(np.float32), rng.uniform(30, 230, 3).astype(np.float32)
    img = (c0 + (c1 - c0) * t[..., None]).astype(np.uint8)
    for _ in range(rng.integers(2, 7)):
        # Desaturated clutter, so it rarely looks exactly like a limb.
        color = (0.5 * rng.uniform(0, 255, 3) + 0.5 * rng.uniform(60, 200)).tolist()
        filled = -1 if rng.random() < 0.6 else int(rng.integers(1, 4))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            size = rng.integers(10, max(w, h) // 3, size=2)
            cv2.rectangle(img, (x, y), (x + int(size[0]), y + int(size[1])), color, filled)
        else:
            cv2.circle(img, (x, y), int(rng.integers(5, min(w, h) // 5)), color, filled, cv2.LINE_AA)
    return img


def _palette(rng: np.random.Generator) -> Dict[str, np.ndarray]:
    """BGR colours with jitter: left limbs bluish, right limbs reddish, torso ('centre') greenish, head skin."""
    return {'left': np.array([rng.uniform(170, 255), rng.uniform(40, 140), rng.uniform(0, 60)]),
            'right': np.array([rng.uniform(0, 60), rng.uniform(20, 110), rng.uniform(170, 255)]),
            'centre': np.array([rng.uniform(40, 120), rng.uniform(110, 200), rng.uniform(60, 150)]),
            'head': np.array([rng.uniform(110, 170), rng.uniform(150, 200), rng.uniform(190, 240)])}


def _pt(p: np.ndarray) -> Tuple[int, int]:
    return int(round(p[0])), int(round(p[1]))


def _side(joint: int) -> str:
    return 'left' if MPII.is_left(joint) else 'right' if MPII.is_right(joint) else 'centre'


LIMBS = tuple((a, b) for a, b in MPII.skeleton if _side(a) == _side(b) != 'centre')
LEG_LIMBS = tuple(p for p in LIMBS if MPII.joint_names[p[0]].split('_')[1] in ('hip', 'knee', 'ankle'))
ARM_LIMBS = tuple(p for p in LIMBS if p not in LEG_LIMBS)


def _draw_limbs(img: np.ndarray, rng: np.random.Generator, joints: np.ndarray,
                limbs: Tuple[Tuple[int, int], ...], colors: Dict[str, np.ndarray], width: int) -> None:
    if rng.random() < 0.5:   # random depth order: which side is drawn on top
        limbs = limbs[::-1]
    for a, b in limbs:
        cv2.line(img, _pt(joints[a]), _pt(joints[b]), colors[_side(a)].tolist(), width, cv2.LINE_AA)


def _draw_figure(img: np.ndarray, rng: np.random.Generator, joints: np.ndarray, head_width: float,
                 height: float) -> None:
    """Draw the figure in place: legs, torso, neck, head, arms, then a dot on every joint."""
    colors, thick = _palette(rng), _thickness(height)
    _draw_limbs(img, rng, joints, LEG_LIMBS, colors, thick['leg'])
    torso = joints[[J['right_shoulder'], J['left_shoulder'], J['left_hip'], J['right_hip']]]
    cv2.fillPoly(img, [np.round(torso).astype(np.int32)], colors['centre'].tolist(), cv2.LINE_AA)
    cv2.line(img, _pt(joints[J['thorax']]), _pt(joints[J['upper_neck']]), colors['head'].tolist(),
             thick['neck'], cv2.LINE_AA)
    centre, axes, angle = _head_ellipse(joints, head_width)
    cv2.ellipse(img, _pt(centre), _pt(axes), angle, 0, 360, colors['head'].tolist(), -1, cv2.LINE_AA)
    _draw_limbs(img, rng, joints, ARM_LIMBS, colors, thick['arm'])
    for k in range(MPII.num_joints):
        side = _side(k)
        # Light dots on the limbs, dark ones on the torso and head, so every joint shows as a spot.
        dot = 0.45 * colors[side] + (0.0 if side == 'centre' else 0.55 * 255)
        cv2.circle(img, _pt(joints[k]), thick['dot'], dot.tolist(), -1, cv2.LINE_AA)


def _add_noise(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian luminance noise: one draw per pixel, not per channel, as the draws dominate the run time."""
    noise = rng.standard_normal(img.shape[:2], dtype=np.float32) * np.float32(rng.uniform(2.0, 8.0))
    return cv2.add(img, cv2.merge([noise, noise, noise]), dtype=cv2.CV_8U)   # saturates at 0 and 255


def _image_name(split: str, index: int) -> str:
    return f'{index + 1 + (VALID_NAME_OFFSET if split == "valid" else 0):09d}.jpg'


def render_sample(seed: int, split: str, index: int) -> Tuple[np.ndarray, dict, np.ndarray]:
    """Image `index` of `split` ('train' or 'valid') for `seed`; independent of how many others are made.

    Returns the BGR image [H, W, 3] uint8, its HRNet annotation entry (1-based pixels, SPEC A.2), and
    the head box [2 corners, (x, y)] in 1-based pixels as stored in gt_valid.mat.
    """
    if split not in SPLIT_IDS:
        raise ValueError(f'split={split!r} is not known; expected one of {sorted(SPLIT_IDS)}.')
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    image_wh = (int(rng.integers(IMAGE_W_RANGE[0], IMAGE_W_RANGE[1] + 1)),
                int(rng.integers(IMAGE_H_RANGE[0], IMAGE_H_RANGE[1] + 1)))
    head_width = float(rng.uniform(0.36, 0.44))
    joints, height = _place(rng, sample_pose(rng), head_width, image_wh)
    vis = _annotate(rng, joints, image_wh)
    img = _background(rng, image_wh)
    _draw_figure(img, rng, joints, head_width, height)
    entry = _entry(_image_name(split, index), joints, vis, head_width, height)
    return _add_noise(img, rng), entry, np.round(_head_box(joints, head_width) + 1, 4)


def _entry(name: str, joints: np.ndarray, vis: np.ndarray, head_width: float, height: float) -> dict:
    """HRNet entry; center/scale chosen so HRNet's load adjustment (SPEC A.4) centres the crop on the figure."""
    lo, hi = _figure_extent(joints, head_width, _leg_pad(height))
    scale = float(np.max(hi - lo)) / PIXEL_STD
    # HRNet does center[1] += 15 * scale, then center -= 1: undo both here.
    center = (lo + hi) / 2 + 1 - np.array([0.0, 15 * scale])
    out = np.where(vis[:, None] == 1, np.round(joints + 1, 4), -1.0)
    return {'image': name, 'center': [round(float(v), 2) for v in center], 'scale': round(scale, 6),
            'joints': out.tolist(), 'joints_vis': [int(v) for v in vis]}


def _write_gt_mat(path: str, entries: List[dict], headboxes: List[np.ndarray]) -> None:
    """gt_valid.mat with the variables, shapes and dtypes of the real file (SPEC B.1)."""
    vis = np.array([e['joints_vis'] for e in entries], dtype=np.uint8)        # [N, K]
    joints = np.array([e['joints'] for e in entries], dtype=np.float64)       # [N, K, 2]
    # The real file stores 0 (not -1) for missing joints; HRNet masks them via jnt_missing anyway.
    joints[vis == 0] = 0.0
    names = np.empty((1, MPII.num_joints), dtype=object)
    names[0, :] = list(MPII.short_names)                                       # saved as a MATLAB cell
    buf = io.BytesIO()
    sio.savemat(buf, {'dataset_joints': names,
                      'jnt_missing': (1 - vis).T.copy(),                        # [K, N] uint8
                      'pos_gt_src': joints.transpose(1, 2, 0).copy(),           # [K, 2, N]
                      'headboxes_src': np.stack(headboxes).transpose(1, 2, 0).astype(np.float64)})  # [2, 2, N]
    data = bytearray(buf.getvalue())
    # The 116-byte text header holds a creation time; fix it so the file is byte-for-byte reproducible.
    data[:116] = b'MATLAB 5.0 MAT-file, synthetic MPII gt_valid (lib/datasets/synthetic.py)'.ljust(116)
    with open(path, 'wb') as f:
        f.write(bytes(data))


def _check_args(root: str, num_train: int, num_valid: int, seed: int) -> None:
    if not isinstance(root, (str, os.PathLike)) or not str(root):
        raise BadValue(f'root={root!r} is not a usable path; expected a non-empty directory path, '
                       f'e.g. "data/synthetic".')
    for name, value in (('num_train', num_train), ('num_valid', num_valid)):
        is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        if not is_int or not 1 <= value <= MAX_PER_SPLIT:
            raise BadValue(f'{name}={value!r} is invalid; expected an int in [1, {MAX_PER_SPLIT}]. '
                           f'Pass e.g. {name}=100.')
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise BadValue(f'seed={seed!r} is invalid; expected a non-negative int (numpy SeedSequence '
                       f'entropy). Pass e.g. seed=0.')


def _write_json(path: str, entries: List[dict]) -> None:
    with open(path, 'w') as f:
        json.dump(entries, f)


def make_synthetic_mpii(root: str, num_train: int = 1000, num_valid: int = 200, seed: int = 0) -> None:
    """Write a synthetic MPII dataset in HRNet's layout to `root`.

    Files: images/<9 digits>.jpg, annot/{train,valid,trainval,test}.json and annot/gt_valid.mat.
    Output is byte-for-byte deterministic for a given seed; image i of a split does not depend on the
    number of images generated. Existing files of the same names are overwritten.
    """
    _check_args(root, num_train, num_valid, seed)
    image_dir, annot_dir = os.path.join(root, 'images'), os.path.join(root, 'annot')
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(annot_dir, exist_ok=True)
    entries: Dict[str, List[dict]] = {'train': [], 'valid': []}
    headboxes: List[np.ndarray] = []
    for split, count in (('train', num_train), ('valid', num_valid)):
        for i in range(count):
            img, entry, headbox = render_sample(seed, split, i)
            ok, jpg = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                raise RuntimeError(f'cv2.imencode failed for {entry["image"]} of shape {img.shape}; '
                                   f'expected a [H, W, 3] uint8 image. Check the OpenCV install.')
            jpg.tofile(os.path.join(image_dir, entry['image']))
            entries[split].append(entry)
            if split == 'valid':
                headboxes.append(headbox)
    _write_json(os.path.join(annot_dir, 'train.json'), entries['train'])
    _write_json(os.path.join(annot_dir, 'valid.json'), entries['valid'])
    _write_json(os.path.join(annot_dir, 'trainval.json'), entries['train'] + entries['valid'])
    _write_json(os.path.join(annot_dir, 'test.json'),
                [{k: e[k] for k in ('image', 'center', 'scale')} for e in entries['valid']])
    _write_gt_mat(os.path.join(annot_dir, 'gt_valid.mat'), entries['valid'], headboxes)

"""Top-down pose dataset: crop each annotated person, augment, and make Gaussian targets (SPEC C).

Dataset-agnostic: it takes parsed records and a KeypointLayout, so MPII (and later COCO or a custom
set) share one pipeline. Randomness comes from a generator seeded by (seed, epoch, index) that the
sampler passes in with the index, so a run is reproducible whatever the number of workers, and a
resumed run sees exactly the samples it would have seen.
"""
import os
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import cv2
import numpy as np
from paddle.io import Dataset

from lib.config import DataConfig
from lib.datasets.half_body import random_half_body
from lib.datasets.codec import codec_for
# read_image lives in image_io; tools/draw_predictions.py and the tests import it from here too.
from lib.datasets.image_io import flipped_x_offset, jpeg_size, read_image, reduced_pixel_matrix, reduction_for_crop
from lib.datasets.skeletons import KeypointLayout
from lib.datasets.transforms import (PIXEL_STD, affine_transform_points, crop_image, flip_joints, normalize_image,
                                     random_scale_rotation)
from lib.utils.errors import BadValue

SampleKey = Union[int, Tuple[int, int, int]]   # index, or (index, seed, epoch) for training

# reduced_decode keeps at least this many decoded pixels per crop pixel (src_w / r >= input_w * margin), so
# bilinear warping never upsamples the reduced image. A libjpeg 1/r decode is block-averaged where the
# full-resolution bilinear warp aliases. Mean |error| against a 4x-supersampled, area-averaged crop, full vs
# reduced, at src_w / r = input_w * margin (256 px input, r = 2; tests/test_reduced_decode.py checks 1.2):
#   margin            1.0          1.1          1.2          1.5
#   real MPII         0.63 / 0.72  0.73 / 0.67  0.82 / 0.63  1.09 / 0.56
#   synthetic         0.74 / 0.92  0.84 / 0.86  0.95 / 0.81  1.26 / 0.76
# Below about 1.1 the reduced crop is blurrier than the reference; from 1.2 it is the closer of the two for
# real and synthetic images (r = 2 and 4, inputs 256 and 384). The price: 58% instead of 71% (margin 1.0) of
# MPII's 256 px training crops are decoded reduced.
REDUCED_DECODE_MARGIN = 1.2


class SamplePlan(NamedTuple):
    """What __getitem__ will do for one key, decided before any pixel is decoded."""
    index: int
    center: np.ndarray          # [2] full-resolution pixels, before the flip
    scale: np.ndarray           # [2] after the scale augmentation
    rotation: float             # degrees
    flip: bool
    reduction: int              # decode at 1/reduction of the resolution (1 = full)
    image_wh: Optional[Tuple[int, int]]   # from the JPEG header; None when it was not read


class TopDownPoseDataset(Dataset):
    """records: dicts with image (file name), center [2], scale [2], joints [K, 2], joints_vis [K].

    __getitem__ returns a dict of numpy arrays:
        image [3, H, W] float32, target [K, h, w] float32, target_weight [K, 1] float32,
        joints [K, 2] (input-crop pixels), joints_vis [K], center [2], scale [2], rotation, score, index.

    With config.reduced_decode, a JPEG whose (augmented) box is at least 2 * REDUCED_DECODE_MARGIN times
    the input width is decoded at 1/2, 1/4 or 1/8 resolution (see plan_sample): the crop changes slightly
    (less aliasing), the targets, joints, centre and scale do not change at all.
    """

    def __init__(self, records: List[Dict[str, np.ndarray]], image_dir: str, layout: KeypointLayout,
                 config: DataConfig, is_train: bool):
        super().__init__()
        self.records = records
        self.image_dir = image_dir
        self.layout = layout
        self.config = config
        self.is_train = is_train
        self.codec = codec_for(config)   # the crop and the targets: HRNet's, DARK's unbiased or UDP's

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: SampleKey) -> Dict[str, np.ndarray]:
        plan = self.plan_sample(key)
        record = self.records[plan.index]
        cfg = self.config
        image = self._read(os.path.join(self.image_dir, record['image']), plan)
        # Joints, centre and scale stay in full-resolution pixels whatever the decode size, so the
        # targets do not depend on reduced_decode.
        full_width = plan.image_wh[0] if plan.reduction > 1 else image.shape[1]
        center, scale = plan.center.copy(), plan.scale
        joints, joints_vis = record['joints'], record['joints_vis']
        if plan.flip:   # HRNet's (and MMPose's) flip (SPEC C.2 step 4): x -> W - x - 1, the full-resolution W
            image = cv2.flip(image, 1)
            joints, joints_vis = flip_joints(joints, joints_vis, full_width, self.layout.flip_pairs)
            center[0] = full_width - center[0] - 1

        crop, matrix = self._crop(image, center, scale, plan, full_width)
        visible = joints_vis > 0
        joints_crop = np.where(visible[:, None], affine_transform_points(joints, matrix), joints)
        target, target_weight = self.codec.encode(joints_crop, joints_vis)
        if cfg.use_joints_weight:   # HRNet's LOSS.USE_DIFFERENT_JOINTS_WEIGHT (SPEC C.5)
            target_weight = target_weight * self.layout.joints_weight_array
        return {
            'image': normalize_image(crop, cfg.mean, cfg.std),
            'target': target,
            'target_weight': target_weight,
            'joints': joints_crop.astype(np.float32),
            'joints_vis': joints_vis.astype(np.float32),
            'center': center.astype(np.float32),
            'scale': scale.astype(np.float32),
            'rotation': np.float32(plan.rotation),
            'score': np.float32(record.get('score', 1.0)),
            'index': np.int64(plan.index),
        }

    def plan_sample(self, key: SampleKey) -> SamplePlan:
        """Draw the augmentation for `key` (HRNet's order, SPEC C.2: half body, scale, rotation, flip) and
        choose the decode reduction from the augmented box side; reads at most the JPEG header."""
        index, rng = self._unpack(key)
        record = self.records[index]
        cfg = self.config
        center, scale, rotation, flip = record['center'].copy(), record['scale'].copy(), 0.0, False
        if self.is_train:
            # Half body first (SPEC C.4); draws nothing when prob_half_body <= 0, so MPII runs are unchanged.
            half_body = random_half_body(record['joints'], record['joints_vis'], self.layout,
                                         cfg.input_wh[0] / cfg.input_wh[1], rng, cfg.prob_half_body,
                                         cfg.num_joints_half_body)
            if half_body is not None:
                center, scale = half_body
            scale_mult, rotation = random_scale_rotation(rng, cfg.scale_factor, cfg.rotation_factor,
                                                         cfg.rotation_prob)
            scale = scale * scale_mult
            flip = bool(cfg.flip and rng.random() <= 0.5)
        reduction, image_wh = 1, None
        if cfg.reduced_decode:
            src_w = float(np.ravel(scale)[0]) * PIXEL_STD   # the box width sets the zoom (get_affine_transform)
            reduction = reduction_for_crop(src_w, cfg.input_wh[0], REDUCED_DECODE_MARGIN)
            if reduction > 1:
                image_wh = jpeg_size(os.path.join(self.image_dir, record['image']))
                if image_wh is None:   # not a JPEG, or a header we cannot parse: decode it whole
                    reduction = 1
        return SamplePlan(index, center, scale, rotation, flip, reduction, image_wh)

    def _crop(self, image: np.ndarray, center: np.ndarray, scale: np.ndarray, plan: SamplePlan,
              full_width: int) -> Tuple[np.ndarray, np.ndarray]:
        """(crop [h, w, 3], matrix): the matrix maps full-resolution pixels to the crop whatever the decode
        size; a 1/r image is warped with matrix @ (reduced pixel -> full-resolution pixel)."""
        input_wh = self.config.input_wh
        if plan.reduction == 1:
            return crop_image(image, center, scale, plan.rotation, input_wh, self.config.udp)
        matrix = self.codec.crop_matrix(center, scale, plan.rotation)
        x_offset = flipped_x_offset(full_width, image.shape[1], plan.reduction) if plan.flip else 0.0
        warp = matrix @ reduced_pixel_matrix(plan.reduction, x_offset)
        crop = cv2.warpAffine(image, warp, (int(input_wh[0]), int(input_wh[1])), flags=cv2.INTER_LINEAR)
        return crop, matrix

    def _read(self, path: str, plan: SamplePlan) -> np.ndarray:
        image = read_image(path, self.config.color_rgb, plan.reduction)
        if plan.reduction > 1:
            r, (w, h) = plan.reduction, plan.image_wh
            expected = (-(-h // r), -(-w // r))   # libjpeg's scaled size: ceil(side / r)
            if image.shape[:2] != expected:
                raise BadValue(f'{path}: decoding at 1/{r} gave {image.shape[1]}x{image.shape[0]} px, expected '
                               f'{expected[1]}x{expected[0]} from the {w}x{h} JPEG header, so the crop geometry '
                               'would be wrong. Set data.reduced_decode=False (this OpenCV build may not decode '
                               'JPEGs with libjpeg scaling), or re-encode the image.')
        return image

    def _unpack(self, key: SampleKey) -> Tuple[int, np.random.Generator]:
        if isinstance(key, (tuple, list)):
            index, seed, epoch = (int(v) for v in key)
            return index, np.random.default_rng([seed, epoch, index])
        if self.is_train:
            # Plain indices (e.g. a user's own DataLoader): still random, just not reproducible.
            return int(key), np.random.default_rng()
        return int(key), None

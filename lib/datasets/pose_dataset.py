"""Top-down pose dataset: crop each annotated person, augment, and make Gaussian targets (SPEC C).

Dataset-agnostic: it takes parsed records and a KeypointLayout, so MPII (and later COCO or a custom
set) share one pipeline. Randomness comes from a generator seeded by (seed, epoch, index) that the
sampler passes in with the index, so a run is reproducible whatever the number of workers, and a
resumed run sees exactly the samples it would have seen.
"""
import os
from typing import Dict, List, Sequence, Tuple, Union

import cv2
import numpy as np
from paddle.io import Dataset

from lib.config import DataConfig
from lib.datasets.heatmaps import generate_target
from lib.datasets.skeletons import KeypointLayout
from lib.datasets.transforms import affine_transform_points, crop_image, flip_joints, random_scale_rotation

SampleKey = Union[int, Tuple[int, int, int]]   # index, or (index, seed, epoch) for training


def read_image(path: str, color_rgb: bool) -> np.ndarray:
    """Read an image [H, W, 3] uint8 with OpenCV, ignoring EXIF orientation as the references do."""
    image = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        reason = 'it does not exist' if not os.path.exists(path) else 'OpenCV cannot decode it'
        raise OSError(f'cannot read image {path}: {reason}. Check that the images/ folder of the dataset '
                      'is complete (re-extract the archive), or remove the entries that use this image.')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if color_rgb else image


def normalize_image(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """[H, W, 3] uint8 -> [3, H, W] float32: /255, then (x - mean) / std per channel."""
    image = image.astype(np.float32) / 255.0
    image = (image - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(image.transpose(2, 0, 1))


class TopDownPoseDataset(Dataset):
    """records: dicts with image (file name), center [2], scale [2], joints [K, 2], joints_vis [K].

    __getitem__ returns a dict of numpy arrays:
        image [3, H, W] float32, target [K, h, w] float32, target_weight [K, 1] float32,
        joints [K, 2] (input-crop pixels), joints_vis [K], center [2], scale [2], rotation, score, index.
    """

    def __init__(self, records: List[Dict[str, np.ndarray]], image_dir: str, layout: KeypointLayout,
                 config: DataConfig, is_train: bool):
        super().__init__()
        self.records = records
        self.image_dir = image_dir
        self.layout = layout
        self.config = config
        self.is_train = is_train

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: SampleKey) -> Dict[str, np.ndarray]:
        index, rng = self._unpack(key)
        record = self.records[index]
        cfg = self.config
        image = read_image(os.path.join(self.image_dir, record['image']), cfg.color_rgb)
        center, scale = record['center'].copy(), record['scale'].copy()
        joints, joints_vis = record['joints'], record['joints_vis']
        rotation = 0.0
        if self.is_train:
            image, center, scale, rotation, joints, joints_vis = self._augment(
                rng, image, center, scale, joints, joints_vis)

        crop, matrix = crop_image(image, center, scale, rotation, cfg.input_wh)
        visible = joints_vis > 0
        joints_crop = np.where(visible[:, None], affine_transform_points(joints, matrix), joints)
        target, target_weight = generate_target(joints_crop, joints_vis, cfg.input_wh, cfg.heatmap_wh, cfg.sigma)
        return {
            'image': normalize_image(crop, cfg.mean, cfg.std),
            'target': target,
            'target_weight': target_weight,
            'joints': joints_crop.astype(np.float32),
            'joints_vis': joints_vis.astype(np.float32),
            'center': center.astype(np.float32),
            'scale': scale.astype(np.float32),
            'rotation': np.float32(rotation),
            'score': np.float32(record.get('score', 1.0)),
            'index': np.int64(index),
        }

    def _unpack(self, key: SampleKey) -> Tuple[int, np.random.Generator]:
        if isinstance(key, (tuple, list)):
            index, seed, epoch = (int(v) for v in key)
            return index, np.random.default_rng([seed, epoch, index])
        if self.is_train:
            # Plain indices (e.g. a user's own DataLoader): still random, just not reproducible.
            return int(key), np.random.default_rng()
        return int(key), None

    def _augment(self, rng, image, center, scale, joints, joints_vis):
        """HRNet's order (SPEC C.2): scale, rotation, then flip of image, joints and centre."""
        cfg = self.config
        scale_mult, rotation = random_scale_rotation(rng, cfg.scale_factor, cfg.rotation_factor, cfg.rotation_prob)
        scale = scale * scale_mult
        if cfg.flip and rng.random() <= 0.5:
            image = cv2.flip(image, 1)
            joints, joints_vis = flip_joints(joints, joints_vis, image.shape[1], self.layout.flip_pairs)
            center[0] = image.shape[1] - center[0] - 1
        return image, center, scale, rotation, joints, joints_vis

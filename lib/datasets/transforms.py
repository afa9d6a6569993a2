"""Crop geometry and augmentation for top-down pose estimation (numpy / OpenCV only).

Follows HRNet's lib/utils/transforms.py and JointsDataset.__getitem__ (SPEC C.2, C.3) so that crops,
targets and decoded predictions match the reference numbers exactly; with udp, the crop is UDP's
(MMPose's get_udp_warp_matrix, README "DARK and UDP").
"""
from typing import Sequence, Tuple, Union

import cv2
import numpy as np

PIXEL_STD = 200.0  # "scale" is the box side in units of 200 px (MPII/COCO convention)
BOX_PADDING = 1.25  # HRNet's _xywh2cs (SimpleBaselines) pads every aspect-fixed person box by 25%

ScaleLike = Union[float, Sequence[float], np.ndarray]


def _rotate_point(point: np.ndarray, angle_rad: float) -> np.ndarray:
    sin, cos = np.sin(angle_rad), np.cos(angle_rad)
    return np.array([point[0] * cos - point[1] * sin, point[0] * sin + point[1] * cos], dtype=np.float32)


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The point that makes (a, b, c) a right angle at b: (a - b) rotated by 90 degrees, added to b."""
    direction = a - b
    return b + np.array([-direction[1], direction[0]], dtype=np.float32)


def box_scale(w: float, h: float, aspect_ratio: float, padding: float = BOX_PADDING) -> np.ndarray:
    """Scale [2] (box side / PIXEL_STD) of a w x h box whose shorter side grows until w / h = aspect_ratio
    (input width / height), times `padding`: HRNet's _xywh2cs and half-body box."""
    if w > aspect_ratio * h:
        h = w * 1.0 / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    return np.array([w / PIXEL_STD, h / PIXEL_STD], dtype=np.float32) * padding


def box_to_center_scale(box: Sequence[float], aspect: Union[float, Sequence[int]],
                        padding: float = BOX_PADDING) -> Tuple[np.ndarray, np.ndarray]:
    """HRNet's _xywh2cs: box (x, y, w, h) in pixels -> centre [2] and scale [2] (box_scale), float32 as HRNet.

    aspect: the input's aspect ratio (width / height), or its input_wh."""
    aspect_ratio = float(aspect) if np.isscalar(aspect) else aspect[0] / aspect[1]
    x, y, w, h = (float(v) for v in box[:4])
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    if center[0] == -1:   # HRNet's guard (no padding), kept so the numbers match
        padding = 1.0
    return center, box_scale(w, h, aspect_ratio, padding)


def get_affine_transform(center: Sequence[float], scale: ScaleLike, rot: float,
                         output_wh: Sequence[float], shift: Sequence[float] = (0.0, 0.0),
                         inv: bool = False) -> np.ndarray:
    """2x3 affine matrix that maps the box (center, scale, rot) onto an image of size output_wh.

    Only the width of the box sets the zoom (HRNet); the output aspect ratio comes from output_wh.
    Positive `rot` (degrees) turns the image content counter-clockwise. With `inv` the matrix maps
    output pixels back to the source image.
    """
    scale = np.array([scale, scale] if np.isscalar(scale) else scale, dtype=np.float32)
    center = np.asarray(center, dtype=np.float32)
    shift = np.asarray(shift, dtype=np.float32)
    src_w = (scale * PIXEL_STD)[0]
    dst_w, dst_h = float(output_wh[0]), float(output_wh[1])

    angle = np.pi * rot / 180.0
    src_dir = _rotate_point(np.array([0.0, src_w * -0.5]), angle)
    dst_dir = np.array([0.0, dst_w * -0.5], dtype=np.float32)

    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = center + scale * PIXEL_STD * shift
    src[1] = src[0] + src_dir
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = dst[0] + dst_dir
    src[2] = _third_point(src[0], src[1])
    dst[2] = _third_point(dst[0], dst[1])

    if inv:
        return cv2.getAffineTransform(dst, src)
    return cv2.getAffineTransform(src, dst)


def udp_box_pixels(scale: ScaleLike, output_wh: Sequence[float]) -> np.ndarray:
    """The box [2] (width, height) in pixels that a UDP crop of `scale` (box side / PIXEL_STD) covers: its
    shorter side grown to the output's aspect ratio, as MMPose's TopdownAffine does before the warp. (HRNet's
    crop takes the width and derives the height; the two agree whenever the box has the output's aspect, as
    MPII's square boxes at square inputs and box_to_center_scale's boxes have.)"""
    scale = np.array([scale, scale] if np.isscalar(scale) else scale, dtype=np.float64)[:2]
    width, height = scale * PIXEL_STD
    aspect = float(output_wh[0]) / float(output_wh[1])
    if width > height * aspect:
        return np.array([width, width / aspect])
    return np.array([height * aspect, height])


def get_udp_affine_transform(center: Sequence[float], scale: ScaleLike, rot: float,
                             output_wh: Sequence[float]) -> np.ndarray:
    """UDP's 2x3 crop matrix (MMPose's get_udp_warp_matrix; scale in units of PIXEL_STD here, pixels there):
    the box (udp_box_pixels) around `center`, rotated by `rot` degrees about it, onto output pixels
    0 .. output - 1, i.e. x' = (w_out - 1) / w_box * (R (x - c) + w_box / 2) per axis. A size spans size - 1
    pixel spacings, so the box's edges land on the first and last pixel centres and a horizontal flip of the
    output (x -> w_out - 1 - x) is a flip of the box about its centre. MMPose's R = [[cos, -sin], [sin, cos]],
    so a positive rot turns the content the other way from get_affine_transform's (kept: the augmentation's
    rotation is symmetric). float32, as MMPose's."""
    box_w, box_h = udp_box_pixels(scale, output_wh)
    zoom_x, zoom_y = (float(output_wh[0]) - 1) / box_w, (float(output_wh[1]) - 1) / box_h
    angle = np.deg2rad(rot)
    cos, sin = np.cos(angle), np.sin(angle)
    cx, cy = float(center[0]), float(center[1])
    return np.array([[zoom_x * cos, -zoom_x * sin, zoom_x * (-cx * cos + cy * sin + 0.5 * box_w)],
                     [zoom_y * sin, zoom_y * cos, zoom_y * (-cx * sin - cy * cos + 0.5 * box_h)]], dtype=np.float32)


def crop_matrix(center: Sequence[float], scale: ScaleLike, rot: float, output_wh: Sequence[float],
                udp: bool = False) -> np.ndarray:
    """The 2x3 matrix of a crop: HRNet's get_affine_transform, or UDP's get_udp_affine_transform."""
    if udp:
        return get_udp_affine_transform(center, scale, rot, output_wh)
    return get_affine_transform(center, scale, rot, output_wh)


def affine_transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to points [..., 2] (x, y); returns the same shape."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def crop_image(image: np.ndarray, center: Sequence[float], scale: ScaleLike, rot: float,
               input_wh: Tuple[int, int], udp: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Warp the box (center, scale, rot) of `image` [H, W, 3] to [input_h, input_w, 3] (crop_matrix).

    Bilinear interpolation with a constant 0 border, as HRNet and MMPose. Returns (crop, matrix).
    """
    matrix = crop_matrix(center, scale, rot, input_wh, udp)
    crop = cv2.warpAffine(image, matrix, (int(input_wh[0]), int(input_wh[1])), flags=cv2.INTER_LINEAR)
    return crop, matrix


def flip_joints(joints: np.ndarray, joints_vis: np.ndarray, image_width: int,
                flip_pairs: Sequence[Tuple[int, int]]) -> Tuple[np.ndarray, np.ndarray]:
    """Mirror joints [K, 2] of an image `image_width` px wide and swap left/right partners.

    As HRNet's fliplr_joints: x -> W - x - 1, then joints are multiplied by their visibility, so
    unannotated joints become (0, 0).
    """
    joints = joints.copy()
    joints_vis = joints_vis.copy()
    joints[:, 0] = image_width - joints[:, 0] - 1
    for a, b in flip_pairs:
        joints[[a, b]] = joints[[b, a]]
        joints_vis[[a, b]] = joints_vis[[b, a]]
    return joints * joints_vis[:, None], joints_vis


def random_scale_rotation(rng: np.random.Generator, scale_factor: float, rotation_factor: float,
                          rotation_prob: float = 0.6) -> Tuple[float, float]:
    """HRNet's scale and rotation draw (SPEC C.2 steps 2-3): returns (scale multiplier, degrees)."""
    scale_mult = float(np.clip(rng.standard_normal() * scale_factor + 1, 1 - scale_factor, 1 + scale_factor))
    rot = 0.0
    if rng.random() <= rotation_prob:
        rot = float(np.clip(rng.standard_normal() * rotation_factor, -2 * rotation_factor, 2 * rotation_factor))
    return scale_mult, rot


def normalize_image(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """[H, W, 3] uint8 -> [3, H, W] float32: /255, then (x - mean) / std per channel."""
    image = image.astype(np.float32) / 255.0
    image = (image - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(image.transpose(2, 0, 1))

"""UDP (Huang et al., CVPR 2020, "The Devil is in the Details: Delving into Unbiased Data Processing for Human
Pose Estimation"): targets and decoding where a size of n pixels spans n - 1 pixel spacings, so that the crop,
the heatmap and the flip all map pixel centres onto pixel centres.

Numpy / OpenCV only. Follows MMPose 1.x (codecs/udp_heatmap.py UDPHeatmap with heatmap_type 'gaussian',
codecs/utils/gaussian_heatmap.py generate_udp_gaussian_heatmaps, refinement.py refine_keypoints_dark_udp, and
the back-mapping of TopdownPoseEstimator); the crop matrix is lib/datasets/transforms.get_udp_affine_transform.
tests/test_udp.py runs MMPose's own functions side by side.
"""
from typing import Sequence, Tuple

import numpy as np

from lib.datasets.dark import modulate
from lib.datasets.transforms import udp_box_pixels

LOG_CLIP = (1e-3, 50.0)   # DARK-UDP clips the modulated heatmap to this range before the log (MMPose)


def udp_stride(input_wh: Sequence[int], heatmap_wh: Sequence[int]) -> np.ndarray:
    """Input pixels per heatmap pixel under UDP, (input - 1) / (heatmap - 1) per axis (float32, as MMPose)."""
    return ((np.asarray(input_wh, dtype=np.float64) - 1) / (np.asarray(heatmap_wh, dtype=np.float64) - 1)
            ).astype(np.float32)


def udp_target(joints: np.ndarray, joints_vis: np.ndarray, input_wh: Tuple[int, int], heatmap_wh: Tuple[int, int],
               sigma: float) -> Tuple[np.ndarray, np.ndarray]:
    """UDP Gaussian targets for joints [K, 2] in input-crop pixels: mu = joint / udp_stride, a (6 sigma + 1)^2
    patch placed at int(mu + 0.5) as HRNet's, but whose Gaussian is centred at the exact mu (so the peak is
    below 1 off the pixel grid). Weight 0 when vis < 0.5 or the patch misses the map (HRNet's bounds, with its
    quirk of a patch ending exactly at column 0 keeping weight 1 and an empty map).

    Returns target [K, h, w] float32 and target_weight [K, 1] float32."""
    num_joints = joints.shape[0]
    heatmap_w, heatmap_h = int(heatmap_wh[0]), int(heatmap_wh[1])
    weight = np.asarray(joints_vis, dtype=np.float32).reshape(num_joints, 1).copy()
    target = np.zeros((num_joints, heatmap_h, heatmap_w), dtype=np.float32)
    stride = udp_stride(input_wh, heatmap_wh)
    radius = sigma * 3
    size = 2 * radius + 1
    grid = np.arange(0, size, 1, dtype=np.float32)
    for j in range(num_joints):
        if weight[j, 0] < 0.5:
            continue
        exact = np.asarray(joints[j, :2], dtype=np.float64) / stride
        mu = (exact + 0.5).astype(np.int64)    # truncation toward zero, as int()
        left, top = (mu - radius).astype(np.int64)
        right, bottom = (mu + radius + 1).astype(np.int64)
        if left >= heatmap_w or top >= heatmap_h or right < 0 or bottom < 0:
            weight[j] = 0
            continue
        x0 = size // 2 + exact[0] - mu[0]
        y0 = size // 2 + exact[1] - mu[1]
        gaussian = np.exp(-((grid[None, :] - x0) ** 2 + (grid[:, None] - y0) ** 2) / (2 * sigma ** 2))
        g_x = max(0, -left), min(heatmap_w, right) - left
        g_y = max(0, -top), min(heatmap_h, bottom) - top
        target[j, max(0, top):min(heatmap_h, bottom), max(0, left):min(heatmap_w, right)] = \
            gaussian[g_y[0]:g_y[1], g_x[0]:g_x[1]]
    return target, weight


def refine_dark_udp(coords: np.ndarray, heatmaps: np.ndarray, kernel: int, valid: np.ndarray) -> np.ndarray:
    """DARK-UDP refinement of integer argmax coords [N, K, 2] on heatmaps [N, K, h, w] (MMPose's
    refine_keypoints_dark_udp): modulate, clip to [1e-3, 50], log, pad one pixel by edge replication, then one
    Newton step with gradient (central, spacing 1) and Hessian (spacing 1; the mixed term from the 4-neighbour
    stencil) regularised by float32 eps * I. Every peak is refined, border ones on the replicated edge. Joints
    where `valid` [N, K] is False (max <= 0) keep their coords (MMPose refines its (-1, -1) placeholder).

    Returns float32 [N, K, 2]."""
    n, k, h, w = heatmaps.shape
    logs = np.log(np.clip(modulate(heatmaps, kernel), np.float32(LOG_CLIP[0]), np.float32(LOG_CLIP[1])))
    padded = np.pad(logs.reshape(n * k, h, w), ((0, 0), (1, 1), (1, 1)), mode='edge')
    coords = np.asarray(coords, dtype=np.float32).copy()
    flat = coords.reshape(n * k, 2)
    idx = np.nonzero(np.asarray(valid).reshape(-1))[0]
    if len(idx) == 0:
        return coords
    maps = padded[idx]
    x = flat[idx, 0].astype(np.int64) + 1     # position in the padded map
    y = flat[idx, 1].astype(np.int64) + 1
    rows = np.arange(len(idx))

    def at(dy, dx):
        return maps[rows, y + dy, x + dx]
    centre, right, left, down, up = at(0, 0), at(0, 1), at(0, -1), at(1, 0), at(-1, 0)
    dx = np.float32(0.5) * (right - left)
    dy = np.float32(0.5) * (down - up)
    dxx = right - np.float32(2) * centre + left
    dyy = down - np.float32(2) * centre + up
    dxy = np.float32(0.5) * (at(1, 1) - right - down + centre + centre - left - up + at(-1, -1))
    hessian = np.stack([np.stack([dxx, dxy], -1), np.stack([dxy, dyy], -1)], -2)          # [M, 2, 2] float32
    hessian = hessian + np.finfo(np.float32).eps * np.eye(2)                               # float64, as MMPose
    gradient = np.stack([dx, dy], -1)[:, :, None]
    offset = (np.linalg.inv(hessian) @ gradient)[:, :, 0]                                  # float64
    flat[idx] = (flat[idx] - offset).astype(np.float32)     # subtracted in float64, rounded once (MMPose)
    return flat.reshape(n, k, 2)


def udp_heatmap_to_image(coords: np.ndarray, center: Sequence[float], scale: Sequence[float],
                         heatmap_wh: Tuple[int, int]) -> np.ndarray:
    """Heatmap points [K, 2] back to original-image pixels under UDP: the box (center, scale, aspect-fixed as
    the crop) spans heatmap pixels 0 .. size - 1, x = c_x - box_w / 2 + x_hm * box_w / (w - 1) (MMPose's
    UDPHeatmap.decode then TopdownPoseEstimator's input -> image mapping; the inverse of the UDP crop)."""
    box_wh = udp_box_pixels(scale, heatmap_wh)
    spacing = box_wh / (np.asarray(heatmap_wh, dtype=np.float64) - 1)
    return np.asarray(center, dtype=np.float64) - 0.5 * box_wh + np.asarray(coords, dtype=np.float64) * spacing

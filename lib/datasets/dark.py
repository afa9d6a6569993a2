"""DARK (Zhang et al., CVPR 2020, "Distribution-Aware Coordinate Representation for Human Pose Estimation"):
unbiased Gaussian targets (encode) and the Taylor-expansion refinement of a heatmap peak (decode).

Numpy / OpenCV only, vectorised over [N, K]. Follows MMPose 1.x (codecs/utils/gaussian_heatmap.py
generate_unbiased_gaussian_heatmaps, post_processing.py gaussian_blur, refinement.py refine_keypoints_dark),
which is DarkPose's lib/core/inference.py with the modulation done in float32 (DarkPose blurs in float64);
tests/test_dark.py runs MMPose's own functions side by side.
"""
from typing import Tuple

import cv2
import numpy as np

LOG_FLOOR = 1e-10   # DARK clamps the modulated heatmap before the log (DarkPose, MMPose refine_keypoints_dark)


def blur_kernel_for(sigma: float) -> int:
    """The odd Gaussian kernel size whose OpenCV sigma, 0.3 * ((k - 1) / 2 - 1) + 0.8, is nearest to the target
    sigma: 11 for sigma 2, 17 for sigma 3 (MMPose's rule, used by its 0.x DARK/UDP configs), 5 for sigma 1.
    MMPose 1.x's configs keep its codec default 11 also at sigma 3; DarkPose uses 11 everywhere
    (test.blur_kernel sets another)."""
    best, best_error = 3, float('inf')
    for kernel in range(3, 64, 2):
        error = abs(0.3 * ((kernel - 1) * 0.5 - 1) + 0.8 - sigma)
        if error < best_error - 1e-9:
            best, best_error = kernel, error
    return best


def modulate(heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """DARK's distribution modulation of heatmaps [N, K, h, w]: each map blurred by a kernel x kernel Gaussian
    (zero border), then rescaled so that its maximum is the original maximum. Returns float32 [N, K, h, w].

    All maps are blurred by one OpenCV call: the zero-padded maps are stacked vertically, and since each map's
    padding is as wide as the kernel's radius, no map's pixels reach another's (the same numbers as MMPose's
    per-map loop)."""
    if kernel < 3 or kernel % 2 == 0:
        raise ValueError(f'the DARK blur kernel must be odd and >= 3; received {kernel}.')
    n, k, h, w = heatmaps.shape
    border = (kernel - 1) // 2
    maps = np.asarray(heatmaps, dtype=np.float32).reshape(n * k, h, w)
    padded = np.zeros((n * k, h + 2 * border, w + 2 * border), dtype=np.float32)
    padded[:, border:-border, border:-border] = maps
    blurred = cv2.GaussianBlur(padded.reshape(-1, w + 2 * border), (kernel, kernel), 0)
    blurred = blurred.reshape(padded.shape)[:, border:-border, border:-border]
    origin_max = maps.reshape(n * k, -1).max(axis=1)
    blurred_max = blurred.reshape(n * k, -1).max(axis=1)
    with np.errstate(divide='ignore', invalid='ignore'):   # an all-zero map stays 0 (MMPose: 0/0 = nan)
        ratio = np.where(blurred_max != 0, origin_max / blurred_max, np.float32(0)).astype(np.float32)
    return (blurred * ratio[:, None, None]).reshape(n, k, h, w)


def _gather(maps: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return maps[np.arange(len(maps)), rows, cols]


def refine_dark(coords: np.ndarray, heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """DARK's sub-pixel refinement of integer argmax coords [N, K, 2] on heatmaps [N, K, h, w]: modulate, take
    log(max(., 1e-10)), then one Newton step x - H^-1 g with central differences of spacing 1 (gradient) and 2
    (Hessian), only for peaks with 1 < x < w - 2 and 1 < y < h - 2 and a non-singular Hessian (DarkPose's
    taylor). Returns float32 [N, K, 2]; the other joints keep their coords."""
    n, k, h, w = heatmaps.shape
    coords = np.asarray(coords, dtype=np.float32).copy()
    logs = np.log(np.maximum(modulate(heatmaps, kernel), np.float32(LOG_FLOOR))).reshape(n * k, h, w)
    flat = coords.reshape(n * k, 2)
    px, py = flat[:, 0].astype(np.int64), flat[:, 1].astype(np.int64)   # int(): the argmax is integral
    inside = (px > 1) & (px < w - 2) & (py > 1) & (py < h - 2)
    idx = np.nonzero(inside)[0]
    if len(idx) == 0:
        return coords
    m, x, y = logs[idx], px[idx], py[idx]

    def at(dy, dx):
        return _gather(m, y + dy, x + dx)
    # float32 throughout, as MMPose computes on the float32 maps; the solve is its np.linalg.inv
    dx = np.float32(0.5) * (at(0, 1) - at(0, -1))
    dy = np.float32(0.5) * (at(1, 0) - at(-1, 0))
    dxx = np.float32(0.25) * (at(0, 2) - np.float32(2) * at(0, 0) + at(0, -2))
    dxy = np.float32(0.25) * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    dyy = np.float32(0.25) * (at(2, 0) - np.float32(2) * at(0, 0) + at(-2, 0))
    solvable = dxx * dyy - dxy ** 2 != 0
    hessian = np.stack([np.stack([dxx, dxy], -1), np.stack([dxy, dyy], -1)], -2)[solvable]   # [M, 2, 2]
    gradient = np.stack([dx, dy], -1)[solvable][:, :, None]                                 # [M, 2, 1]
    offset = (-np.linalg.inv(hessian) @ gradient)[:, :, 0]
    flat[idx[solvable]] += offset.astype(np.float32)
    return flat.reshape(n, k, 2)


def unbiased_target(joints: np.ndarray, joints_vis: np.ndarray, input_wh: Tuple[int, int],
                    heatmap_wh: Tuple[int, int], sigma: float) -> Tuple[np.ndarray, np.ndarray]:
    """DARK's unbiased encoding of joints [K, 2] in input-crop pixels: a Gaussian (peak 1 only if the joint sits
    on a pixel) centred at the exact sub-pixel heatmap position joint / stride, over the whole map, not
    truncated at 3 sigma (MMPose's MSRAHeatmap(unbiased=True)). A joint with vis < 0.5, or whose 3-sigma box
    [mu - 3 sigma, mu + 3 sigma + 1] misses the map, gets weight 0 and an empty map.

    Returns target [K, h, w] float32 and target_weight [K, 1] float32 (= joints_vis otherwise)."""
    num_joints = joints.shape[0]
    heatmap_w, heatmap_h = int(heatmap_wh[0]), int(heatmap_wh[1])
    weight = np.asarray(joints_vis, dtype=np.float32).reshape(num_joints, 1).copy()
    target = np.zeros((num_joints, heatmap_h, heatmap_w), dtype=np.float32)
    stride = (np.asarray(input_wh, dtype=np.float64) / np.asarray(heatmap_wh, dtype=np.float64)).astype(np.float32)
    radius = sigma * 3
    x = np.arange(0, heatmap_w, 1, dtype=np.float32)
    y = np.arange(0, heatmap_h, 1, dtype=np.float32)[:, None]
    for j in range(num_joints):
        if weight[j, 0] < 0.5:
            continue
        mu = np.asarray(joints[j, :2], dtype=np.float64) / stride
        if mu[0] - radius >= heatmap_w or mu[1] - radius >= heatmap_h or mu[0] + radius + 1 < 0 \
                or mu[1] + radius + 1 < 0:
            weight[j] = 0
            continue
        target[j] = np.exp(-((x - mu[0]) ** 2 + (y - mu[1]) ** 2) / (2 * sigma ** 2))
    return target, weight

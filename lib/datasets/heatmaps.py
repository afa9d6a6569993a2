"""Heatmap codec: Gaussian targets (encode) and argmax + quarter-pixel decoding (decode).

Pure numpy, exactly HRNet's generate_target / get_max_preds / get_final_preds (SPEC C.5, D.1, D.2),
including its edge cases, so that PCKh numbers are comparable with the published tables.
"""
from typing import Callable, Sequence, Tuple

import numpy as np

from lib.datasets.transforms import PIXEL_STD, affine_transform_points, get_affine_transform


def generate_target(joints: np.ndarray, joints_vis: np.ndarray, input_wh: Tuple[int, int],
                    heatmap_wh: Tuple[int, int], sigma: float) -> Tuple[np.ndarray, np.ndarray]:
    """Unnormalised Gaussian heatmaps for joints [K, 2] given in input-image pixels.

    Returns target [K, h, w] float32 (peak 1) and target_weight [K, 1] float32. A joint whose
    (2*3σ+1)^2 patch lies entirely off the map gets weight 0. HRNet's quirks are kept on purpose:
    `int()` truncates toward zero, and a patch whose bottom-right corner is exactly 0 keeps weight 1
    with an empty heatmap.
    """
    num_joints = joints.shape[0]
    heatmap_w, heatmap_h = int(heatmap_wh[0]), int(heatmap_wh[1])
    target_weight = np.asarray(joints_vis, dtype=np.float32).reshape(num_joints, 1).copy()
    target = np.zeros((num_joints, heatmap_h, heatmap_w), dtype=np.float32)

    tmp_size = sigma * 3
    stride_x = input_wh[0] / heatmap_w
    stride_y = input_wh[1] / heatmap_h
    size = 2 * tmp_size + 1
    grid = np.arange(0, size, 1, np.float32)
    x0 = y0 = size // 2
    gaussian = np.exp(-((grid[None, :] - x0) ** 2 + (grid[:, None] - y0) ** 2) / (2 * sigma ** 2))

    for k in range(num_joints):
        mu_x = int(joints[k, 0] / stride_x + 0.5)
        mu_y = int(joints[k, 1] / stride_y + 0.5)
        ul = (int(mu_x - tmp_size), int(mu_y - tmp_size))
        br = (int(mu_x + tmp_size + 1), int(mu_y + tmp_size + 1))
        if ul[0] >= heatmap_w or ul[1] >= heatmap_h or br[0] < 0 or br[1] < 0:
            target_weight[k] = 0
            continue
        g_x = max(0, -ul[0]), min(br[0], heatmap_w) - ul[0]
        g_y = max(0, -ul[1]), min(br[1], heatmap_h) - ul[1]
        img_x = max(0, ul[0]), min(br[0], heatmap_w)
        img_y = max(0, ul[1]), min(br[1], heatmap_h)
        if target_weight[k] > 0.5:
            target[k, img_y[0]:img_y[1], img_x[0]:img_x[1]] = gaussian[g_y[0]:g_y[1], g_x[0]:g_x[1]]
    return target, target_weight


def get_max_preds(heatmaps: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Argmax of heatmaps [N, K, h, w]: coords [N, K, 2] (x, y) float32 and maxvals [N, K, 1].

    The first maximum in row-major order wins; a joint whose maximum is <= 0 gets (0, 0) (HRNet).
    """
    if heatmaps.ndim != 4:
        raise ValueError(f'heatmaps must be [N, K, h, w]; received shape {heatmaps.shape}')
    n, k, _, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    idx = np.argmax(flat, axis=2).reshape(n, k, 1)
    maxvals = np.amax(flat, axis=2).reshape(n, k, 1)
    coords = np.tile(idx, (1, 1, 2)).astype(np.float32)
    coords[:, :, 0] = coords[:, :, 0] % w
    coords[:, :, 1] = np.floor(coords[:, :, 1] / w)
    coords *= np.tile(maxvals > 0.0, (1, 1, 2)).astype(np.float32)
    return coords, maxvals


def refine_quarter_offset(coords: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """Move each argmax 0.25 px toward the higher neighbour (HRNet's TEST.POST_PROCESS).

    Only peaks with 1 < px < w-1 and 1 < py < h-1 are refined, so both neighbours of both axes exist.
    """
    coords = coords.copy()
    n, k, h, w = heatmaps.shape
    for i in range(n):
        for j in range(k):
            hm = heatmaps[i, j]
            px = int(np.floor(coords[i, j, 0] + 0.5))
            py = int(np.floor(coords[i, j, 1] + 0.5))
            if 1 < px < w - 1 and 1 < py < h - 1:
                diff = np.array([hm[py][px + 1] - hm[py][px - 1], hm[py + 1][px] - hm[py - 1][px]])
                coords[i, j] += np.sign(diff) * 0.25
    return coords


def heatmap_to_image_coords(coords: np.ndarray, center: Sequence[float], scale: Sequence[float],
                            heatmap_wh: Tuple[int, int]) -> np.ndarray:
    """Map heatmap points [K, 2] back to original-image pixels through the inverse crop (no rotation)."""
    matrix = get_affine_transform(center, scale, 0, heatmap_wh, inv=True)
    return affine_transform_points(coords, matrix)


def heatmap_to_image_exact(coords: np.ndarray, center: Sequence[float], scale: Sequence[float],
                           heatmap_wh: Tuple[int, int]) -> np.ndarray:
    """heatmap_to_image_coords in float64 closed form, x = c + (x_hm - w / 2) * 200 s_0 / w and likewise y (the
    box width sets the zoom, as HRNet's crop): the same map without the float32 rounding of the matrix's
    points, up to 1e-3 px at image coordinates of 1000 px. MMPose maps back this way; the DARK decoder uses it,
    the quarter-pixel decoder keeps HRNet's matrix so that its figures stay HRNet's to the bit."""
    spacing = float(np.ravel(scale)[0]) * PIXEL_STD / heatmap_wh[0]
    half = np.array([heatmap_wh[0], heatmap_wh[1]], dtype=np.float64) / 2
    return np.asarray(center, dtype=np.float64) + (np.asarray(coords, dtype=np.float64) - half) * spacing


def get_final_preds(heatmaps: np.ndarray, centers: np.ndarray, scales: np.ndarray,
                    refine: bool = True, offset: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
    """Decode heatmaps [N, K, h, w] of crops (centers [N, 2], scales [N, 2]) to image pixels.

    Returns preds [N, K, 2] in 0-based original-image pixels and maxvals [N, K, 1] (SPEC D.2).
    `offset` (heatmap pixels) is added to both coordinates before mapping back: 0 for HRNet's targets,
    which put the peak at the rounded joint; 0.5 for princeton-vl's, which put it at the truncated one
    (its test code adds 0.5, SPEC D.2).
    """
    coords, maxvals = get_max_preds(heatmaps)
    if refine:
        coords = refine_quarter_offset(coords, heatmaps)
    coords = coords + offset if offset else coords
    heatmap_wh = (heatmaps.shape[3], heatmaps.shape[2])
    preds = np.stack([heatmap_to_image_coords(coords[i], centers[i], scales[i], heatmap_wh)
                      for i in range(coords.shape[0])]) if len(coords) else coords.astype(np.float64)
    return preds, maxvals


def flip_back(heatmaps: np.ndarray, flip_pairs: Sequence[Tuple[int, int]], shift: bool = True) -> np.ndarray:
    """Undo the horizontal flip of heatmaps [N, K, h, w] predicted on a mirrored input.

    Reverses the width axis and swaps left/right channels; with `shift`, moves the result one column
    to the right (column 0 keeps its value), HRNet's TEST.SHIFT_HEATMAP, which compensates the
    half-pixel misalignment of flipping an even-sized crop.
    """
    flipped = heatmaps[:, :, :, ::-1].copy()
    for a, b in flip_pairs:
        flipped[:, [a, b]] = flipped[:, [b, a]]
    if shift:
        flipped[:, :, :, 1:] = flipped[:, :, :, :-1].copy()
    return flipped


def _mirror(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images[:, :, :, ::-1])


def flip_test(run: Callable[[object], np.ndarray], images, flip_pairs: Sequence[Tuple[int, int]], enabled: bool = True,
              shift: bool = True, mirror: Callable[[object], object] = _mirror) -> np.ndarray:
    """Heatmaps [N, K, h, w] of `run(images)`, averaged with those of the mirrored images (flip_back) when
    enabled: HRNet's flip test (SPEC D.3), the one used by validation and by inference on every backend.

    run: images [N, 3, H, W] -> heatmaps [N, K, h, w] float32 numpy; mirror flips the width axis of the images
    (numpy by default; validation passes paddle.flip so that the batch stays on its device)."""
    heatmaps = run(images)
    if enabled:
        heatmaps = 0.5 * (heatmaps + flip_back(run(mirror(images)), flip_pairs, shift=shift))
    return heatmaps

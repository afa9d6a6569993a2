"""Pictures of what the model sees, as HRNet's save_debug_images: batch crops with joints, and
heatmaps laid over the crops. Inputs are the normalised tensors of a batch, so these show exactly
what the network was given."""
import os
from typing import Optional, Sequence

import cv2
import numpy as np

from lib.datasets.heatmaps import get_max_preds
from lib.datasets.skeletons import KeypointLayout
from lib.vis.drawing import draw_skeleton, image_grid

MAX_SAMPLES = 16


def denormalize(images: np.ndarray, mean: Sequence[float], std: Sequence[float], color_rgb: bool) -> np.ndarray:
    """[N, 3, H, W] normalised float -> [N, H, W, 3] uint8 BGR, for drawing."""
    pixels = images.transpose(0, 2, 3, 1) * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
    pixels = np.clip(pixels * 255.0, 0, 255).astype(np.uint8)
    return pixels[..., ::-1].copy() if color_rgb else pixels


def joints_grid(crops: np.ndarray, joints: np.ndarray, visible: Optional[np.ndarray],
                layout: KeypointLayout, columns: int = 8) -> np.ndarray:
    """Crops [N, H, W, 3] with joints [N, K, 2] (crop pixels) drawn; at most MAX_SAMPLES of them."""
    count = min(len(crops), MAX_SAMPLES)
    tiles = [draw_skeleton(crops[n], joints[n], layout, None if visible is None else visible[n] > 0)
             for n in range(count)]
    return image_grid(tiles, min(columns, count))


def heatmaps_grid(crops: np.ndarray, heatmaps: np.ndarray, rows: int = 4) -> np.ndarray:
    """One row per sample: the crop, then each joint's heatmap [h, w] laid over the crop in colour."""
    count = min(len(crops), rows)
    height, width = crops.shape[1] // 2, crops.shape[2] // 2
    tiles = []
    for n in range(count):
        small = cv2.resize(crops[n], (width, height))
        tiles.append(small)
        for heatmap in heatmaps[n]:
            colored = cv2.applyColorMap((np.clip(cv2.resize(heatmap, (width, height)), 0, 1) * 255).astype(np.uint8),
                                        cv2.COLORMAP_JET)
            tiles.append(cv2.addWeighted(small, 0.4, colored, 0.6, 0))
    return image_grid(tiles, 1 + heatmaps.shape[1], pad=2)


def save_batch_debug(folder: str, prefix: str, batch: dict, heatmaps_pred: np.ndarray, data_config,
                     layout: KeypointLayout, what: Sequence[str]) -> None:
    """Write `<prefix>_{gt,pred,hm_gt,hm_pred}.jpg` for the parts listed in `what`.

    batch: numpy arrays of a TopDownPoseDataset batch; heatmaps_pred [N, K, h, w] of the last stack.
    """
    os.makedirs(folder, exist_ok=True)
    crops = denormalize(batch['image'], data_config.mean, data_config.std, data_config.color_rgb)
    stride = data_config.input_wh[0] / data_config.heatmap_wh[0]
    pictures = {
        'gt': lambda: joints_grid(crops, batch['joints'], batch['joints_vis'], layout),
        'pred': lambda: joints_grid(crops, get_max_preds(heatmaps_pred)[0] * stride, None, layout),
        'hm_gt': lambda: heatmaps_grid(crops, batch['target']),
        'hm_pred': lambda: heatmaps_grid(crops, heatmaps_pred),
    }
    for name in what:
        cv2.imwrite(os.path.join(folder, f'{prefix}_{name}.jpg'), pictures[name]())

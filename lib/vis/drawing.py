"""Drawing keypoints and skeletons on images (OpenCV, BGR)."""
from typing import Sequence, Tuple

import cv2
import numpy as np

from lib.datasets.skeletons import KeypointLayout

LEFT_BGR, RIGHT_BGR, CENTRE_BGR = (255, 255, 0), (0, 255, 255), (255, 255, 255)   # cyan, yellow, white


def joint_color(layout: KeypointLayout, joint: int) -> Tuple[int, int, int]:
    if layout.is_left(joint):
        return LEFT_BGR
    return RIGHT_BGR if layout.is_right(joint) else CENTRE_BGR


def draw_skeleton(image: np.ndarray, joints: np.ndarray, layout: KeypointLayout, visible: Sequence[bool] = None,
                  thickness: int = 2, radius: int = 3) -> np.ndarray:
    """Draw joints [K, 2] (x, y pixels) and their limbs on a copy of image [H, W, 3] BGR; left limbs
    cyan, right limbs yellow, centre white. Joints with visible False are not drawn."""
    out = image.copy()
    visible = np.ones(len(joints), bool) if visible is None else np.asarray(visible, bool)
    point = lambda k: (int(round(joints[k][0])), int(round(joints[k][1])))  # noqa: E731
    limbs = [(a, b) for a, b in layout.skeleton if visible[a] and visible[b]]
    for a, b in limbs:           # a dark outline first, so the skeleton stands out on any background
        cv2.line(out, point(a), point(b), (0, 0, 0), thickness + 2, cv2.LINE_AA)
    for a, b in limbs:
        side = b if layout.is_left(b) or layout.is_right(b) else a
        cv2.line(out, point(a), point(b), joint_color(layout, side), thickness, cv2.LINE_AA)
    for k in range(len(joints)):
        if visible[k]:
            cv2.circle(out, point(k), radius + 1, (0, 0, 0), -1, cv2.LINE_AA)
            cv2.circle(out, point(k), radius, joint_color(layout, k), -1, cv2.LINE_AA)
    return out


def image_grid(tiles: Sequence[np.ndarray], columns: int, pad: int = 4) -> np.ndarray:
    """Tiles of equal size [h, w, 3] in a grid with a white border."""
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = tile
    return grid

"""The training-time heatmap accuracy (SPEC D.4), logged by the training loop. The evaluation metrics live
with their dataset: lib/core/mpii_eval.py (PCKh) and lib/core/coco_eval.py (keypoint AP)."""
import numpy as np

from lib.datasets.heatmaps import get_max_preds
from lib.utils.errors import NonFinite


def heatmap_accuracy(output: np.ndarray, target: np.ndarray, threshold: float = 0.5) -> float:
    """HRNet's training accuracy (SPEC D.4), logging only: share of joints whose argmax lies within
    threshold x (h/10, w/10) of the target's argmax. Joints whose target peak is at x <= 1 or y <= 1
    (including absent ones) are ignored; returns 0 when none count."""
    _, _, h, w = output.shape
    pred, _ = get_max_preds(output)
    gt, _ = get_max_preds(target)
    norm = np.array([h, w], dtype=np.float32) / 10
    valid = (gt[:, :, 0] > 1) & (gt[:, :, 1] > 1)                              # [N, K]
    dist = np.linalg.norm((pred - gt) / norm, axis=2)                          # [N, K]
    per_joint = [np.mean(dist[valid[:, k], k] < threshold) for k in range(output.shape[1]) if valid[:, k].any()]
    return float(np.mean(per_joint)) if per_joint else 0.0


def require_finite_predictions(*arrays: np.ndarray) -> None:
    """Refuse predicted coordinates or scores that are NaN or inf: a score of such predictions would be
    meaningless (PCKh counts them as misses) and a results JSON holding them is not valid JSON."""
    bad = sum(int(np.sum(~np.isfinite(a))) for a in arrays)
    if bad:
        raise NonFinite(f'{bad} predicted values are NaN or inf: the model\'s heatmaps were not finite. Check the '
                        'weights (python tools/model_info.py --pretrained_model ...) and the input normalisation.')

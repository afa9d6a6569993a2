"""The dygraph inference backend: a .pdparams run in Paddle's dynamic graph."""
from typing import Optional

import numpy as np
import paddle

from lib.inference.conventions import conventions_for_weights
from lib.models import build_model_from
from lib.inference.foreign_weights import load_pretrained
from lib.utils.device import select_device
from lib.utils.threads import use_cpu_threads


class DygraphBackend:
    """A .pdparams run in Paddle's dynamic graph; the architecture comes from the config.json beside the
    weights (or in their parent folder), else the hourglass preset (see conventions_for_weights). `threads`: CPU
    math threads (default lib/utils/threads.default_threads: OMP_NUM_THREADS, else every available core)."""

    def __init__(self, weights_path: str, device: str = 'auto', threads: Optional[int] = None):
        self.threads = use_cpu_threads(threads)
        self.conventions = conventions_for_weights(weights_path)
        self.device = select_device(device)
        self.model = build_model_from(self.conventions.model)
        load_pretrained(self.model, weights_path)
        self.model.eval()

    @paddle.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        """images [N, 3, H, W] float32 -> heatmaps [N, K, h, w] float32 of the last stack."""
        outputs = self.model(paddle.to_tensor(np.ascontiguousarray(images, dtype=np.float32)))
        return outputs[-1].astype('float32').numpy()

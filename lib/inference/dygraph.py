"""The dygraph inference backend: a .pdparams run in Paddle's dynamic graph."""
from typing import Optional

import numpy as np
import paddle

from lib.config import ModelConfig
from lib.convert.loading import load_weights
from lib.models import build_model_from
from lib.utils.device import select_device
from lib.utils.threads import use_cpu_threads


class DygraphBackend:
    """A .pdparams (any layout lib/convert/loading.load_weights reads) run in Paddle's dynamic graph as the
    network `model_config` describes. `threads`: CPU math threads (default lib/utils/threads.default_threads:
    OMP_NUM_THREADS, else every available core)."""

    def __init__(self, weights_path: str, model_config: ModelConfig, device: str = 'auto',
                 threads: Optional[int] = None):
        self.threads = use_cpu_threads(threads)
        self.device = select_device(device)
        self.model = build_model_from(model_config)
        load_weights(self.model, weights_path)
        self.model.eval()

    @classmethod
    def from_config(cls, path: str, config, threads: Optional[int] = None, saved=None) -> 'DygraphBackend':
        return cls(path, config.model, config.device, threads=threads)

    @paddle.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        """images [N, 3, H, W] float32 -> heatmaps [N, K, h, w] float32 of the last stack."""
        outputs = self.model(paddle.to_tensor(np.ascontiguousarray(images, dtype=np.float32)))
        return outputs[-1].astype('float32').numpy()

"""Top-down pose prediction on whole images: person boxes -> crops -> heatmaps -> keypoints in image pixels.

The geometry is the one the models were validated with: SimpleBaselines / HRNet's box -> (centre, scale)
(`_xywh2cs`: the box centre, the aspect ratio fixed to the input's, x 1.25), the crop, the flip test and the
decoding of the model's codec (lib/datasets/codec.py: HRNet's, DARK's or UDP's, as validation), normalize_image.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from lib.datasets.codec import HeatmapCodec, codec_for
from lib.datasets.heatmaps import flip_test
from lib.datasets.skeletons import KeypointLayout, layout_for
from lib.datasets.transforms import box_to_center_scale, crop_image, normalize_image
from lib.utils.errors import BadValue

# images [N, 3, H, W] float32 -> heatmaps [N, K, h, w] (or a list of them, one per stack, last = prediction)
Backend = Callable[[np.ndarray], object]


def last_stack(outputs) -> np.ndarray:
    """A backend's output as heatmaps [N, K, h, w] float32: the last of a list of stacks, or the array."""
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[-1]
    heatmaps = np.asarray(outputs, dtype=np.float32)
    if heatmaps.ndim != 4:
        raise ValueError(f'the backend returned heatmaps of shape {heatmaps.shape}; expected [N, K, h, w] '
                         '(or a list of them, one per stack).')
    return heatmaps


class PosePredictor:
    """Keypoints of the people in an image, given their boxes.

    backend: images [N, 3, H, W] float32 (normalised crops) -> heatmaps [N, K, h, w] or a list of them.
    input_wh, mean, std, color_rgb: the crop size and pixel normalisation the model was trained with.
    flip_test, shift_heatmap, post_process: as TestConfig. layout: joint flip pairs (K must match).
    batch_size: people per backend call (the flip test makes a second call of the same size).
    codec: the crop and decoding (HeatmapCodec); default HRNet's with shift_heatmap, post_process and
    decode_offset, as from_config builds it from the model's DataConfig and TestConfig.
    """

    def __init__(self, backend: Backend, input_wh: Tuple[int, int], mean: Sequence[float], std: Sequence[float],
                 color_rgb: bool, layout: KeypointLayout, flip_test: bool = True, shift_heatmap: bool = True,
                 post_process: bool = True, batch_size: int = 32, decode_offset: float = 0.0,
                 codec: Optional[HeatmapCodec] = None):
        if batch_size < 1:
            raise BadValue(f'batch_size must be at least 1; received {batch_size}.')
        self.backend = backend
        self.input_wh = (int(input_wh[0]), int(input_wh[1]))
        self.mean, self.std, self.color_rgb = tuple(mean), tuple(std), bool(color_rgb)
        self.layout = layout
        self.flip_test, self.shift_heatmap, self.post_process = flip_test, shift_heatmap, post_process
        self.decode_offset = decode_offset
        self.batch_size = int(batch_size)
        self.codec = codec or HeatmapCodec(input_wh=self.input_wh, refine=post_process, offset=decode_offset,
                                           shift_heatmap=shift_heatmap)

    @classmethod
    def from_config(cls, backend: Backend, config, batch_size: Optional[int] = None) -> 'PosePredictor':
        """As the TrainConfig `config` describes the input (config.data) and the test (config.test)."""
        model, data, test = config.model, config.data, config.test
        return cls(backend, data.input_wh, data.mean, data.std, data.color_rgb, layout_for(model.num_joints),
                   flip_test=test.flip_test, shift_heatmap=test.shift_heatmap, post_process=test.post_process,
                   batch_size=batch_size or test.batch_size, decode_offset=test.decode_offset,
                   codec=codec_for(data, test))

    def __call__(self, image: np.ndarray, boxes: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """image [H, W, 3] BGR uint8, boxes [M, 4] (x, y, w, h) pixels; None = the whole image is one person.

        Returns keypoints [M, K, 2] (x, y) in 0-based image pixels and scores [M, K] (heatmap maxima).
        """
        return self.predict_many([image], [boxes])[0]

    def predict_many(self, images: Sequence[np.ndarray], boxes: Sequence[Optional[np.ndarray]]
                     ) -> List[Tuple[np.ndarray, np.ndarray]]:
        """As __call__ for several images at once; the people of all images share backend batches."""
        if len(images) != len(boxes):
            raise BadValue(f'{len(images)} images but {len(boxes)} box arrays; give one (or None) per image.')
        crops, centers, scales, owners = [], [], [], []
        for i, (image, image_boxes) in enumerate(zip(images, boxes)):
            for box in self._boxes(image, image_boxes):
                center, scale = box_to_center_scale(box, self.input_wh)
                crop, _ = crop_image(image, center, scale, 0, self.input_wh, self.codec.udp)
                if self.color_rgb:   # a channel swap commutes with the warp: convert the small crop only
                    crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
                crops.append(normalize_image(crop, self.mean, self.std))
                centers.append(center)
                scales.append(scale)
                owners.append(i)
        keypoints = np.zeros((len(crops), self.layout.num_joints, 2), np.float64)
        scores = np.zeros((len(crops), self.layout.num_joints), np.float32)
        for start in range(0, len(crops), self.batch_size):
            end = start + self.batch_size
            heatmaps = self.predict_heatmaps(np.stack(crops[start:end]))
            preds, maxvals = self.codec.decode(heatmaps, np.stack(centers[start:end]), np.stack(scales[start:end]))
            keypoints[start:end], scores[start:end] = preds, maxvals[..., 0]
        owners = np.asarray(owners, dtype=np.int64)
        return [(keypoints[owners == i], scores[owners == i]) for i in range(len(images))]

    def predict_heatmaps(self, crops: np.ndarray) -> np.ndarray:
        """Heatmaps [N, K, h, w] of normalised crops [N, 3, H, W], averaged with the mirrored crops' when
        flip_test (as lib/core/engine.predict_heatmaps; the one-column shift as the codec's flip_shift)."""
        return flip_test(self._run, crops, self.layout.flip_pairs, self.flip_test, self.codec.flip_shift)

    def _run(self, crops: np.ndarray) -> np.ndarray:
        heatmaps = last_stack(self.backend(crops))
        if heatmaps.shape[:2] != (crops.shape[0], self.layout.num_joints):
            raise ValueError(f'the backend returned heatmaps {heatmaps.shape} for {crops.shape[0]} crops; expected '
                             f'[{crops.shape[0]}, {self.layout.num_joints}, h, w] for the {self.layout.name} layout.')
        return heatmaps

    @staticmethod
    def _boxes(image: np.ndarray, boxes: Optional[np.ndarray]) -> np.ndarray:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise BadValue(f'image must be [H, W, 3] uint8 BGR; received {image.dtype} {image.shape}.')
        if boxes is None:
            return np.array([[0, 0, image.shape[1], image.shape[0]]], dtype=np.float32)
        boxes = np.asarray(boxes, dtype=np.float32)
        if boxes.size == 0:
            return np.zeros((0, 4), np.float32)
        if boxes.shape == (4,):
            boxes = boxes[None]
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise BadValue(f'boxes must be [M, 4] (x, y, w, h); received shape {boxes.shape}.')
        if np.any(boxes[:, 2:] <= 0):
            bad = boxes[np.any(boxes[:, 2:] <= 0, axis=1)][0]
            raise BadValue(f'boxes are (x, y, w, h) with w, h > 0; received {bad.tolist()}.')
        return boxes

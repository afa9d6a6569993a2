"""The heatmap codec of a run: which crop, which target and which decoder, as numbers (STYLE 2.5), with the
one encode and the one decode entry point that training, validation, the oracle, infer.py and every exported
backend use.

    encoding   data.udp  data.unbiased_encoding   target                               crop
    'hrnet'    off       off                       HRNet: centre rounded to a pixel     HRNet get_affine_transform
    'unbiased' off       on                        DARK: centre at the exact position   HRNet
    'udp'      on        -                         UDP: exact centre, (size-1) spacing  UDP (MMPose)

    decoder    test.decode                 refinement of the argmax                    back to image pixels
    'quarter'  quarter (default, paper)    HRNet's 0.25 px toward the higher neighbour  HRNet (transform_preds)
    'dark'     dark                        DARK's Taylor step (refine_dark)             HRNet's map in float64 (MMPose)
    'dark-udp' any, with data.udp          MMPose's DARK-UDP step (refine_dark_udp)     UDP, (size-1) spacing

test.post_process off decodes the plain argmax (no refinement) in all three. The flip test averages with the
flipped-back heatmaps; HRNet's one-column shift (test.shift_heatmap) applies without UDP only: under UDP the
flip is exact (a crop pixel x mirrors to w - 1 - x, a heatmap pixel likewise), and MMPose's UDP configs set
shift_heatmap=False. README "DARK and UDP" lists where MMPose and HRNet differ and which each option follows.
"""
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np

from lib.config import DECODERS
from lib.datasets.dark import blur_kernel_for, refine_dark, unbiased_target
from lib.datasets.heatmaps import (generate_target, get_max_preds, heatmap_to_image_coords, heatmap_to_image_exact,
                                   refine_quarter_offset)
from lib.datasets.transforms import crop_matrix
from lib.datasets.udp import refine_dark_udp, udp_heatmap_to_image, udp_target


class HeatmapCodec(NamedTuple):
    """Encode joints of a crop to target heatmaps and decode heatmaps to image pixels.

    input_wh, heatmap_wh: (width, height) of the crop and of the heatmaps; sigma: target sigma (heatmap px).
    udp, unbiased: the encoding (table above); decoder: 'quarter' or 'dark' (ignored under udp: 'dark-udp').
    refine: test.post_process; offset: test.decode_offset (heatmap px added before mapping back);
    blur_kernel: DARK's modulation kernel, 0 = blur_kernel_for(sigma); shift_heatmap: test.shift_heatmap.
    """
    input_wh: Tuple[int, int] = (256, 256)
    heatmap_wh: Tuple[int, int] = (64, 64)
    sigma: float = 2.0
    udp: bool = False
    unbiased: bool = False
    decoder: str = 'quarter'
    refine: bool = True
    offset: float = 0.0
    blur_kernel: int = 0
    shift_heatmap: bool = True

    @property
    def encoding(self) -> str:
        return 'udp' if self.udp else ('unbiased' if self.unbiased else 'hrnet')

    @property
    def method(self) -> str:
        """The decoder that runs: 'quarter', 'dark' or 'dark-udp' (and '+argmax only' without refinement)."""
        name = 'dark-udp' if self.udp else self.decoder
        return name if self.refine else f'{name} (argmax only)'

    @property
    def kernel(self) -> int:
        return self.blur_kernel or blur_kernel_for(self.sigma)

    @property
    def flip_shift(self) -> bool:
        """Whether the flip test shifts the flipped-back heatmaps one column (HRNet; never under UDP)."""
        return self.shift_heatmap and not self.udp

    def crop_matrix(self, center: Sequence[float], scale, rot: float = 0.0) -> np.ndarray:
        """2x3 matrix from image pixels to the crop (input_wh)."""
        return crop_matrix(center, scale, rot, self.input_wh, self.udp)

    def encode(self, joints: np.ndarray, joints_vis: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """joints [K, 2] in crop pixels, joints_vis [K] -> target [K, h, w] float32, target_weight [K, 1]."""
        encode = udp_target if self.udp else (unbiased_target if self.unbiased else generate_target)
        return encode(joints, joints_vis, self.input_wh, self.heatmap_wh, self.sigma)

    def decode(self, heatmaps: np.ndarray, centers: np.ndarray, scales: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Heatmaps [N, K, h, w] of crops (centers [N, 2], scales [N, 2]) -> preds [N, K, 2] in 0-based
        original-image pixels (float64) and maxvals [N, K, 1]. A joint whose maximum is <= 0 stays at the
        heatmap's (0, 0), unrefined (HRNet's get_max_preds)."""
        coords, maxvals = get_max_preds(heatmaps)
        if self.refine:
            if self.udp:
                coords = refine_dark_udp(coords, heatmaps, self.kernel, valid=maxvals[..., 0] > 0)
            elif self.decoder == 'dark':
                coords = refine_dark(coords, heatmaps, self.kernel)
            elif self.decoder == 'quarter':
                coords = refine_quarter_offset(coords, heatmaps)
            else:
                raise ValueError(f'unknown decoder {self.decoder!r}; choose one of {DECODERS}.')
        coords = coords + self.offset if self.offset else coords
        heatmap_wh = (heatmaps.shape[3], heatmaps.shape[2])
        if self.udp:
            to_image = udp_heatmap_to_image
        else:    # quarter: HRNet's float32 matrix, its figures to the bit; dark: the same map in float64, as MMPose
            to_image = heatmap_to_image_exact if self.decoder == 'dark' else heatmap_to_image_coords
        if not len(coords):
            return coords.astype(np.float64), maxvals
        preds = np.stack([to_image(coords[i], centers[i], scales[i], heatmap_wh) for i in range(coords.shape[0])])
        return preds, maxvals


def codec_for(data: Optional[object], test: Optional[object] = None) -> HeatmapCodec:
    """The codec of a DataConfig and a TestConfig (lib/config.py); None: that part's defaults."""
    fields = {}
    if data is not None:
        fields.update(input_wh=tuple(data.input_wh), heatmap_wh=tuple(data.heatmap_wh), sigma=float(data.sigma),
                      udp=bool(data.udp), unbiased=bool(data.unbiased_encoding))
    if test is not None:
        fields.update(decoder=test.decode, refine=bool(test.post_process), offset=float(test.decode_offset),
                      blur_kernel=int(test.blur_kernel), shift_heatmap=bool(test.shift_heatmap))
    return HeatmapCodec(**fields)

"""Image reading for the data pipeline: OpenCV decode, optionally at 1/2, 1/4 or 1/8 resolution (libjpeg's
DCT-domain scaling), and a JPEG header reader that gives the size before any pixel is decoded.

Reduced decoding pays off when the person box is much larger than the network input: the crop is
resampled by a factor k = input_w / src_w < 1 anyway, so decoding every full-resolution pixel is wasted
work. Pixel (u, v) of an image decoded at 1/r covers full-resolution pixels [r*u, r*u + r) and its
centre is the centre of that block, x_full = r*u + (r - 1) / 2 (checked against a full decode followed
by cv2.resize INTER_AREA in tests/test_reduced_decode.py).
"""
import os
from typing import Optional, Tuple

import cv2
import numpy as np

from lib.utils.errors import UnreadableFile

REDUCTIONS = (1, 2, 4, 8)   # the factors libjpeg can decode at directly
_READ_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
               8: cv2.IMREAD_REDUCED_COLOR_8}
# Start-of-frame markers hold the frame size: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_LOSSLESS_SOF_MARKERS = frozenset([0xC3, 0xC7, 0xCB, 0xCF])   # no DCT, so libjpeg cannot decode them scaled
_STANDALONE_MARKERS = frozenset([0x01, *range(0xD0, 0xD8)])   # TEM and RST0-7 carry no length field


def jpeg_size(path: str) -> Optional[Tuple[int, int]]:
    """(width, height) of a JPEG file from its start-of-frame header, reading only the header bytes.

    Returns None when the file is not a JPEG, the header is truncated or malformed, the height is left
    to a DNL marker (height 0), or the frame is lossless (which libjpeg decodes at full size only):
    callers then decode the whole image. The size is the stored one; EXIF orientation is ignored, as
    read_image does.
    """
    try:
        with open(path, 'rb') as f:
            if f.read(2) != b'\xff\xd8':   # SOI
                return None
            while True:
                if f.read(1) != b'\xff':   # every segment starts with a marker
                    return None
                marker = f.read(1)
                while marker == b'\xff':   # optional fill bytes before the marker code
                    marker = f.read(1)
                if not marker:
                    return None
                code = marker[0]
                if code in _STANDALONE_MARKERS:
                    continue
                if code in (0xD9, 0xDA):   # EOI or SOS before any frame header
                    return None
                length_bytes = f.read(2)
                if len(length_bytes) < 2:
                    return None
                length = int.from_bytes(length_bytes, 'big')   # includes its own two bytes
                if length < 2:
                    return None
                if code in _LOSSLESS_SOF_MARKERS:
                    return None
                if code in _SOF_MARKERS:
                    frame = f.read(5)   # sample precision (1 byte), height (2), width (2)
                    if len(frame) < 5:
                        return None
                    height, width = int.from_bytes(frame[1:3], 'big'), int.from_bytes(frame[3:5], 'big')
                    return (width, height) if width > 0 and height > 0 else None
                f.seek(length - 2, os.SEEK_CUR)
    except OSError:
        return None


def reduction_for_crop(src_w: float, input_w: int, margin: float) -> int:
    """Largest r in REDUCTIONS with src_w / r >= input_w * margin (1 when the crop is not that large).

    src_w is the (augmented) box side in full-resolution pixels and input_w the crop width it is
    resampled to, so the reduced image keeps at least `margin` source pixels per output pixel.
    """
    reduction = 1
    for r in REDUCTIONS[1:]:
        if src_w / r >= input_w * margin:
            reduction = r
    return reduction


def reduced_pixel_matrix(reduction: int, x_offset: float = 0.0) -> np.ndarray:
    """3x3 homogeneous map from pixels of a 1/r decode to full-resolution pixels.

    x_full = r*u + (r - 1)/2 + x_offset, y_full = r*v + (r - 1)/2: each reduced pixel sits at the centre
    of the r x r block it covers. Compose as M_full @ this (M_full: the 2x3 crop matrix in full-resolution
    pixels) to warp the reduced image. x_offset is for a mirrored reduced image (see flipped_x_offset).
    """
    half = (reduction - 1) / 2.0
    return np.array([[reduction, 0.0, half + x_offset], [0.0, reduction, half], [0.0, 0.0, 1.0]])


def flipped_x_offset(full_width: int, reduced_width: int, reduction: int) -> float:
    """x_offset for reduced_pixel_matrix after cv2.flip(reduced image, 1), in full-resolution pixels.

    The full-image flip is x -> W - x - 1 (HRNet). Mirroring a 1/r decode of width w_r = ceil(W / r)
    maps reduced column u to w_r - 1 - u, which equals the full-image flip only when W = r * w_r; the
    difference W - r * w_r (0 or negative) is this offset.
    """
    return float(full_width - reduction * reduced_width)


def _main_scan_offset(data: bytes) -> int:
    """Offset of the main image's first start-of-scan marker, found by walking the segments from the SOI (an
    EXIF thumbnail inside APP1 holds markers of its own), or -1 when the header is malformed or cut short."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return -1
        while pos + 1 < len(data) and data[pos + 1] == 0xFF:    # fill bytes before the marker code
            pos += 1
        code = data[pos + 1]
        if code in _STANDALONE_MARKERS:
            pos += 2
            continue
        if code == 0xDA:
            return pos
        if code == 0xD9:
            return -1
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], 'big')
    return -1


def jpeg_is_complete(data: bytes) -> bool:
    """Whether a JPEG's bytes hold the end-of-image marker (FF D9) after the main image's scan data.

    libjpeg decodes a truncated file without an error (it warns "Premature end of JPEG file" and fills the
    missing rows with grey), so the check is made here. Inside entropy-coded data an FF byte is always
    followed by 00 or a restart marker, so an FF D9 after the first start-of-scan is the end of the image.
    """
    scan = _main_scan_offset(data)
    return scan >= 0 and data.find(b'\xff\xd9', scan + 2) >= 0


def read_image(path: str, color_rgb: bool, reduction: int = 1) -> np.ndarray:
    """Read an image [H, W, 3] uint8 with OpenCV, ignoring EXIF orientation as the references do.

    reduction 2, 4 or 8 decodes at that fraction of the resolution, ceil(W / r) x ceil(H / r) for JPEG
    (OpenCV resizes other formats after a full decode). A missing, undecodable or truncated file is an
    UnreadableFile naming it: training and evaluation never run on the grey rows libjpeg puts in the place
    of a truncated file's missing data.
    """
    if reduction not in _READ_FLAGS:
        raise ValueError(f'reduction={reduction!r} is not supported; use one of {REDUCTIONS} '
                         '(the factors libjpeg decodes at).')
    fix = ('Check that the images/ folder of the dataset is complete (re-extract the archive), or remove the '
           'entries that use this image.')
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as error:
        reason = 'it does not exist' if not os.path.exists(path) else error.strerror
        raise UnreadableFile(f'cannot read image {path}: {reason}. {fix}') from None
    if data[:2] == b'\xff\xd8' and not jpeg_is_complete(data):
        raise UnreadableFile(f'cannot read image {path}: the JPEG is truncated ({len(data)} bytes, no end-of-image '
                             f'marker), so its lower part would be grey. {fix}')
    if not data:
        raise UnreadableFile(f'cannot read image {path}: the file is empty (0 bytes). {fix}')
    image = cv2.imdecode(np.frombuffer(data, np.uint8), _READ_FLAGS[reduction] | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise UnreadableFile(f'cannot read image {path}: OpenCV cannot decode it (not an image, or a format this '
                             f'OpenCV build lacks). {fix}')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if color_rgb else image

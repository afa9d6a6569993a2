"""Reduced-resolution JPEG decoding (DataConfig.reduced_decode): the header reader, the pixel-centre
convention of libjpeg's scaled decode, and the dataset contract that targets and joints do not change
while crops change by a measured, small amount."""
import os
from typing import NamedTuple

import cv2
import numpy as np
import pytest

from lib.config import DataConfig
from lib.datasets import pose_dataset
from lib.datasets.heatmaps import generate_target
from lib.datasets.image_io import (flipped_x_offset, jpeg_size, read_image, reduced_pixel_matrix,
                                   reduction_for_crop)
from lib.datasets.mpii import load_mpii_annotations
from lib.datasets.pose_dataset import REDUCED_DECODE_MARGIN, TopDownPoseDataset, normalize_image
from lib.datasets.skeletons import MPII
from lib.datasets.transforms import (affine_transform_points, crop_image, flip_joints, get_affine_transform,
                                     random_scale_rotation)
from tests.helpers import require_real_mpii

IMAGE_SIZES = [(1280, 720), (1281, 721)]   # the odd one exercises ceil(W / r) and the flip offset
NUM_RECORDS = 12

# |crop diff| (grey levels, 0-255) between reduced and full decode over the interior pixels of the reduced
# samples, bounds on (mean, 99th percentile). Measured (OpenCV 5.0.0, 256 and 384 px inputs, train and val):
# synthetic mean 1.3-1.5, p99 9-11; the 5 real MPII images mean 1.9-2.8, p99 19-27. The full-resolution
# crop's aliasing accounts for most of it (test_reduced_crops_alias_no_worse_than_full_resolution_crops).
BOUNDS = {'synthetic': (2.0, 15.0), 'real_mpii': (3.5, 35.0)}
# The wrong pixel convention must raise the mean |diff| by at least this factor; measured: top-left
# centres 1.67x (synthetic and real), no flip offset on a 1281 px wide image 2.0x.
WRONG_RATIO = 1.4


def textured_image(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A photo-like [H, W, 3] uint8: smooth shading, grey texture at 1, 3 and 10 px scales (roughly 1/f, and
    with smooth colour, as in photographs), hard-edged coloured shapes and sensor noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = rng.uniform(40, 200, 3) + (xx / width)[..., None] * rng.uniform(-60, 60, 3) \
        + (yy / height)[..., None] * rng.uniform(-60, 60, 3)
    for sigma, amplitude in ((1.0, 4.0), (3.0, 8.0), (10.0, 15.0)):   # blurred white noise of that std
        noise = rng.normal(0, amplitude * 2 * np.sqrt(np.pi) * sigma, (height, width)).astype(np.float32)
        image = image + cv2.GaussianBlur(noise, (0, 0), sigma)[..., None]
    image = np.clip(image + rng.normal(0, 2, (height, width, 3)), 0, 255).astype(np.uint8)
    for _ in range(40):
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y, r = int(rng.integers(0, width)), int(rng.integers(0, height)), int(rng.integers(5, 120))
        if rng.random() < 0.5:
            cv2.circle(image, (x, y), r, color, -1 if rng.random() < 0.5 else 3, cv2.LINE_AA)
        else:
            cv2.rectangle(image, (x, y), (x + r, y + int(rng.integers(5, 120))), color, -1)
    return image


def write_jpeg(path: str, image: np.ndarray, progressive: bool = False) -> str:
    ok = cv2.imwrite(path, image, [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)])
    if not ok:
        raise OSError(f'cv2.imwrite could not write {path}')
    return path


def make_records(rng: np.random.Generator, names, sizes, box_range):
    """MPII-like records whose box side (scale * 200) is drawn from box_range, some joints unannotated."""
    records = []
    for i in range(NUM_RECORDS):
        (w, h), box = sizes[i % len(sizes)], rng.uniform(*box_range)
        center = np.array([rng.uniform(0.3 * w, 0.7 * w), rng.uniform(0.3 * h, 0.7 * h)])
        joints = np.clip(center + rng.uniform(-0.4, 0.4, (MPII.num_joints, 2)) * box, 0, [w - 1, h - 1])
        vis = (rng.random(MPII.num_joints) > 0.15).astype(np.float64)
        records.append({'image': names[i % len(names)], 'center': center, 'scale': np.full(2, box / 200.0),
                        'joints': joints * vis[:, None], 'joints_vis': vis})
    return records


@pytest.fixture(scope='module')
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp('reduced')
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate(IMAGE_SIZES):
        write_jpeg(str(folder / f'{i}.jpg'), textured_image(rng, w, h))
    return str(folder)


def make_dataset(image_dir, records, reduced, is_train=True, input_side=256, mean_std=True):
    extra = {} if mean_std else {'mean': (0.0, 0.0, 0.0), 'std': (1.0, 1.0, 1.0), 'color_rgb': False}
    config = DataConfig(dataset_root=image_dir, input_wh=(input_side, input_side),
                        heatmap_wh=(input_side // 4, input_side // 4), reduced_decode=reduced, **extra)
    return TopDownPoseDataset(records, image_dir, MPII, config, is_train=is_train)


def keys(n, seed=5, epochs=(0, 1)):
    return [(i, seed, e) for e in epochs for i in range(n)]


# ---------------------------------------------------------------- jpeg_size

@pytest.mark.parametrize('progressive', [False, True])
@pytest.mark.parametrize('wh', [(1280, 720), (1281, 721), (997, 613), (9, 7), (1, 1)])
def test_jpeg_size_reads_baseline_and_progressive_headers(tmp_path, wh, progressive):
    image = textured_image(np.random.default_rng(1), *wh) if wh[0] > 100 else np.full((wh[1], wh[0], 3), 7, np.uint8)
    path = write_jpeg(str(tmp_path / 'a.jpg'), image, progressive)
    data = open(path, 'rb').read()
    assert (b'\xff\xc2' in data) == progressive and (b'\xff\xc0' in data) != progressive   # SOF2 vs SOF0
    assert jpeg_size(path) == wh


def test_jpeg_size_skips_segments_by_length_and_reads_grayscale(tmp_path):
    path = write_jpeg(str(tmp_path / 'g.jpg'), np.full((33, 65), 128, np.uint8))
    data = open(path, 'rb').read()
    # An APP1 (EXIF-like) segment whose payload contains a fake SOF0 of 999x888, then fill bytes.
    payload = b'Exif\x00\x00' + b'\xff\xc0\x00\x11\x08\x03\x78\x03\xe7' + bytes(200)
    segment = b'\xff\xe1' + (len(payload) + 2).to_bytes(2, 'big') + payload + b'\xff\xff'
    with open(path, 'wb') as f:
        f.write(data[:2] + segment + data[2:])
    assert jpeg_size(path) == (65, 33)
    assert cv2.imread(path, cv2.IMREAD_REDUCED_COLOR_2).shape == (17, 33, 3)


def test_jpeg_size_returns_none_for_other_or_broken_files(tmp_path):
    png = str(tmp_path / 'a.png')
    cv2.imwrite(png, np.zeros((10, 20, 3), np.uint8))
    jpeg = write_jpeg(str(tmp_path / 'a.jpg'), np.zeros((10, 20, 3), np.uint8))
    truncated, garbage, empty = (str(tmp_path / n) for n in ('t.jpg', 'g.jpg', 'e.jpg'))
    with open(truncated, 'wb') as f:
        f.write(open(jpeg, 'rb').read()[:30])   # SOI and part of APP0: no frame header
    with open(garbage, 'wb') as f:
        f.write(b'\xff\xd8not a jpeg at all')
    open(empty, 'wb').close()
    lossless = str(tmp_path / 'l.jpg')   # a lossless (SOF3) frame header: libjpeg would not scale it
    with open(lossless, 'wb') as f:
        f.write(b'\xff\xd8\xff\xc3\x00\x11\x08\x00\x0a\x00\x14\x03' + bytes(9))
    for path in (png, truncated, garbage, empty, lossless, str(tmp_path / 'absent.jpg')):
        assert jpeg_size(path) is None, path


def test_non_jpeg_images_fall_back_to_a_full_decode(tmp_path):
    image = textured_image(np.random.default_rng(2), 1280, 720)
    cv2.imwrite(str(tmp_path / 'p.png'), image)
    record = make_records(np.random.default_rng(3), ['p.png'], [(1280, 720)], (900, 1000))[:1]
    reduced, full = (make_dataset(str(tmp_path), record, flag, is_train=False) for flag in (True, False))
    assert reduced.plan_sample(0).reduction == 1
    for name in ('image', 'target', 'joints'):
        np.testing.assert_array_equal(reduced[0][name], full[0][name])


# ---------------------------------------------------------------- decoding and its geometry

def test_reduced_decode_size_is_ceil_and_bad_factors_are_refused(tmp_path):
    path = write_jpeg(str(tmp_path / 'a.jpg'), textured_image(np.random.default_rng(4), 997, 613))
    for r in (2, 4, 8):
        assert read_image(path, color_rgb=True, reduction=r).shape == (-(-613 // r), -(-997 // r), 3)
    with pytest.raises(ValueError, match='reduction=3 is not supported; use one of'):
        read_image(path, color_rgb=False, reduction=3)
    assert pose_dataset.read_image is read_image   # still importable from the old place


def test_reduced_pixels_sit_at_block_centres(image_dir):
    """A 1/r decode matches the full decode box-averaged over r x r blocks (cv2.resize INTER_AREA) with no
    shift, so x_full = r*u + (r-1)/2; the top-left convention x_full = r*u is a shift of -(r-1)/(2r)
    reduced pixels. Measured: best shift 0.00 in x and y (0.01 px grid), 0.2-0.5 grey levels there, 4-30x
    more at the top-left shift (also on real MPII images)."""
    path = os.path.join(image_dir, '0.jpg')   # 1280x720: whole blocks for r = 2, 4, 8
    full = read_image(path, color_rgb=False)
    for r in (2, 4, 8):
        reduced = read_image(path, color_rgb=False, reduction=r).astype(np.float32)
        area = cv2.resize(full, reduced.shape[1::-1], interpolation=cv2.INTER_AREA).astype(np.float32)

        def error(shift_x, shift_y):   # the area image sampled at (u + shift_x, v + shift_y), borders left out
            shifted = cv2.warpAffine(area, np.float64([[1, 0, shift_x], [0, 1, shift_y]]), area.shape[1::-1],
                                     flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
            return np.abs(shifted - reduced)[4:-4, 4:-4].mean()

        shifts = np.linspace(-0.1, 0.1, 21)
        # 0.00 with OpenCV 5 (libjpeg-turbo 3), -0.01 with OpenCV 4.11: either way nowhere near top-left's
        assert abs(shifts[np.argmin([error(s, 0.0) for s in shifts])]) <= 0.02, r
        assert abs(shifts[np.argmin([error(0.0, s) for s in shifts])]) <= 0.02, r
        assert error(0.0, 0.0) < 1.0
        top_left = -(r - 1) / (2 * r)
        assert error(top_left, top_left) > 3 * error(0.0, 0.0)


def test_reduction_factor_is_one_unless_the_crop_is_large_enough():
    cases = [(100, 1), (511.9, 1), (512, 2), (1023, 2), (1024, 4), (2047, 4), (2048, 8), (9000, 8)]
    for src_w, expected in cases:
        assert reduction_for_crop(src_w, 256, 1.0) == expected, src_w
    assert reduction_for_crop(767, 384, 1.0) == 1 and reduction_for_crop(768, 384, 1.0) == 2
    assert reduction_for_crop(700, 256, 1.5) == 1 and reduction_for_crop(768, 256, 1.5) == 2


def test_flipped_reduced_image_maps_to_the_full_image_flip():
    """After cv2.flip of a 1/r decode, reduced column u' must land where the full flip x -> W - x - 1 puts it."""
    for width, r in [(1280, 2), (1281, 2), (1283, 4), (997, 8)]:
        reduced_w = -(-width // r)
        u = np.arange(reduced_w - 1, dtype=np.float64)    # the last column may be a partial block
        x_orig = r * u + (r - 1) / 2                      # block centres before flipping
        u_flipped = reduced_w - 1 - u
        mapped = reduced_pixel_matrix(r, flipped_x_offset(width, reduced_w, r))[0] @ np.stack(
            [u_flipped, np.zeros_like(u), np.ones_like(u)])
        np.testing.assert_allclose(mapped, width - 1 - x_orig)


# ---------------------------------------------------------------- the dataset

def crop_of(sample):
    """The uint8-valued crop [H, W, 3] back from a sample of a dataset with mean 0, std 1 (BGR)."""
    return sample['image'].transpose(1, 2, 0) * 255.0


def interior(sample, image_wh):
    """[H, W] bool: crop pixels whose bilinear footprint lies inside the image, at least one crop pixel away
    from its edge. Outside, both crops are the 0 border; along the edge the reduced decode's fade to 0 is
    one decoded pixel (r full pixels) wide instead of one full pixel, so the edge is compared apart."""
    side = sample['image'].shape[1:]
    matrix = get_affine_transform(sample['center'], sample['scale'], float(sample['rotation']), side[::-1])
    inside = cv2.warpAffine(np.full(image_wh[::-1], 255, np.uint8), matrix, side[::-1], flags=cv2.INTER_LINEAR)
    return cv2.erode((inside == 255).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0


def compare(image_dir, records, sample_keys, is_train=True, side=256):
    """|crop diffs| at interior pixels of the reduced samples (concatenated) and their number; targets,
    joints and the other outputs must be bit-identical, and so must the crops that were not reduced."""
    full_ds = make_dataset(image_dir, records, False, is_train, side, mean_std=False)
    reduced_ds = make_dataset(image_dir, records, True, is_train, side, mean_std=False)
    diffs, num_reduced = [], 0
    for key in sample_keys:
        full, reduced = full_ds[key], reduced_ds[key]
        plan = reduced_ds.plan_sample(key)
        for name in ('target', 'target_weight', 'joints', 'joints_vis', 'center', 'scale', 'rotation', 'index'):
            np.testing.assert_array_equal(reduced[name], full[name], err_msg=f'{name} of {key}')
        if plan.reduction == 1:   # a full decode after all: the crop too is bit-identical
            np.testing.assert_array_equal(reduced['image'], full['image'], err_msg=f'image of {key}')
            continue
        num_reduced += 1
        image_wh = jpeg_size(os.path.join(image_dir, records[plan.index]['image']))
        diffs.append(np.abs(crop_of(reduced) - crop_of(full))[interior(full, image_wh)].ravel())
    return np.concatenate(diffs), num_reduced


class Crops(NamedTuple):
    kind: str
    folder: str
    records: list
    train_keys: list
    bounds: tuple   # (mean, 99th percentile) of |crop diff|


@pytest.fixture(scope='module', params=['synthetic', 'real_mpii'])
def crops(request, image_dir) -> Crops:
    if request.param == 'synthetic':
        records = make_records(np.random.default_rng(6), ['0.jpg', '1.jpg'], IMAGE_SIZES, (550, 1300))
        return Crops('synthetic', image_dir, records, keys(NUM_RECORDS), BOUNDS['synthetic'])
    root = require_real_mpii()
    records = load_mpii_annotations(root, 'valid')[:5]   # the entries whose images are shared; boxes 440-1180 px
    return Crops('real_mpii', os.path.join(root, 'images'), records, keys(5, seed=3, epochs=range(4)),
                 BOUNDS['real_mpii'])


@pytest.mark.parametrize('side', [256, 384])
def test_reduced_crops_are_close_and_targets_identical(crops, side):
    mean_bound, p99_bound = crops.bounds
    for sample_keys, is_train in ((crops.train_keys, True), (range(len(crops.records)), False)):
        diffs, num_reduced = compare(crops.folder, crops.records, sample_keys, is_train, side)
        assert num_reduced > 0
        assert diffs.mean() < mean_bound, diffs.mean()
        assert np.percentile(diffs, 99) < p99_bound, np.percentile(diffs, 99)


def test_the_crops_cover_every_case(crops):
    plans = [make_dataset(crops.folder, crops.records, True).plan_sample(k) for k in crops.train_keys]
    assert {p.reduction for p in plans} >= {1, 2, 4}
    assert any(p.flip and p.reduction > 1 for p in plans) and any(not p.flip and p.reduction > 1 for p in plans)
    if crops.kind == 'synthetic':   # odd width, flipped
        assert any(p.flip and p.reduction > 1 and p.image_wh == (1281, 721) for p in plans)


def top_left_pixel_matrix(reduction, x_offset=0.0):
    """The wrong convention x_full = r*u (reduced pixels at the top-left of their blocks)."""
    return np.array([[reduction, 0.0, x_offset], [0.0, reduction, 0.0], [0.0, 0.0, 1.0]])


def test_wrong_pixel_centres_give_measurably_larger_errors(crops, monkeypatch):
    """The tolerance above can fail: without the (r-1)/2 centre offset the crops differ more."""
    right, _ = compare(crops.folder, crops.records, crops.train_keys)
    monkeypatch.setattr(pose_dataset, 'reduced_pixel_matrix', top_left_pixel_matrix)
    wrong, _ = compare(crops.folder, crops.records, crops.train_keys)
    assert wrong.mean() > WRONG_RATIO * right.mean(), (wrong.mean(), right.mean())


def test_wrong_flip_offset_gives_measurably_larger_errors(image_dir, monkeypatch):
    """On a 1281 px wide image, mirroring the 1/r decode without the W - r * ceil(W / r) offset moves the
    crop by up to r - 1 full pixels."""
    records = make_records(np.random.default_rng(6), ['0.jpg', '1.jpg'], IMAGE_SIZES, (550, 1300))
    dataset = make_dataset(image_dir, records, True)
    flipped = [k for k in keys(NUM_RECORDS, epochs=range(4)) if records[k[0]]['image'] == '1.jpg'
               and dataset.plan_sample(k).flip and dataset.plan_sample(k).reduction > 1]
    right, _ = compare(image_dir, records, flipped)
    monkeypatch.setattr(pose_dataset, 'flipped_x_offset', lambda *args: 0.0)
    wrong, _ = compare(image_dir, records, flipped)
    assert wrong.mean() > WRONG_RATIO * right.mean(), (wrong.mean(), right.mean())


def alias_errors(full, reduced, reduction, side, rng, num=4):
    """Mean |crop - reference| of the full-resolution and the reduced crop, at src_w / r = input_w * margin
    (the coarsest decode reduced_decode uses); reference: a 4x-supersampled, area-averaged crop."""
    errors_full, errors_reduced = [], []
    h, w = full.shape[:2]
    for _ in range(num):
        center, rot = rng.uniform([0.4 * w, 0.4 * h], [0.6 * w, 0.6 * h]), float(rng.uniform(-30, 30))
        matrix = get_affine_transform(center, side * reduction * REDUCED_DECODE_MARGIN / 200.0, rot, (side, side))
        crop_full = cv2.warpAffine(full, matrix, (side, side), flags=cv2.INTER_LINEAR).astype(np.float32)
        crop_reduced = cv2.warpAffine(reduced, matrix @ reduced_pixel_matrix(reduction), (side, side),
                                      flags=cv2.INTER_LINEAR).astype(np.float32)
        supersample = np.array([[4, 0, 1.5], [0, 4, 1.5], [0, 0, 1.0]]) @ np.vstack([matrix, [0, 0, 1]])
        fine = cv2.warpAffine(full, supersample[:2], (4 * side, 4 * side), flags=cv2.INTER_LINEAR)
        reference = cv2.resize(fine, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
        errors_full.append(np.abs(crop_full - reference).mean())
        errors_reduced.append(np.abs(crop_reduced - reference).mean())
    return np.mean(errors_full), np.mean(errors_reduced)


def test_reduced_crops_alias_no_worse_than_full_resolution_crops(crops):
    """Why REDUCED_DECODE_MARGIN is 1.2: from there on the reduced crop is closer to an anti-aliased crop
    than the plain bilinear full-resolution crop is."""
    rng = np.random.default_rng(7)
    for name in sorted({r['image'] for r in crops.records})[:3]:
        path = os.path.join(crops.folder, name)
        full = read_image(path, color_rgb=False)
        for side, r in [(256, 2), (256, 4), (384, 2)]:
            if side * r * REDUCED_DECODE_MARGIN > 1.5 * max(full.shape):
                continue
            error_full, error_reduced = alias_errors(full, read_image(path, False, r), r, side, rng)
            assert error_reduced < error_full, (name, side, r, error_reduced, error_full)


def test_small_crops_and_the_option_off_are_bit_identical_to_the_previous_pipeline(image_dir):
    """reduced_decode=False, and reduced_decode=True with crops below 2 * REDUCED_DECODE_MARGIN times the
    input, reproduce the code before reduced decoding existed (re-implemented here) exactly."""
    rng = np.random.default_rng(8)
    big = make_records(rng, ['0.jpg', '1.jpg'], IMAGE_SIZES, (550, 1300))
    small = make_records(rng, ['0.jpg', '1.jpg'], IMAGE_SIZES, (150, 380))   # x 1.25 (augmentation) < 2 * 1.2 * 256
    for records, flag in ((big, False), (small, True)):
        for is_train, sample_keys in ((True, keys(NUM_RECORDS)), (False, range(NUM_RECORDS))):
            dataset = make_dataset(image_dir, records, flag, is_train)
            for key in sample_keys:
                assert dataset.plan_sample(key).reduction == 1
                expected, sample = previous_getitem(dataset, key), dataset[key]
                assert expected.keys() == sample.keys()
                for name in expected:
                    np.testing.assert_array_equal(sample[name], expected[name], err_msg=f'{name} of {key}')


def previous_getitem(dataset, key):
    """TopDownPoseDataset.__getitem__ as it was before reduced decoding (full decode, then augment)."""
    index, rng = dataset._unpack(key)
    record, cfg = dataset.records[index], dataset.config
    path = os.path.join(dataset.image_dir, record['image'])
    image = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if cfg.color_rgb else image
    center, scale = record['center'].copy(), record['scale'].copy()
    joints, joints_vis, rotation = record['joints'], record['joints_vis'], 0.0
    if dataset.is_train:
        scale_mult, rotation = random_scale_rotation(rng, cfg.scale_factor, cfg.rotation_factor, cfg.rotation_prob)
        scale = scale * scale_mult
        if cfg.flip and rng.random() <= 0.5:
            image = cv2.flip(image, 1)
            joints, joints_vis = flip_joints(joints, joints_vis, image.shape[1], dataset.layout.flip_pairs)
            center[0] = image.shape[1] - center[0] - 1
    crop, matrix = crop_image(image, center, scale, rotation, cfg.input_wh)
    visible = joints_vis > 0
    joints_crop = np.where(visible[:, None], affine_transform_points(joints, matrix), joints)
    target, target_weight = generate_target(joints_crop, joints_vis, cfg.input_wh, cfg.heatmap_wh, cfg.sigma)
    return {'image': normalize_image(crop, cfg.mean, cfg.std), 'target': target,
            'target_weight': target_weight, 'joints': joints_crop.astype(np.float32),
            'joints_vis': joints_vis.astype(np.float32), 'center': center.astype(np.float32),
            'scale': scale.astype(np.float32), 'rotation': np.float32(rotation),
            'score': np.float32(record.get('score', 1.0)), 'index': np.int64(index)}


def test_header_and_decoder_disagreeing_is_an_error(image_dir, monkeypatch):
    records = make_records(np.random.default_rng(9), ['0.jpg'], [(1280, 720)], (900, 1000))
    dataset = make_dataset(image_dir, records, True, is_train=False)
    monkeypatch.setattr(pose_dataset, 'jpeg_size', lambda path: (1300, 720))
    message = r'0.jpg: decoding at 1/2 gave 640x360 px, expected 650x360 .*reduced_decode=False'
    with pytest.raises(ValueError, match=message):
        dataset[0]

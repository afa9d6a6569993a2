"""Known-answer tests for the crop geometry and augmentation draws (SPEC C.2, C.3)."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from lib.datasets.heatmaps import generate_target, get_max_preds
from lib.datasets.skeletons import MPII
from lib.datasets.transforms import (affine_transform_points, crop_image, flip_joints, get_affine_transform,
                                     random_scale_rotation)

MATRIX_ATOL = 1e-4  # SPEC C.3: known answers from a float32-point / float64-solve re-implementation

# SPEC C.3 T1-T5 and the end-to-end A.2 sample (c, s after the A.4 adjustments).
KNOWN_MATRICES = {
    'T1_identity': ((128, 128), 1.28, 0, (256, 256), [[1, 0, 0], [0, 1, 0]]),
    'T2_zoom': ((100, 200), 1.0, 0, (64, 64), [[0.32, 0, 0], [0, 0.32, -32]]),
    'T3_rot90': ((0, 0), 1.0, 90, (200, 200), [[0, 1, 100], [-1, 0, 100]]),
    'T4_rot30': ((300, 200), 1.5, 30, (256, 256),
                 [[0.739008, 0.426667, -179.035838], [-0.426667, 0.739008, 108.198336]]),
    'T5_coco_aspect': ((320, 240), (0.9, 1.2), 0, (192, 256),
                       [[1.066667, 0, -245.333333], [0, 1.066667, -128]]),
    'A2_sample': ((965.0, 409.77732), 5.89811, 0, (256, 256),
                  [[0.217019, 0, -81.423017], [0, 0.217019, 39.07067]]),
}


@pytest.mark.parametrize('name', sorted(KNOWN_MATRICES))
def test_affine_known_answers(name):
    center, scale, rot, output_wh, expected = KNOWN_MATRICES[name]
    matrix = get_affine_transform(center, scale, rot, output_wh)
    assert matrix.shape == (2, 3)
    assert_allclose(matrix, expected, atol=MATRIX_ATOL)


def test_affine_inverse_t2():
    inverse = get_affine_transform((100, 200), 1.0, 0, (64, 64), inv=True)
    assert_allclose(inverse, [[3.125, 0, 0], [0, 3.125, 100]], atol=MATRIX_ATOL)


def test_a2_sample_joints_map_to_known_crop_and_heatmap_positions():
    # SPEC A.4 / C.3 last bullet: joints 0 and 9 of 005808361.jpg, already 0-based.
    center, scale = (965.0, 409.77732), 5.89811
    joints = np.array([[803.0, 710.0], [961.2409, 79.0306]])
    matrix = get_affine_transform(center, scale, 0, (256, 256))
    mapped = affine_transform_points(joints, matrix)
    assert_allclose(mapped, [[92.842975, 193.15393], [127.184205, 56.221786]], atol=MATRIX_ATOL)

    target, weight = generate_target(mapped, np.ones(2), (256, 256), (64, 64), sigma=2)
    peaks, _ = get_max_preds(target[None])
    assert_array_equal(peaks[0], [[23, 48], [32, 14]])
    assert_array_equal(weight, [[1], [1]])


def test_positive_rotation_turns_content_counter_clockwise():
    # T3: a point to the right of the centre lands straight above the crop centre (100, 100).
    matrix = get_affine_transform((0, 0), 1.0, 90, (200, 200))
    mapped = affine_transform_points(np.array([100.0, 0.0]), matrix)
    assert_allclose(mapped, [100.0, 0.0], atol=MATRIX_ATOL)
    # And a point above the centre goes to the left: right -> up -> left is counter-clockwise on screen.
    assert_allclose(affine_transform_points(np.array([0.0, -100.0]), matrix), [0.0, 100.0], atol=MATRIX_ATOL)


@pytest.mark.parametrize('rot, shift, output_wh', [
    (30.0, (0.1, -0.05), (256, 256)),
    (-45.0, (-0.2, 0.15), (192, 256)),
])
def test_point_round_trip_through_crop_and_back(rot, shift, output_wh):
    center, scale = (300.0, 200.0), (1.5, 2.0)
    forward = get_affine_transform(center, scale, rot, output_wh, shift=shift)
    backward = get_affine_transform(center, scale, rot, output_wh, shift=shift, inv=True)
    points = np.array([[250.0, 140.0], [310.5, 260.25], [400.0, 120.0]])
    in_crop = affine_transform_points(points, forward)
    assert not np.allclose(in_crop, points, atol=1.0)  # the crop really moved them
    assert_allclose(affine_transform_points(in_crop, backward), points, atol=1e-3)
    # The shifted box centre lands on the crop centre.
    shifted_center = np.asarray(center) + 200.0 * np.asarray(scale) * np.asarray(shift)
    assert_allclose(affine_transform_points(shifted_center, forward),
                    [output_wh[0] / 2, output_wh[1] / 2], atol=1e-3)


def test_crop_image_moves_a_blob_where_the_matrix_says():
    # A smooth blob at p, cropped at 1:1 zoom (scale 1.28 -> 256 px) with a 30 degree rotation:
    # the blob's centroid in the crop, mapped back with inv=True, is p again.
    height, width = 300, 400
    p = np.array([215.3, 140.6])
    ys, xs = np.mgrid[0:height, 0:width]
    blob = np.exp(-((xs - p[0]) ** 2 + (ys - p[1]) ** 2) / (2 * 3.0 ** 2))
    image = np.repeat((blob * 255.0)[..., None], 3, axis=2).astype(np.float32)
    center, scale, rot = (200.0, 150.0), 1.28, 30.0

    crop, matrix = crop_image(image, center, scale, rot, (256, 256))
    assert crop.shape == (256, 256, 3)
    assert_allclose(matrix, get_affine_transform(center, scale, rot, (256, 256)))
    channel = crop[..., 0].astype(np.float64)
    cy, cx = np.mgrid[0:256, 0:256]
    centroid = np.array([(channel * cx).sum(), (channel * cy).sum()]) / channel.sum()
    assert_allclose(centroid, affine_transform_points(p, matrix), atol=0.05)
    back = affine_transform_points(centroid, get_affine_transform(center, scale, rot, (256, 256), inv=True))
    assert_allclose(back, p, atol=0.05)


def _mpii_joints():
    rng = np.random.default_rng(3)
    joints = rng.uniform(0, 500, size=(16, 2))
    vis = np.ones(16)
    vis[[0, 9, 12]] = 0  # joint 0 has a partner (5), 9 has none, 12 has partner 13
    return joints, vis


def test_flip_joints_mirrors_swaps_and_zeroes():
    joints, vis = _mpii_joints()
    width = 640
    flipped, flipped_vis = flip_joints(joints, vis, width, MPII.flip_pairs)
    partner = np.array(MPII.flip_index)
    assert flipped.shape == (16, 2)
    # Joint k of the flipped image is the mirror of its partner's original position.
    expected = np.stack([width - joints[partner, 0] - 1, joints[partner, 1]], axis=1) * vis[partner, None]
    assert_allclose(flipped, expected)
    assert_array_equal(flipped_vis, vis[partner])
    # Unannotated joints end up at (0, 0): originals 0, 9, 12 now live at indices 5, 9, 13.
    assert_array_equal(flipped[[5, 9, 13]], np.zeros((3, 2)))
    assert flipped_vis[5] == 0 and flipped_vis[0] == 1
    # The inputs are not modified.
    assert_array_equal(joints, _mpii_joints()[0])
    assert_array_equal(vis, _mpii_joints()[1])


def test_flip_joints_twice_restores_annotated_joints():
    joints, vis = _mpii_joints()
    once, once_vis = flip_joints(joints, vis, 640, MPII.flip_pairs)
    twice, twice_vis = flip_joints(once, once_vis, 640, MPII.flip_pairs)
    annotated = vis > 0
    assert_allclose(twice[annotated], joints[annotated], atol=1e-9)
    assert_array_equal(twice_vis, vis)
    assert_array_equal(twice[~annotated], 0)


def test_random_scale_rotation_ranges_and_rotation_probability():
    rng = np.random.default_rng(2024)
    draws = np.array([random_scale_rotation(rng, 0.25, 30, 0.6) for _ in range(4000)])
    scales, rots = draws[:, 0], draws[:, 1]
    assert scales.min() >= 0.75 and scales.max() <= 1.25
    assert rots.min() >= -60 and rots.max() <= 60
    # The clip is at 1 sigma for the scale: both bounds are hit (P ~ 0.16 each).
    assert np.mean(scales == 0.75) > 0.1 and np.mean(scales == 1.25) > 0.1
    # Rotation is 0 with probability 1 - 0.6 = 0.4 (binomial sd ~ 0.008; bound 0.04 = 5 sd).
    assert abs(np.mean(rots == 0.0) - 0.4) < 0.04
    # Rotations that happen are N(0, 30) clipped to +-60: their sd is close to 30.
    assert 25 < rots[rots != 0].std() < 35


@pytest.mark.parametrize('prob, zero_share', [(0.0, 1.0), (1.0, 0.0)])
def test_random_rotation_probability_extremes(prob, zero_share):
    rng = np.random.default_rng(0)
    rots = np.array([random_scale_rotation(rng, 0.25, 30, prob)[1] for _ in range(200)])
    assert np.mean(rots == 0.0) == zero_share

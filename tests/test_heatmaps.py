"""Known-answer tests for the heatmap codec (SPEC C.5 targets, D.1-D.2 decoding, D.3 flip-back)."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from lib.datasets.heatmaps import (flip_back, generate_target, get_final_preds, get_max_preds,
                                   heatmap_to_image_coords, refine_quarter_offset)
from lib.datasets.skeletons import MPII

INPUT_WH, HEATMAP_WH, SIGMA = (256, 256), (64, 64), 2


def _target(x, y, vis=1):
    target, weight = generate_target(np.array([[x, y]], dtype=np.float64), np.array([vis]),
                                     INPUT_WH, HEATMAP_WH, SIGMA)
    assert target.shape == (1, 64, 64) and target.dtype == np.float32
    assert weight.shape == (1, 1) and weight.dtype == np.float32
    return target[0], float(weight[0, 0])


# SPEC C.5 table. (joint, weight, non-zero count, (row0, row1), (col0, col1), peak [row, col], peak value, sum);
# the spans are inclusive and encode mu: rows clip(mu_y -+ 6), cols clip(mu_x -+ 6).
C5_TABLE = [
    ((100.3, 50.7), 1, 169, (7, 19), (19, 31), (13, 25), 1.0, 25.081289),        # mu = (25, 13)
    ((-10, 100), 1, 65, (19, 31), (0, 4), (25, 0), 0.606531, 5.616931),          # mu = (-2, 25)
    ((-30, 100), 1, 0, None, None, None, 0.0, 0.0),                              # mu_x = -7, br_x = 0 quirk
    ((-28, 100), 1, 13, (19, 31), (0, 0), (25, 0), 0.011109, 0.055635),          # mu_x = -6
    ((300, 10), 0, 0, None, None, None, 0.0, 0.0),                               # ul_x = 69 >= 64
    ((255.9, 255.9), 1, 36, (58, 63), (58, 63), (63, 63), 0.7788008, 4.016261),  # mu = (64, 64)
    ((-3, -3), 1, 49, (0, 6), (0, 6), (0, 0), 1.0, 9.024384),                    # mu = (0, 0), int truncates
]


@pytest.mark.parametrize('joint, weight, count, rows, cols, peak, peak_value, total', C5_TABLE,
                         ids=[str(row[0]) for row in C5_TABLE])
def test_generate_target_known_answers(joint, weight, count, rows, cols, peak, peak_value, total):
    target, got_weight = _target(*joint)
    assert got_weight == weight
    nonzero_rows, nonzero_cols = np.nonzero(target)
    assert len(nonzero_rows) == count
    if count:
        assert (nonzero_rows.min(), nonzero_rows.max()) == rows
        assert (nonzero_cols.min(), nonzero_cols.max()) == cols
        assert np.unravel_index(np.argmax(target), target.shape) == peak
    assert_allclose(target.max(), peak_value, atol=1e-6)
    assert_allclose(target.sum(dtype=np.float64), total, atol=1e-5)


def test_gaussian_values_through_the_centre():
    target, _ = _target(100.3, 50.7)                     # mu = (25, 13)
    half_row = [0.011109, 0.043937, 0.135335, 0.324652, 0.606531, 0.882497, 1.0]
    assert_allclose(target[13, 19:32], half_row + half_row[-2::-1], atol=1e-6)
    assert_allclose(target[7:20, 25], half_row + half_row[-2::-1], atol=1e-6)   # the column too
    assert_allclose(target[13, 26], np.exp(-1 / 8), rtol=1e-6)                 # distance 1
    assert_allclose(target[14, 26], np.exp(-2 / 8), rtol=1e-6)                 # diagonal
    assert_allclose(target[13, 31], np.exp(-36 / 8), rtol=1e-6)                # distance 6
    assert_allclose(target[19, 31], np.exp(-72 / 8), rtol=1e-5)                # corner 1.234e-4
    assert target[13, 32] == 0 and target[20, 25] == 0                          # 3 sigma truncation


def test_unannotated_joint_gets_zero_weight_and_empty_map():
    target, weight = _target(100.3, 50.7, vis=0)
    assert weight == 0
    assert not target.any()


def _peaked_map():
    """SPEC D.2 known answer: peak at (x 20, y 30) with unequal neighbours."""
    hm = np.zeros((1, 1, 64, 64), dtype=np.float32)
    hm[0, 0, 30, 20] = 1.0
    hm[0, 0, 30, 21] = 0.6
    hm[0, 0, 30, 19] = 0.5
    hm[0, 0, 31, 20] = 0.4
    hm[0, 0, 29, 20] = 0.7
    return hm


def test_decode_known_answer():
    hm = _peaked_map()
    coords, maxvals = get_max_preds(hm)
    assert_array_equal(coords, [[[20, 30]]])
    assert_array_equal(maxvals, [[[1.0]]])
    assert_allclose(refine_quarter_offset(coords, hm), [[[20.25, 29.75]]], atol=1e-6)
    preds, maxvals = get_final_preds(hm, np.array([[500.0, 400.0]]), np.array([[2.5, 2.5]]))
    assert preds.shape == (1, 1, 2) and maxvals.shape == (1, 1, 1)
    assert_allclose(preds, [[[408.203125, 382.421875]]], atol=1e-4)
    unrefined, _ = get_final_preds(hm, np.array([[500.0, 400.0]]), np.array([[2.5, 2.5]]), refine=False)
    assert_allclose(unrefined, [[[500 + (20 - 32) * 7.8125, 400 + (30 - 32) * 7.8125]]], atol=1e-4)


def test_heatmap_to_image_coords_a2_sample():
    coords = heatmap_to_image_coords(np.array([[23.25, 48.5]]), (965.0, 409.77732), (5.89811, 5.89811), (64, 64))
    assert_allclose(coords, [[803.723553, 713.898605]], atol=1e-4)


def _single_peak(x, y, size=64):
    """A peak of 1 at (x, y) whose right and lower neighbours are higher than the left and upper ones."""
    hm = np.zeros((1, 1, size, size), dtype=np.float32)
    hm[0, 0, y, x] = 1.0
    for dx, dy, value in [(1, 0, 0.8), (-1, 0, 0.2), (0, 1, 0.8), (0, -1, 0.2)]:
        if 0 <= x + dx < size and 0 <= y + dy < size:
            hm[0, 0, y + dy, x + dx] = value
    return hm


# SPEC D.2: refine only if 1 < px < w-1 and 1 < py < h-1, i.e. the peak lies in [2, w-2] x [2, h-2].
@pytest.mark.parametrize('x, y, refined', [
    (0, 30, False), (1, 30, False), (2, 30, True), (62, 30, True), (63, 30, False),
    (30, 0, False), (30, 1, False), (30, 2, True), (30, 62, True), (30, 63, False),
    (1, 1, False), (62, 62, True),
])
def test_refinement_only_inside_the_border(x, y, refined):
    hm = _single_peak(x, y)
    coords, _ = get_max_preds(hm)
    assert_array_equal(coords, [[[x, y]]])
    expected = [x + 0.25, y + 0.25] if refined else [x, y]
    assert_allclose(refine_quarter_offset(coords, hm), [[expected]], atol=0)


def test_refinement_ties_give_no_shift():
    hm = np.zeros((1, 1, 64, 64), dtype=np.float32)
    hm[0, 0, 30, 20] = 1.0
    hm[0, 0, 30, 19] = hm[0, 0, 30, 21] = 0.5     # tie along x
    hm[0, 0, 29, 20] = 0.3                          # y: upper neighbour higher
    hm[0, 0, 31, 20] = 0.1
    coords, _ = get_max_preds(hm)
    assert_allclose(refine_quarter_offset(coords, hm), [[[20.0, 29.75]]], atol=0)


@pytest.mark.parametrize('fill, peak', [(0.0, 0.0), (-0.5, -0.25)])
def test_non_positive_maximum_decodes_to_origin(fill, peak):
    hm = np.full((1, 2, 64, 64), fill, dtype=np.float32)
    hm[0, 0, 20, 10] = peak     # the first map's maximum is <= 0, away from the origin
    hm[0, 1, 40, 50] = 0.5      # the second map has a normal positive peak
    coords, maxvals = get_max_preds(hm)
    assert_array_equal(coords[0], [[0, 0], [50, 40]])
    assert_allclose(maxvals[0, :, 0], [peak, 0.5])
    preds, _ = get_final_preds(hm, np.array([[128.0, 128.0]]), np.array([[1.28, 1.28]]))
    assert_allclose(preds[0, 0], [0.0, 0.0], atol=1e-4)   # (0, 0) is not refined (border)


def test_first_maximum_wins_in_row_major_order():
    hm = np.zeros((1, 1, 64, 64), dtype=np.float32)
    hm[0, 0, 7, 5] = 1.0     # (x 5, y 7): later in row-major order
    hm[0, 0, 3, 40] = 1.0    # (x 40, y 3): earlier
    coords, _ = get_max_preds(hm)
    assert_array_equal(coords, [[[40, 3]]])


def test_get_max_preds_rejects_non_4d_input():
    with pytest.raises(ValueError, match=r'\(64, 64\)'):
        get_max_preds(np.zeros((64, 64)))


def test_flip_back_row_known_answer():
    row = np.array([1, 2, 3, 4], dtype=np.float32).reshape(1, 1, 1, 4)
    assert_array_equal(flip_back(row, (), shift=False)[0, 0, 0], [4, 3, 2, 1])
    assert_array_equal(flip_back(row, (), shift=True)[0, 0, 0], [4, 4, 3, 2])
    assert_array_equal(row[0, 0, 0], [1, 2, 3, 4])  # input untouched


def test_flip_back_swaps_flip_pair_channels():
    n, k, h, w = 2, 16, 4, 6
    heatmaps = np.broadcast_to(np.arange(k, dtype=np.float32)[None, :, None, None], (n, k, h, w)).copy()
    heatmaps[:, :, :, 0] += 100.0            # mark column 0 to see the width flip
    out = flip_back(heatmaps, MPII.flip_pairs, shift=False)
    assert out.shape == (n, k, h, w)
    assert_array_equal(out[0, :, 0, 0], MPII.flip_index)                 # channel k now holds its partner
    assert_array_equal(out[0, :, 0, -1], np.array(MPII.flip_index) + 100.0)
    assert_array_equal(MPII.flip_index, [5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10])


def test_codec_round_trip_recovers_joints_to_half_a_heatmap_pixel():
    """Encode then decode with an identity crop (center (128,128), scale 1.28 -> 256 px).

    The bound is 0.5 heatmap px = 2 image px per axis, not the 0.25 px of the refinement: generate_target
    puts the peak at mu = int(x/4 + 0.5) and the Gaussian is symmetric around that integer, so the
    quarter-offset refinement sees ties and never moves it; decoding returns exactly 4*mu. Joints are
    kept below 254 px, where mu would be 64 and the peak would be clipped onto column 63.
    """
    stride = 4.0
    rng = np.random.default_rng(7)
    joints = rng.uniform(0.0, 254.0, size=(16, 2))
    joints[0] = [2.0, 6.0]          # exactly half a heatmap pixel: rounds up, error 2 px
    joints[1] = [1.999, 129.0]      # just below half: rounds down
    target, weight = generate_target(joints, np.ones(16), INPUT_WH, HEATMAP_WH, SIGMA)
    assert_array_equal(weight, np.ones((16, 1)))
    preds, maxvals = get_final_preds(target[None], np.array([[128.0, 128.0]]), np.array([[1.28, 1.28]]))
    assert_allclose(maxvals, 1.0)
    assert np.all(np.abs(preds[0] - joints) <= 0.5 * stride + 1e-4)
    assert_allclose(preds[0], stride * np.floor(joints / stride + 0.5), atol=1e-4)
    assert_allclose(preds[0, :2], [[4.0, 8.0], [0.0, 128.0]], atol=1e-4)


def test_decode_offset_moves_both_coordinates_by_that_many_heatmap_pixels():
    """princeton-vl draws targets at the truncated joint and adds 0.5 when decoding (SPEC C.5, D.2)."""
    heatmaps = np.zeros((1, 1, 64, 64), np.float32)
    heatmaps[0, 0, 30, 20] = 1.0                      # no neighbours: no quarter-pixel shift
    center, scale = np.array([[500.0, 400.0]]), np.array([[2.5, 2.5]])
    plain, _ = get_final_preds(heatmaps, center, scale)
    shifted, _ = get_final_preds(heatmaps, center, scale, offset=0.5)
    np.testing.assert_allclose(shifted - plain, 0.5 * 500 / 64)   # 0.5 px x (200 * 2.5 / 64) image px

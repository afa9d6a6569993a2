"""UDP side by side with MMPose 1.3.2's own code (tests/mmpose_codecs.py) on the shared real MPII and COCO samples:
the crop matrix (get_udp_warp_matrix), the crops and joints (TopdownAffine(use_udp=True)), the targets
(UDPHeatmap.encode), the decoded coordinates (UDPHeatmap.decode, DARK-UDP, then TopdownPoseEstimator's mapping
back), the flip (flip_keypoints, flip_bbox, flip_heatmaps without the shift) and the training pipeline of
TopDownPoseDataset with flips, rotations, scales and half-body boxes."""
import json
import os

import cv2
import numpy as np
import pytest

from lib import config
from lib.config import DataConfig
from lib.core.validate import oracle
from lib.datasets.codec import codec_for
from lib.datasets.coco import coco_files, load_coco_annotations
from lib.datasets.half_body import half_body_transform
from lib.datasets.heatmaps import flip_back
from lib.datasets.image_io import read_image
from lib.datasets.mpii import load_mpii_annotations, parse_entry
from lib.datasets.pose_dataset import TopDownPoseDataset
from lib.datasets.skeletons import COCO, MPII
from lib.datasets.transforms import (PIXEL_STD, affine_transform_points, crop_image, get_affine_transform,
                                     get_udp_affine_transform, normalize_image, udp_box_pixels)
from lib.datasets.udp import udp_target
from tests.helpers import COCO_MINI, require, require_real_mpii
from tests.mmpose_codecs import load

COORD_ATOL = 1e-4
ROTATIONS = (0.0, 30.0, -45.0, 90.0)
# (input_wh, heatmap_wh, sigma) as MMPose's UDP configs: MPII 256 (cspnext udp) and 384, COCO 256x192, 384x288
SIZES = {'mpii_256': ((256, 256), (64, 64), 2.0), 'mpii_384': ((384, 384), (96, 96), 2.0),
         'coco_256x192': ((192, 256), (48, 64), 2.0), 'coco_384x288': ((288, 384), (72, 96), 3.0)}


def mpii_photos():
    """(records, image folder) of the 269 real MPII validation people with their photos."""
    root = require_real_mpii()
    path = os.path.join(root, 'annot', 'valid_photos.json')
    entries = json.load(open(require(path)))
    return [parse_entry(e, i, path, True) for i, e in enumerate(entries)], os.path.join(root, 'images')


def coco_people(input_wh=(192, 256)):
    """(records, image folder) of the 68 people of COCO mini val2017, boxes for input_wh's aspect."""
    root = require(COCO_MINI)
    return load_coco_annotations(root, 'val2017', input_wh), coco_files(root, 'val2017').image_dir


def people(dataset, input_wh):
    return mpii_photos() if dataset == 'mpii' else coco_people(input_wh)


def mmpose_affine(mm, image, center, scale, rot, input_wh, joints):
    """MMPose's TopdownAffine(use_udp=True) on one person: (crop, transformed joints [K, 2]); its bbox_scale is in
    pixels (our scale x 200), and it fixes the box's aspect ratio itself."""
    results = mm.TopdownAffine(input_size=tuple(input_wh), use_udp=True).transform({
        'img': image, 'bbox_center': np.asarray(center, np.float64)[None],
        'bbox_scale': (np.asarray(scale, np.float64) * PIXEL_STD)[None], 'bbox_rotation': np.array([rot]),
        'keypoints': np.asarray(joints, np.float64)[None]})
    return results['img'], results['transformed_keypoints'][0]


@pytest.mark.parametrize('size', sorted(SIZES))
def test_udp_matrices_equal_mmposes_get_udp_warp_matrix(size):
    mm = load()
    input_wh, heatmap_wh, _ = SIZES[size]
    records, _ = people(size.split('_')[0], input_wh)
    if size.startswith('mpii'):
        records = records + load_mpii_annotations(require_real_mpii(), 'valid', need_images=False)[::40]
    for record in records:
        for rot in ROTATIONS:
            for output_wh in (input_wh, heatmap_wh):
                ours = get_udp_affine_transform(record['center'], record['scale'], rot, output_wh)
                box = udp_box_pixels(record['scale'], output_wh)     # MMPose's _fix_aspect_ratio, in pixels
                theirs = mm.get_udp_warp_matrix(np.asarray(record['center'], np.float64), box, rot, output_wh)
                assert np.abs(ours - theirs).max() <= 1e-6 * np.abs(theirs).max()


def test_udp_box_is_mmposes_fixed_aspect_ratio():
    mm = load()
    for scale in ([1.0, 1.0], [0.9, 1.2], [1.5, 0.5]):
        for input_wh in ((256, 256), (192, 256)):
            theirs = mm.TopdownAffine._fix_aspect_ratio(np.array([scale]) * PIXEL_STD, input_wh[0] / input_wh[1])
            assert np.allclose(udp_box_pixels(scale, input_wh), theirs[0], rtol=1e-12)


@pytest.mark.parametrize('dataset', ['mpii', 'coco'])
def test_udp_crops_and_joints_of_real_photos_equal_mmposes_topdown_affine(dataset):
    mm = load()
    input_wh = (256, 256) if dataset == 'mpii' else (192, 256)
    records, image_dir = people(dataset, input_wh)
    for i, record in enumerate(records[::9]):
        image = read_image(os.path.join(image_dir, record['image']), True)
        rot = ROTATIONS[i % len(ROTATIONS)]
        crop, matrix = crop_image(image, record['center'], record['scale'], rot, input_wh, udp=True)
        theirs_crop, theirs_joints = mmpose_affine(mm, image, record['center'], record['scale'], rot, input_wh,
                                                   record['joints'])
        assert np.array_equal(crop, theirs_crop), record['image']
        assert np.abs(affine_transform_points(record['joints'], matrix) - theirs_joints).max() <= COORD_ATOL


@pytest.mark.parametrize('size', sorted(SIZES))
def test_udp_targets_of_real_people_equal_mmposes_udp_heatmap_encode(size):
    mm = load()
    input_wh, heatmap_wh, sigma = SIZES[size]
    codec = mm.UDPHeatmap(input_size=input_wh, heatmap_size=heatmap_wh, sigma=sigma)
    records, _ = people(size.split('_')[0], input_wh)
    for i, record in enumerate(records):
        rot = ROTATIONS[i % len(ROTATIONS)]
        matrix = get_udp_affine_transform(record['center'], record['scale'], rot, input_wh)
        joints, vis = affine_transform_points(record['joints'], matrix), np.asarray(record['joints_vis'], np.float32)
        ours, weight = udp_target(joints, vis, input_wh, heatmap_wh, sigma)
        theirs = codec.encode(joints[None], vis[None])
        assert np.abs(ours - theirs['heatmaps']).max() <= 1e-6
        assert np.array_equal(weight[:, 0], theirs['keypoint_weights'][0])


def test_udp_targets_at_the_borders_equal_mmposes():
    mm = load()
    input_wh, heatmap_wh, sigma = (256, 256), (64, 64), 2.0
    xs = np.array([-36.0, -31.0, -3.0, 0.0, 100.3, 255.0, 255.9, 280.0, 283.0])     # UDP stride 255/63
    joints = np.stack([xs, np.full_like(xs, 100.0)], 1)
    vis = np.array([1, 1, 1, 0, 1, 1, 1, 1, 1], np.float32)
    ours, weight = udp_target(joints, vis, input_wh, heatmap_wh, sigma)
    theirs = mm.UDPHeatmap(input_wh, heatmap_wh, sigma=sigma).encode(joints[None], vis[None])
    assert np.abs(ours - theirs['heatmaps']).max() <= 1e-6
    assert np.array_equal(weight[:, 0], theirs['keypoint_weights'][0])
    assert weight[:, 0].tolist() == [0, 1, 1, 0, 1, 1, 1, 1, 0]
    assert not ours[1].any()       # HRNet's quirk, kept by MMPose: the patch ends exactly at column 0


def mmpose_decode_to_image(mm, heatmaps, records, input_wh, heatmap_wh, sigma, kernel):
    """MMPose's UDPHeatmap.decode (DARK-UDP, then / (size - 1) * input size) and TopdownPoseEstimator's mapping
    to image pixels (keypoints / input_size * box + center - box / 2, float64), per person."""
    codec = mm.UDPHeatmap(input_size=input_wh, heatmap_size=heatmap_wh, sigma=sigma, blur_kernel_size=kernel)
    out = []
    for maps, record in zip(heatmaps, records):
        keypoints = codec.decode(maps)[0][0].astype(np.float64)
        box = udp_box_pixels(record['scale'], input_wh)
        out.append(keypoints / np.asarray(input_wh) * box + np.asarray(record['center']) - 0.5 * box)
    return np.stack(out)


@pytest.mark.parametrize('flip', [False, True], ids=['no_flip', 'flip'])
@pytest.mark.parametrize('size', sorted(SIZES))
def test_udp_decode_of_real_targets_equals_mmposes_udp_heatmap_decode(size, flip):
    """Noisy UDP targets of real people (and of their mirrored crops for the flip test, flipped back without the
    shift as MMPose's UDP test_cfg does), decoded by our codec and by MMPose."""
    import torch
    mm = load()
    input_wh, heatmap_wh, sigma = SIZES[size]
    dataset = size.split('_')[0]
    layout = MPII if dataset == 'mpii' else COCO
    records = people(dataset, input_wh)[0][::2]
    codec = codec_for(DataConfig(dataset_root='', input_wh=input_wh, heatmap_wh=heatmap_wh, sigma=sigma, udp=True),
                      config.TestConfig())
    assert codec.method == 'dark-udp' and not codec.flip_shift      # whatever test.decode and test.shift_heatmap
    rng = np.random.default_rng(3)
    index = list(layout.flip_index)
    plain, mirrored = [], []
    for record in records:
        joints = affine_transform_points(record['joints'], codec.crop_matrix(record['center'], record['scale']))
        vis = np.asarray(record['joints_vis'])
        plain.append(codec.encode(joints, vis)[0])
        joints[:, 0] = input_wh[0] - 1 - joints[:, 0]                 # the crop of the mirrored image
        mirrored.append(codec.encode(joints[index], vis[index])[0])
    plain = (np.stack(plain) + 0.02 * rng.standard_normal((len(records),) + plain[0].shape)).astype(np.float32)
    mirrored = (np.stack(mirrored) + 0.02 * rng.standard_normal(plain.shape)).astype(np.float32)
    heatmaps = plain
    if flip:
        heatmaps = 0.5 * (plain + flip_back(mirrored, layout.flip_pairs, shift=codec.flip_shift))
        theirs = 0.5 * (torch.from_numpy(plain) + mm.flip_heatmaps(torch.from_numpy(mirrored), flip_indices=index,
                                                                   flip_mode='heatmap', shift_heatmap=False))
        assert np.array_equal(heatmaps, theirs.numpy())
    centers = np.stack([r['center'] for r in records])
    scales = np.stack([r['scale'] for r in records])
    ours, _ = codec.decode(heatmaps, centers, scales)
    theirs = mmpose_decode_to_image(mm, heatmaps, records, input_wh, heatmap_wh, sigma, codec.kernel)
    visible = np.stack([r['joints_vis'] for r in records]) > 0
    assert np.abs(ours - theirs)[visible].max() <= COORD_ATOL


def test_udp_oracle_equals_mmposes_pipeline_on_real_mpii():
    """val.py --oracle --udp's predictions for 300 real validation people = MMPose's TopdownAffine(use_udp) joints
    -> UDPHeatmap encode -> decode -> image pixels."""
    mm = load()
    records = load_mpii_annotations(require_real_mpii(), 'valid', need_images=False)[::10]
    ours, _ = oracle(records, DataConfig(dataset_root='', udp=True), config.TestConfig())
    codec = mm.UDPHeatmap(input_size=(256, 256), heatmap_size=(64, 64), sigma=2.0)
    blank = np.zeros((4, 4, 3), np.uint8)
    heatmaps = []
    for record in records:
        _, joints = mmpose_affine(mm, blank, record['center'], record['scale'], 0.0, (256, 256), record['joints'])
        heatmaps.append(codec.encode(joints[None], np.asarray(record['joints_vis'])[None])['heatmaps'])
    theirs = mmpose_decode_to_image(mm, heatmaps, records, (256, 256), (64, 64), 2.0, 11)
    # an empty map (a joint far outside the crop) decodes to NaN in MMPose (0 / 0 in its blur), to the crop's
    # corner with score 0 here (HRNet's get_max_preds)
    drawn = np.stack(heatmaps).max(axis=(2, 3)) > 0
    assert np.isnan(theirs[~drawn]).all() and drawn.mean() > 0.6
    assert np.abs(ours - theirs)[drawn].max() <= COORD_ATOL


def test_mirrored_udp_crop_is_the_crop_of_the_mirrored_image():
    """Why UDP's flip test needs no shift: the crop of the flipped image (x -> W - 1 - x, centre likewise) is the
    crop mirrored pixel for pixel; HRNet's crop is not (hence its one-column shift)."""
    records, image_dir = mpii_photos()
    record = records[0]
    image = read_image(os.path.join(image_dir, record['image']), True)
    mirrored_center = np.array([image.shape[1] - 1 - record['center'][0], record['center'][1]])
    for udp, expected in ((True, True), (False, False)):
        crop, _ = crop_image(image, record['center'], record['scale'], 0, (256, 256), udp=udp)
        flipped, _ = crop_image(cv2.flip(image, 1), mirrored_center, record['scale'], 0, (256, 256), udp=udp)
        difference = np.abs(crop[:, ::-1].astype(int) - flipped.astype(int))
        assert bool(difference.max() <= 1) is expected, (udp, difference.max())


def test_flip_of_joints_and_centre_equals_mmposes():
    mm = load()
    records, _ = coco_people()
    record = next(r for r in records if np.sum(r['joints_vis']) > 8)
    width, height = 640, 480
    vis = np.asarray(record['joints_vis'], np.float64)
    from lib.datasets.transforms import flip_joints
    ours, our_vis = flip_joints(record['joints'], vis, width, COCO.flip_pairs)
    theirs, their_vis = mm.flip_keypoints(record['joints'][None].copy(), vis[None].copy(), (width, height),
                                          list(COCO.flip_index))
    visible = our_vis > 0
    assert np.array_equal(our_vis, their_vis[0]) and np.allclose(ours[visible], theirs[0][visible], atol=1e-12)
    center = mm.flip_bbox(np.asarray(record['center'])[None], (width, height), bbox_format='center')[0]
    assert np.allclose(center, [width - 1 - record['center'][0], record['center'][1]], atol=1e-12)


@pytest.mark.parametrize('dataset', ['mpii', 'coco'])
def test_udp_training_samples_equal_mmposes_pipeline(dataset):
    """TopDownPoseDataset(udp) training samples (flip, scale, rotation and, on COCO, half-body boxes as drawn by
    its plan) against MMPose doing the same: flip_keypoints / flip_bbox on the flipped image, TopdownAffine
    (use_udp), UDPHeatmap.encode; crops, targets, weights and joints."""
    mm = load()
    input_wh, heatmap_wh = ((256, 256), (64, 64)) if dataset == 'mpii' else ((192, 256), (48, 64))
    records, image_dir = people(dataset, input_wh)
    layout = MPII if dataset == 'mpii' else COCO
    data = DataConfig(dataset_root='', dataset=dataset, input_wh=input_wh, heatmap_wh=heatmap_wh, udp=True,
                      scale_factor=0.3, rotation_factor=40.0, prob_half_body=0.5 if dataset == 'coco' else 0.0)
    dataset_ = TopDownPoseDataset(records, image_dir, layout, data, is_train=True)
    codec = mm.UDPHeatmap(input_size=input_wh, heatmap_size=heatmap_wh, sigma=data.sigma)
    flips = rotations = half_bodies = 0
    for index in range(0, len(records), 7):
        key = (index, 0, 1)
        plan, sample = dataset_.plan_sample(key), dataset_[key]
        record = records[index]
        image = read_image(os.path.join(image_dir, record['image']), True)
        joints, vis = record['joints'][None].copy(), np.asarray(record['joints_vis'], np.float64)[None]
        center = plan.center.astype(np.float64)
        if plan.flip:
            image = np.ascontiguousarray(image[:, ::-1])
            joints, vis = mm.flip_keypoints(joints, vis, (image.shape[1], image.shape[0]), list(layout.flip_index))
            center = mm.flip_bbox(center[None], (image.shape[1], image.shape[0]), bbox_format='center')[0]
        crop, crop_joints = mmpose_affine(mm, image, center, plan.scale, plan.rotation, input_wh, joints[0])
        target = codec.encode(crop_joints[None], vis)
        assert np.array_equal(sample['image'], normalize_image(crop, data.mean, data.std)), index
        assert np.abs(sample['target'] - target['heatmaps']).max() <= 1e-6, index
        assert np.array_equal(sample['target_weight'][:, 0], target['keypoint_weights'][0]), index
        visible = vis[0] > 0
        assert np.abs(sample['joints'][visible] - crop_joints[visible]).max() <= COORD_ATOL, index
        flips, rotations = flips + plan.flip, rotations + (plan.rotation != 0)
        half_bodies += not np.array_equal(plan.center, record['center'])
    assert flips and rotations and (half_bodies > 0) == (dataset == 'coco')


def test_half_body_box_under_udp_crops_as_mmposes_half_body_box():
    """HRNet's half-body box (our half_body_transform: the joints' mean, their extent x 1.5, the shorter side grown
    to the input's aspect) and MMPose's RandomHalfBody box ((mean, extent x 1.5) in pixels, the aspect fixed by
    TopdownAffine) give the same UDP crop of the same selected joints."""
    mm = load()
    records, image_dir = coco_people()
    record = next(r for r in records if np.sum(r['joints_vis']) > 8)
    image = read_image(os.path.join(image_dir, record['image']), True)

    class Upper:       # the draw that selects the upper body
        @staticmethod
        def standard_normal():
            return 0.0
    center, scale = half_body_transform(record['joints'], record['joints_vis'], COCO, 192 / 256, Upper())
    upper = [j for j in range(11) if record['joints_vis'][j] > 0]
    selected = record['joints'][upper]
    their_center = selected.mean(axis=0)
    their_scale = (selected.max(axis=0) - selected.min(axis=0)) * 1.5 / PIXEL_STD
    ours, _ = crop_image(image, center, scale, 0, (192, 256), udp=True)
    theirs, _ = mmpose_affine(mm, image, their_center, their_scale, 0.0, (192, 256), record['joints'])
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1


def test_udp_and_the_hrnet_crop_differ_by_the_pixel_spacing():
    """On a 256 crop the two matrices differ by the (n - 1) / n zoom: the box's edges land on the pixel centres 0
    and 255 and its centre on 127.5 (UDP), instead of 0, 256 and 128 (HRNet: n pixels span n spacings)."""
    center, scale = (500.0, 400.0), 1.28
    udp = get_udp_affine_transform(center, scale, 0, (256, 256))
    hrnet = get_affine_transform(center, scale, 0, (256, 256))
    left_edge = np.array([[500.0 - 128, 400.0]])
    assert np.allclose(affine_transform_points(left_edge, udp), [[0.0, 127.5]], atol=1e-4)
    assert np.allclose(affine_transform_points(left_edge, hrnet), [[0.0, 128.0]], atol=1e-4)
    assert np.isclose(udp[0, 0] / hrnet[0, 0], 255 / 256)

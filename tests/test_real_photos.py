"""The real MPII photos end to end: the 269 people of annot/valid_photos.json on their 245 real validation JPEGs
(shared data, PROVENANCE.md). The training dataset on them (real JPEG sizes, real person scales, flips of the
real visibilities), train.py for three iterations, val.py and infer.py with those weights. The tiny hourglass
means its PCKh says nothing; that the photos go through every step, at their real sizes, does."""
import json
import os

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from PIL import Image
from scipy.io import loadmat

import infer
from lib.config import DataConfig
from lib.core.mpii_eval import evaluate_pckh, load_mpii_ground_truth
from lib.datasets.image_io import jpeg_size, read_image
from lib.datasets.mpii import SCALE_PADDING, load_mpii_annotations
from lib.datasets.pose_dataset import TopDownPoseDataset
from lib.datasets.skeletons import MPII
from lib.datasets.transforms import PIXEL_STD
from tests.helpers import CPU, require_real_mpii, run_train, run_val

PHOTOS = 'valid_photos'
NUM_PEOPLE = 269
INPUT = 64                      # tests/helpers.TINY_MODEL's input side; heatmaps are a quarter of it
FLIP_INDEX = np.array(MPII.flip_index)


def photo_entries(root: str) -> list:
    """The raw JSON entries (1-based pixels, scale before HRNet's x1.25), independent of our parser."""
    with open(os.path.join(root, 'annot', f'{PHOTOS}.json')) as f:
        return json.load(f)


def photo_dataset(root: str, **overrides) -> TopDownPoseDataset:
    config = DataConfig(dataset_root=root, input_wh=(INPUT, INPUT), heatmap_wh=(INPUT // 4, INPUT // 4),
                        **overrides)
    return TopDownPoseDataset(load_mpii_annotations(root, PHOTOS), os.path.join(root, 'images'), MPII, config,
                              is_train=True)


def key_where(dataset: TopDownPoseDataset, index: int, flip: bool) -> tuple:
    """The first (index, seed 0, epoch) training key whose seeded draw flips (or does not flip) the sample."""
    for epoch in range(100):
        if dataset.plan_sample((index, 0, epoch)).flip == flip:
            return index, 0, epoch
    raise AssertionError(f'no epoch below 100 draws flip={flip} for sample {index}')


# ---------------------------------------------------------------- the training dataset on the photos

def test_the_photos_are_real_jpegs_decoded_at_their_header_size():
    root = require_real_mpii()
    names = sorted({entry['image'] for entry in photo_entries(root)})
    assert len(names) == 245            # images/ holds 7 test-set photos besides
    sizes = set()
    for name in names:
        path = os.path.join(root, 'images', name)
        with Image.open(path) as image:          # PIL reads the header; ours (jpeg_size) must agree
            assert image.format == 'JPEG'
            header_wh = image.size
        assert jpeg_size(path) == header_wh, name
        assert read_image(path, color_rgb=True).shape == (header_wh[1], header_wh[0], 3), name
        sizes.add(header_wh)
    assert len(sizes) > 1 and min(w for w, _ in sizes) >= 400     # real photos of several sizes, not thumbnails


def test_every_training_sample_of_the_photos_has_finite_targets():
    root = require_real_mpii()
    dataset = photo_dataset(root)           # HRNet's augmentation: scale 0.25, rotation 30, flip
    assert len(dataset) == NUM_PEOPLE
    weighted = 0
    for index in range(len(dataset)):
        sample = dataset[(index, 0, 0)]
        assert sample['image'].shape == (3, INPUT, INPUT) and np.all(np.isfinite(sample['image']))
        assert sample['target'].shape == (16, INPUT // 4, INPUT // 4) and np.all(np.isfinite(sample['target']))
        weight = sample['target_weight'][:, 0]
        assert np.all(np.isin(weight, (0.0, 1.0))) and np.all(weight <= sample['joints_vis'])
        weighted += int(weight.sum())
    assert weighted > 0.8 * sum(sum(entry['joints_vis']) for entry in photo_entries(root))


def test_real_person_scales_set_the_crop_without_augmentation():
    """scale_factor = rotation_factor = 0, no flip: a joint lands at (p - c) * INPUT / (200 * 1.25 * s) + INPUT / 2
    with c and s straight from the JSON (HRNet's +15 s centre shift and 1-based pixels), so the crop covers
    the real person box, 1.25 x 200 x s px wide."""
    root = require_real_mpii()
    dataset = photo_dataset(root, scale_factor=0.0, rotation_factor=0.0, flip=False)
    entries = photo_entries(root)
    box_px = []
    for index in range(0, NUM_PEOPLE, 7):
        entry, sample = entries[index], dataset[(index, 0, 0)]
        s = entry['scale']
        center = np.array(entry['center']) + [0, 15 * s] - 1
        side = PIXEL_STD * SCALE_PADDING * s
        assert_allclose(sample['scale'], [SCALE_PADDING * s] * 2, rtol=1e-6)
        visible = np.array(entry['joints_vis']) > 0
        expected = (np.array(entry['joints']) - 1 - center) * INPUT / side + INPUT / 2
        assert_allclose(sample['joints'][visible], expected[visible], atol=1e-3)
        box_px.append(side)
    assert min(box_px) < 400 < max(box_px)            # MPII's people are small and large


def test_a_flip_swaps_the_real_visibilities_of_left_and_right():
    """The people of valid_photos whose left and right visibilities differ: on a seeded key whose draw flips,
    joints_vis and target_weight are the annotation's swapped (MPII.flip_index), on one that does not, as
    annotated; and the flipped joints are the unflipped partner's, mirrored in the crop."""
    root = require_real_mpii()
    dataset = photo_dataset(root, scale_factor=0.0, rotation_factor=0.0)
    entries = photo_entries(root)
    asymmetric = [i for i, entry in enumerate(entries)
                  if np.any(np.array(entry['joints_vis']) != np.array(entry['joints_vis'])[FLIP_INDEX])]
    assert len(asymmetric) == 12
    for index in asymmetric:
        vis = np.array(entries[index]['joints_vis'], np.float32)
        plain, flipped = dataset[key_where(dataset, index, False)], dataset[key_where(dataset, index, True)]
        assert_array_equal(plain['joints_vis'], vis)
        assert_array_equal(flipped['joints_vis'], vis[FLIP_INDEX])
        on_map = plain['target_weight'][:, 0][FLIP_INDEX]           # joints inside the crop, as flipped
        assert_array_equal(flipped['target_weight'][:, 0], vis[FLIP_INDEX] * on_map)
        if on_map[vis[FLIP_INDEX] > 0].all():                       # 9 of the 12: every joint in the crop
            assert_array_equal(flipped['target_weight'][:, 0], vis[FLIP_INDEX])
        shown = vis[FLIP_INDEX] > 0
        # x -> W - x - 1 moves the joints and the centre alike, so in the crop it is x -> INPUT - x
        mirrored = plain['joints'][FLIP_INDEX] * [-1, 1] + [INPUT, 0]
        assert_allclose(flipped['joints'][shown], mirrored[shown], atol=0.05)


# ---------------------------------------------------------------- train.py, val.py and infer.py on the photos

@pytest.fixture(scope='module')
def photo_run(tmp_path_factory):
    """The run folder of the tiny hourglass trained three iterations on the photos, validated on them."""
    root = require_real_mpii()
    output = tmp_path_factory.mktemp('photo_run')
    assert run_train(root, output, '--train_set', PHOTOS, '--valid_set', PHOTOS, '--max_iters', '3',
                     '--epochs', '1') == 0
    return os.path.join(str(output), 'run')


def check_pckh_of_269_people(folder: str, root: str) -> dict:
    """results.json's metrics, checked to be evaluate_pckh of pred.mat on gt_valid_photos.mat (269 people)."""
    preds = loadmat(os.path.join(folder, 'pred.mat'))['preds']
    assert preds.shape == (NUM_PEOPLE, 16, 2) and np.all(np.isfinite(preds))
    metrics = json.load(open(os.path.join(folder, 'results.json')))['metrics']
    gt = load_mpii_ground_truth(os.path.join(root, 'annot', f'gt_{PHOTOS}.mat'))
    assert gt.pos_gt_src.shape[2] == NUM_PEOPLE
    for name, value in evaluate_pckh(preds - 1.0, gt).items():     # pred.mat is 1-based
        assert metrics[name] == pytest.approx(value, abs=1e-9), name
    return metrics


def test_train_runs_on_the_photos(photo_run):
    log = open(os.path.join(photo_run, 'train.log')).read()
    assert 'Loaded 269 training and 269 validation samples' in log
    losses = [float(line.split(' loss ')[1].split()[0]) for line in log.splitlines() if ' loss ' in line]
    assert len(losses) == 3 and all(np.isfinite(losses)) and all(loss > 0 for loss in losses)
    assert os.path.isfile(os.path.join(photo_run, 'best_model', 'model.pdparams'))
    check_pckh_of_269_people(os.path.join(photo_run, 'last_eval'), require_real_mpii())


def test_val_on_the_photos_repeats_the_training_validation(photo_run, tmp_path, capsys):
    root = require_real_mpii()
    lines = run_val(capsys, '--pretrained_model', os.path.join(photo_run, 'best_model', 'model.pdparams'),
                    '--dataset_root', root, '--valid_set', PHOTOS, '--output_dir', tmp_path, *CPU)
    assert lines[0].startswith('| Arch | Head | Shoulder |') and lines[-1].startswith('[EVAL] Ankle=')
    metrics = check_pckh_of_269_people(str(tmp_path), root)
    trained = json.load(open(os.path.join(photo_run, 'last_eval', 'results.json')))['metrics']
    assert metrics == pytest.approx(trained, abs=1e-6)      # the same weights, the same flip test


def test_infer_on_a_real_photo(photo_run, tmp_path):
    root = require_real_mpii()
    entry = photo_entries(root)[0]
    photo = os.path.join(root, 'images', entry['image'])
    side = PIXEL_STD * SCALE_PADDING * entry['scale']         # the annotated person's box, as --bbox x,y,w,h
    x, y = np.array(entry['center']) + [0, 15 * entry['scale']] - 1 - side / 2
    for name, extra in (('whole', []), ('box', ['--bbox', f'{x:.1f},{y:.1f},{side:.1f},{side:.1f}'])):
        out = tmp_path / name
        assert infer.main(['--pretrained_model', os.path.join(photo_run, 'best_model', 'model.pdparams'),
                           '--input', photo, '--output_dir', str(out), '--device', 'cpu', *extra]) == 0
        source, drawn = cv2.imread(photo), cv2.imread(str(out / entry['image']))
        assert drawn is not None and drawn.shape == source.shape
        (record,) = json.load(open(out / 'keypoints.json'))
        assert record['image'] == entry['image'] and len(record['persons']) == 1
        keypoints = np.array(record['persons'][0]['keypoints'])
        assert keypoints.shape == (16, 3) and np.all(np.isfinite(keypoints))
        if extra:      # a box inside the photo: the joints are predicted inside its padded crop
            assert np.all(np.abs(keypoints[:, :2] - [x + side / 2, y + side / 2]) <= side * SCALE_PADDING / 2 + 1)

"""Synthetic MPII (lib/datasets/synthetic.py): HRNet layout, 1-based conventions, gt_valid.mat, determinism."""
import importlib.util
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io as sio

from lib.datasets.skeletons import MPII
from lib.datasets.synthetic import PIXEL_STD, make_synthetic_mpii, render_sample
from tests.helpers import MPII_REAL

REPO = Path(__file__).resolve().parents[1]
NUM_TRAIN, NUM_VALID, SEED = 20, 10, 0
K = MPII.num_joints


@pytest.fixture(scope='module')
def root(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp('synthetic')
    make_synthetic_mpii(str(path), num_train=NUM_TRAIN, num_valid=NUM_VALID, seed=SEED)
    return path


def _load(root: Path, name: str) -> list:
    with open(root / 'annot' / f'{name}.json') as f:
        return json.load(f)


def _image_wh(root: Path, entry: dict) -> tuple:
    img = cv2.imread(str(root / 'images' / entry['image']))
    assert img is not None, f'cannot read {entry["image"]}'
    return img.shape[1], img.shape[0]


def test_layout_and_counts(root):
    assert sorted(os.listdir(root / 'annot')) == ['gt_valid.mat', 'test.json', 'train.json',
                                                  'trainval.json', 'valid.json']
    images = sorted(os.listdir(root / 'images'))
    assert len(images) == NUM_TRAIN + NUM_VALID
    assert all(len(n) == 13 and n[:9].isdigit() and n.endswith('.jpg') for n in images)
    train, valid = _load(root, 'train'), _load(root, 'valid')
    assert (len(train), len(valid)) == (NUM_TRAIN, NUM_VALID)
    assert train[0]['image'] == '000000001.jpg'
    assert sorted(e['image'] for e in train + valid) == images
    assert _load(root, 'trainval') == train + valid
    assert _load(root, 'test') == [{k: e[k] for k in ('image', 'center', 'scale')} for e in valid]


def test_entry_fields(root):
    for e in _load(root, 'trainval'):
        assert set(e) == {'image', 'center', 'scale', 'joints', 'joints_vis'}
        assert isinstance(e['image'], str)
        assert len(e['center']) == 2 and all(isinstance(v, float) for v in e['center'])
        assert isinstance(e['scale'], float) and e['scale'] > 0
        assert len(e['joints']) == K and all(len(p) == 2 and all(isinstance(v, float) for v in p)
                                             for p in e['joints'])
        assert len(e['joints_vis']) == K and all(type(v) is int and v in (0, 1) for v in e['joints_vis'])
        for p, v in zip(e['joints'], e['joints_vis']):
            assert (p == [-1.0, -1.0]) == (v == 0), f'{e["image"]}: vis {v} but joint {p}'


def test_visible_joints_inside_image_1_based(root):
    for e in _load(root, 'trainval'):
        w, h = _image_wh(root, e)
        joints, vis = np.array(e['joints']), np.array(e['joints_vis']) == 1
        assert np.all((joints[vis] >= 1) & (joints[vis] <= [w, h])), e['image']


def test_missing_joint_fraction_is_small_but_nonzero():
    vis = np.array([render_sample(SEED, 'train', i)[1]['joints_vis'] for i in range(150)])
    assert 0.01 <= 1 - vis.mean() <= 0.08


def test_hrnet_crop_contains_visible_joints(root):
    for e in _load(root, 'trainval'):
        # SPEC A.4, applied as HRNet's loader does.
        scale = e['scale']
        center = np.array(e['center']) + [0.0, 15 * scale]
        scale *= 1.25
        center -= 1
        joints = np.array(e['joints'])[np.array(e['joints_vis']) == 1] - 1
        half = scale * PIXEL_STD / 2
        assert np.all(np.abs(joints - center) <= half), e['image']
        # The figure fills about 1/1.25 of the crop, so a crop is neither mostly empty nor too tight.
        extent = joints.max(axis=0) - joints.min(axis=0)
        assert 0.4 * 2 * half <= extent.max() <= 0.8 * 2 * half, e['image']


def test_gt_valid_mat_matches_valid_json(root):
    d = sio.loadmat(str(root / 'annot' / 'gt_valid.mat'))
    valid = _load(root, 'valid')
    n = len(valid)
    vis = np.array([e['joints_vis'] for e in valid])             # [N, K]
    joints = np.array([e['joints'] for e in valid])              # [N, K, 2]
    assert d['jnt_missing'].shape == (K, n) and d['jnt_missing'].dtype == np.uint8
    assert d['pos_gt_src'].shape == (K, 2, n) and d['pos_gt_src'].dtype == np.float64
    assert d['headboxes_src'].shape == (2, 2, n) and d['headboxes_src'].dtype == np.float64
    np.testing.assert_array_equal(d['jnt_missing'], 1 - vis.T)
    expected = np.where(vis[..., None] == 1, joints, 0.0).transpose(1, 2, 0)   # real file: 0 when missing
    np.testing.assert_array_equal(d['pos_gt_src'], expected)
    boxes = np.stack([render_sample(SEED, 'valid', i)[2] for i in range(n)], axis=2)
    np.testing.assert_array_equal(d['headboxes_src'], boxes)
    assert np.all(boxes[1] > boxes[0]), 'head box corners must be top-left then bottom-right'


def test_dataset_joints_lookup(root):
    d = sio.loadmat(str(root / 'annot' / 'gt_valid.mat'))
    assert np.where(d['dataset_joints'] == 'head')[1][0] == 9
    assert [str(x[0]) for x in d['dataset_joints'][0]] == list(MPII.short_names)


def test_head_box_matches_real_mpii_normaliser(root):
    d = sio.loadmat(str(root / 'annot' / 'gt_valid.mat'))
    ok = (d['jnt_missing'][8] == 0) & (d['jnt_missing'][9] == 0)
    head_len = np.linalg.norm(d['pos_gt_src'][9] - d['pos_gt_src'][8], axis=0)[ok]
    diag = np.linalg.norm(d['headboxes_src'][1] - d['headboxes_src'][0], axis=0)[ok]
    # On the real gt_valid.mat, 0.6 * diagonal / head length is 0.75 for every sample.
    np.testing.assert_allclose(0.6 * diag / head_len, 0.75, atol=1e-3)


def test_mat_structure_matches_real_file(root):
    real_path = Path(MPII_REAL) / 'annot' / 'gt_valid.mat'
    if not real_path.exists():
        pytest.skip(f'real gt_valid.mat not found at {real_path}; set POSE_SHARED_DATA to the folder '
                    f'holding mpii/annot/gt_valid.mat to run this comparison.')
    real = sio.loadmat(str(real_path))
    ours = sio.loadmat(str(root / 'annot' / 'gt_valid.mat'))
    assert sorted(real) == sorted(ours)
    for name in (k for k in real if not k.startswith('__')):
        r, o = real[name], ours[name]
        assert (r.dtype, r.ndim, r.shape[:-1]) == (o.dtype, o.ndim, o.shape[:-1]), name
    assert ours['dataset_joints'].shape == real['dataset_joints'].shape
    for r, o in zip(real['dataset_joints'][0], ours['dataset_joints'][0]):
        assert (type(r), r.dtype, r.shape) == (type(o), o.dtype, o.shape)
    for name in ('head', 'lsho', 'rsho', 'lelb', 'relb', 'lwri', 'rwri', 'lhip', 'rhip', 'lkne', 'rkne',
                 'lank', 'rank'):
        assert (np.where(ours['dataset_joints'] == name)[1][0]
                == np.where(real['dataset_joints'] == name)[1][0]), name


def _all_bytes(root: Path) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


def test_deterministic_for_a_seed(root, tmp_path):
    make_synthetic_mpii(str(tmp_path / 'again'), num_train=NUM_TRAIN, num_valid=NUM_VALID, seed=SEED)
    assert _all_bytes(tmp_path / 'again') == _all_bytes(root)
    # An image does not depend on how many others are generated.
    make_synthetic_mpii(str(tmp_path / 'small'), num_train=2, num_valid=1, seed=SEED)
    for name in ('000000002.jpg', '100000001.jpg'):
        assert (tmp_path / 'small' / 'images' / name).read_bytes() == (root / 'images' / name).read_bytes()
    assert _load(tmp_path / 'small', 'valid') == _load(root, 'valid')[:1]


def test_different_seed_differs(root, tmp_path):
    make_synthetic_mpii(str(tmp_path), num_train=2, num_valid=1, seed=SEED + 1)
    name = '000000001.jpg'
    assert (tmp_path / 'images' / name).read_bytes() != (root / 'images' / name).read_bytes()
    assert _load(tmp_path, 'valid') != _load(root, 'valid')[:1]


@pytest.mark.parametrize('kwargs, received', [
    ({'num_train': 0}, 'num_train=0'),
    ({'num_valid': -3}, 'num_valid=-3'),
    ({'num_train': 2.5}, 'num_train=2.5'),
    ({'seed': -1}, 'seed=-1'),
    ({'root': ''}, "root=''"),
])
def test_bad_arguments_raise(tmp_path, kwargs, received):
    args = {'root': str(tmp_path), 'num_train': 1, 'num_valid': 1, 'seed': 0, **kwargs}
    with pytest.raises(ValueError, match='expected') as err:
        make_synthetic_mpii(**args)
    assert received in str(err.value)
    assert not (tmp_path / 'annot').exists(), 'nothing is written for bad arguments'


def test_cli_writes_dataset_and_summary(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location('make_synthetic_mpii', REPO / 'tools' / 'make_synthetic_mpii.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(['--output', str(tmp_path), '--num_train', '2', '--num_valid', '1', '--seed', '3'])
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and '2 train' in out and '1 valid' in out and str(tmp_path) in out
    assert len(_load(tmp_path, 'train')) == 2 and (tmp_path / 'annot' / 'gt_valid.mat').exists()

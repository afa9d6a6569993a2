"""MPII annotations and the training data pipeline: the real annotated images, the sampler, and the
errors a user sees for a wrong dataset folder, a malformed entry or an unreadable image."""
import json
import os
import shutil

import numpy as np
import paddle
import pytest

from lib.config import DataConfig
from lib.core.loss import StackedHeatmapLoss
from lib.datasets.loaders import build_dataset, train_loader
from lib.datasets.mpii import load_mpii_annotations
from lib.datasets.sampler import SeededBatchSampler
from lib.models import build_model
from tests.helpers import require_real_mpii

REAL_IMAGES = ('005808361.jpg', '052475643.jpg', '051423444.jpg', '004645041.jpg', '060754485.jpg')


def write_root(root, entries, images=()):
    os.makedirs(os.path.join(root, 'annot'), exist_ok=True)
    os.makedirs(os.path.join(root, 'images'), exist_ok=True)
    with open(os.path.join(root, 'annot', 'train.json'), 'w') as f:
        json.dump(entries, f)
    for source in images:
        shutil.copy(source, os.path.join(root, 'images'))
    return str(root)


@pytest.fixture(scope='module')
def real_root(tmp_path_factory):
    """The first 5 entries of the real valid.json (whose images are shared) as a training set."""
    mpii = require_real_mpii()
    entries = json.load(open(os.path.join(mpii, 'annot', 'valid.json')))[:5]
    assert [e['image'] for e in entries] == list(REAL_IMAGES)
    images = [os.path.join(mpii, 'images', name) for name in REAL_IMAGES]
    return write_root(tmp_path_factory.mktemp('real5'), entries, images)


def test_loader_applies_hrnet_adjustments_to_the_real_first_entry():
    records = load_mpii_annotations(require_real_mpii(), 'valid')
    assert len(records) == 2958
    first = records[0]                       # SPEC A.4 worked example
    np.testing.assert_allclose(first['center'], [965.0, 409.77732], atol=1e-5)
    np.testing.assert_allclose(first['scale'], [5.89811, 5.89811], atol=1e-5)
    np.testing.assert_allclose(first['joints'][0], [803, 710])
    np.testing.assert_allclose(first['joints'][9], [961.2409, 79.0306])


def test_real_images_through_validation_crop_match_the_known_answer(real_root):
    dataset = build_dataset(DataConfig(dataset_root=real_root), 'train', is_train=False)
    sample = dataset[0]
    # SPEC C.3: joint 0 -> (92.842975, 193.15393), joint 9 -> (127.184205, 56.221786)
    np.testing.assert_allclose(sample['joints'][0], [92.842975, 193.15393], atol=1e-3)
    np.testing.assert_allclose(sample['joints'][9], [127.184205, 56.221786], atol=1e-3)
    assert np.unravel_index(sample['target'][0].argmax(), (64, 64)) == (48, 23)
    assert np.unravel_index(sample['target'][9].argmax(), (64, 64)) == (14, 32)


@pytest.mark.parametrize('size', [256, 384])
def test_real_images_through_training_pipeline_and_model(real_root, size):
    config = DataConfig(dataset_root=real_root, input_wh=(size, size), heatmap_wh=(size // 4, size // 4))
    dataset = build_dataset(config, 'train', is_train=True)
    loader = train_loader(dataset, batch_size=5, workers=0, seed=3)
    loader.batch_sampler.set_epoch(0)
    batch = next(iter(loader))
    assert batch['image'].shape == [5, 3, size, size]
    assert batch['target'].shape == [5, 16, size // 4, size // 4]
    assert batch['target_weight'].shape == [5, 16, 1]
    for n in range(5):
        joints, weights = batch['joints'][n].numpy(), batch['target_weight'][n].numpy()[:, 0]
        target = batch['target'][n].numpy()
        for k in range(16):
            inside = weights[k] > 0 and (joints[k] >= 0).all() and (joints[k] < size - 2).all()
            if inside:   # the Gaussian peak sits at the joint's heatmap position
                peak_y, peak_x = np.unravel_index(target[k].argmax(), target[k].shape)
                assert abs(peak_x - joints[k, 0] / 4) <= 0.5 and abs(peak_y - joints[k, 1] / 4) <= 0.5
    image = batch['image'].numpy()
    assert -2.2 < image.min() < 0 < image.max() < 2.7       # ImageNet-normalised pixels
    model = build_model('hourglass', num_stacks=2, num_features=16)
    outputs = model(batch['image'])
    loss = StackedHeatmapLoss('sum')(outputs, batch['target'], batch['target_weight'])
    loss.backward()
    assert len(outputs) == 2 and outputs[-1].shape == [5, 16, size // 4, size // 4]
    assert np.isfinite(float(loss)) and float(loss) > 0


def test_training_samples_are_reproducible_per_seed_epoch_and_index(real_root):
    dataset = build_dataset(DataConfig(dataset_root=real_root), 'train', is_train=True)
    a, b, c = dataset[(2, 7, 0)], dataset[(2, 7, 0)], dataset[(2, 7, 1)]
    np.testing.assert_array_equal(a['image'], b['image'])
    assert not np.array_equal(a['image'], c['image'])


def test_flip_augmentation_keeps_left_and_right_joint_labels(real_root):
    """A flipped sample must put the left-ankle channel on the person's left ankle: compare the
    crop joints of a flipped draw against the unflipped ones mirrored in the crop."""
    config = DataConfig(dataset_root=real_root, scale_factor=0.0, rotation_factor=0.0)
    dataset = build_dataset(config, 'train', is_train=True)
    plain = build_dataset(config, 'train', is_train=False)[0]
    flipped = None
    for epoch in range(20):
        sample = dataset[(0, 0, epoch)]
        if not np.allclose(sample['joints'], plain['joints']):
            flipped = sample
            break
    assert flipped is not None, 'no flipped draw in 20 epochs (probability 1e-6)'
    mirror = plain['joints'].copy()
    mirror[:, 0] = 256 - 1 - mirror[:, 0]       # flip in the crop, HRNet's W - x - 1
    mirror = mirror[[5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10]]
    np.testing.assert_allclose(flipped['joints'], mirror, atol=1.5)


def test_sampler_covers_each_sample_once_and_shards_batches():
    single = SeededBatchSampler(20, 4, seed=5)
    single.set_epoch(3)
    batches = list(single)
    assert len(batches) == 5 and sorted(k[0] for b in batches for k in b) == list(range(20))
    assert all(k[1:] == (5, 3) for b in batches for k in b)
    ranks = [SeededBatchSampler(20, 2, seed=5, num_replicas=2, rank=r) for r in (0, 1)]
    for sampler in ranks:
        sampler.set_epoch(3)
    merged = [a + b for a, b in zip(*ranks)]
    assert merged == batches
    single.set_epoch(3, start_batch=2)
    assert list(single) == batches[2:]


def test_missing_dataset_folder_explains_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'(?s)nowhere does not exist.*annot/train.json.*HRNet'):
        load_mpii_annotations(str(tmp_path / 'nowhere'), 'train')


def test_missing_images_folder_is_named(tmp_path):
    root = write_root(tmp_path, [])
    os.rmdir(os.path.join(root, 'images'))
    with pytest.raises(FileNotFoundError, match='images does not exist'):
        load_mpii_annotations(root, 'train')


@pytest.mark.parametrize('broken, problem', [
    ({'joints': [[1, 2]] * 15}, r'joints has shape \(15, 2\)'),
    ({'scale': -1}, 'center must be two finite numbers and scale a positive number'),
    ({'center': 'middle'}, 'center must be two'),
    ({'joints_vis': None}, r'joints has shape \(16, 2\) and joints_vis \(\)'),
])
def test_malformed_entry_is_reported_with_its_index(tmp_path, broken, problem):
    good = {'image': 'a.jpg', 'center': [50, 50], 'scale': 1.0, 'joints': [[10, 10]] * 16, 'joints_vis': [1] * 16}
    entries = [good, good, good, dict(good, **broken)]
    root = write_root(tmp_path, entries)
    with pytest.raises(ValueError, match=f'entry 3 is malformed: {problem}'):
        load_mpii_annotations(root, 'train')


def test_missing_field_and_invalid_json(tmp_path):
    root = write_root(tmp_path, [{'image': 'a.jpg', 'center': [1, 1]}])
    with pytest.raises(ValueError, match="entry 0 is malformed: missing field 'scale'"):
        load_mpii_annotations(root, 'train')
    with open(os.path.join(root, 'annot', 'train.json'), 'w') as f:
        f.write('[{"image": ')
    with pytest.raises(ValueError, match='is not valid JSON'):
        load_mpii_annotations(root, 'train')


def test_unreadable_image_names_its_path(tmp_path):
    entry = {'image': 'broken.jpg', 'center': [50, 50], 'scale': 0.5, 'joints': [[40, 40]] * 16, 'joints_vis': [1] * 16}
    root = write_root(tmp_path, [entry, dict(entry, image='absent.jpg')])
    with open(os.path.join(root, 'images', 'broken.jpg'), 'wb') as f:
        f.write(b'not a jpeg')
    dataset = build_dataset(DataConfig(dataset_root=root), 'train', is_train=False)
    with pytest.raises(OSError, match='cannot read image .*broken.jpg: OpenCV cannot decode it'):
        dataset[0]
    with pytest.raises(OSError, match='cannot read image .*absent.jpg: it does not exist'):
        dataset[1]


def test_paddle_dataloader_with_workers_delivers_the_same_batches(real_root):
    dataset = build_dataset(DataConfig(dataset_root=real_root), 'train', is_train=True)
    batches = []
    for workers in (0, 2):
        loader = train_loader(dataset, batch_size=2, workers=workers, seed=11)
        loader.batch_sampler.set_epoch(1)
        batches.append([b['image'].numpy() for b in loader])
    assert len(batches[0]) == 2
    for a, b in zip(*batches):
        np.testing.assert_array_equal(a, b)
    paddle.device.set_device('cpu')

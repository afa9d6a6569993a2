"""Every decode site decodes as the run's codec says (lib/datasets/codec.py): val.py with --decode dark and with a
--udp run's config.json, the exported model's inference.json, PosePredictor on the exported Paddle Inference model
and on dygraph, and infer.py --decode. Each site is compared with the others on the same people."""
import json
import os
import shutil

import cv2
import numpy as np
import paddle
import pytest
from scipy.io import loadmat

import export
import val
from lib.config import ModelConfig, resolve_config
from lib.datasets.codec import codec_for
from lib.datasets.mpii import load_mpii_annotations
from lib.inference.backends import load_backend
from lib.inference.conventions import weights_config
from lib.inference.predictor import PosePredictor
from lib.datasets.transforms import BOX_PADDING, PIXEL_STD
from tests.helpers import CPU
from tests.test_export import make_run

SIZE = 64


@pytest.fixture(scope='module')
def data_root(synthetic_mpii, tmp_path_factory):
    """Generated MPII data whose validation boxes survive box_to_center_scale's float32 exactly (dyadic centres,
    scales 0.8 and 1.6, i.e. 1.0 and 2.0 after HRNet's x 1.25), so that val.py and PosePredictor crop alike."""
    source = synthetic_mpii(16, 8, 1)
    root = tmp_path_factory.mktemp('exact_boxes')
    shutil.copytree(source, root, dirs_exist_ok=True)
    entries = json.load(open(root / 'annot' / 'valid.json'))
    for i, entry in enumerate(entries):
        entry['center'] = [round(entry['center'][0]) + 0.5, round(entry['center'][1]) + 0.25]
        entry['scale'] = 0.8 if i % 2 else 1.6
    (root / 'annot' / 'valid.json').write_text(json.dumps(entries))
    return str(root)


def weights_with(folder, udp: bool, decode: str = 'quarter'):
    """A calibrated 1-stack hourglass saved as a run whose config.json says data.udp / test.decode."""
    paddle.seed(0)
    path, _ = make_run(folder, ModelConfig('hourglass', num_stacks=1, num_features=8), SIZE)
    saved = json.load(open(folder / 'config.json'))
    saved['data']['udp'], saved['test']['decode'] = udp, decode
    (folder / 'config.json').write_text(json.dumps(saved))
    return path


def val_preds(weights, data_root, out, *extra):
    assert val.main(['--pretrained_model', weights, '--dataset_root', data_root, '--output_dir', str(out), *CPU,
                     *extra]) == 0
    return loadmat(str(out / 'pred.mat'))['preds'] - 1.0, json.load(open(out / 'results.json'))   # 0-based


def boxes_of(records):
    """Person boxes (x, y, w, h) whose box_to_center_scale is each record's (center, scale)."""
    sides = np.array([r['scale'][0] for r in records]) * PIXEL_STD / BOX_PADDING
    centers = np.stack([r['center'] for r in records])
    return np.concatenate([centers - sides[:, None] / 2, np.stack([sides, sides], 1)], 1).astype(np.float32)


def predictor_preds(predictor, records, image_dir):
    """All people in one backend batch, as val.py's one batch of 8."""
    images = [cv2.imread(os.path.join(image_dir, record['image'])) for record in records]
    results = predictor.predict_many(images, [box[None] for box in boxes_of(records)])
    return np.stack([keypoints[0] for keypoints, _ in results])


@pytest.mark.parametrize('udp', [False, True], ids=['dark', 'udp'])
def test_val_export_and_predictor_decode_alike(udp, data_root, tmp_path):
    weights = weights_with(tmp_path / 'run', udp=udp)
    records = load_mpii_annotations(data_root, 'valid')
    # val.py: --decode dark (a --udp run decodes with DARK-UDP whatever --decode says)
    dark, results = val_preds(weights, data_root, tmp_path / 'val_dark', '--decode', 'dark')
    quarter, quarter_results = val_preds(weights, data_root, tmp_path / 'val_quarter')
    assert results['test']['decode'] == 'dark' and quarter_results['test']['decode'] == 'quarter'
    assert results['codec']['decoder'] == ('dark-udp' if udp else 'dark')
    assert results['codec']['flip_shift'] is (not udp)
    if udp:      # both DARK-UDP
        assert quarter_results['codec']['decoder'] == 'dark-udp' and np.array_equal(dark, quarter)
    else:        # the decoders differ on these heatmaps
        assert quarter_results['codec']['decoder'] == 'quarter' and np.abs(dark - quarter).max() > 1e-3
    # the exported model keeps udp and the decoder: --decode dark on export
    assert export.main(['--pretrained_model', weights, '--output_dir', str(tmp_path / 'export'), '--decode', 'dark',
                        '--no_check']) == 0
    saved = json.load(open(tmp_path / 'export' / 'inference.json'))
    assert saved['data']['udp'] is udp and saved['test']['decode'] == 'dark'
    for kind, path in (('paddle-inference', str(tmp_path / 'export')), ('dygraph', weights)):
        # the run's config.json says quarter: the dygraph backend decodes with DARK by a flag, as infer.py --decode
        flags = {'device': 'cpu', 'test.decode': 'dark' if kind == 'dygraph' else None}
        config = resolve_config(flags, run_config=weights_config(path))
        assert config.test.decode == 'dark' and config.data.udp is udp
        predictor = PosePredictor.from_config(load_backend(kind, path, config), config)
        assert predictor.codec == codec_for(config.data, config.test) and predictor.codec.udp is udp
        ours = predictor_preds(predictor, records, os.path.join(data_root, 'images'))
        moved = np.abs(ours - dark).max(axis=-1)
        if kind == 'dygraph':    # the same crops, the same batch, the same network: the same keypoints
            assert moved.max() <= 1e-4, moved.max()
        else:                    # oneDNN rounds differently; DARK's Newton step on these random-weight heatmaps
            assert np.median(moved) < 1e-3 and (moved < 0.5).mean() > 0.9, np.sort(moved.ravel())[-5:]


@pytest.mark.parametrize('args, message', [
    (['--udp', '--unbiased_encoding'], r'data\.udp \(from the flags\) and data\.unbiased_encoding .*Choose one'),
    (['--set', 'test.decode=taylor'], r"test\.decode='taylor' \(from --set\) is out of range; expected one of "
                                      r"\['quarter', 'dark'\]"),
    (['--set', 'test.blur_kernel=4'], r'test\.blur_kernel=4 .*an odd kernel size >= 3'),
])
def test_bad_decoder_settings_are_refused_with_their_source(args, message, data_root, tmp_path):
    with pytest.raises(ValueError, match=message):
        val.main(['--oracle', '--dataset_root', data_root, '--output_dir', str(tmp_path), *args])

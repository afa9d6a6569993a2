"""TF-SimpleHumanPose checkpoints (lib/convert/tf_simplehumanpose.py).

tests/tf_simplehumanpose_reference.py writes a real checkpoint with TensorFlow (the reference's TF-slim
variable names and layouts, random values, Adam slots and global_step, tf.compat.v1.train.Saver) and the
heatmaps its NHWC network computes with BatchNorm epsilon 1e-9 and x255 outputs. The converter reads it
with TensorFlow's checkpoint reader; our pose_resnet_50 must give those heatmaps / 255. TensorFlow is an
optional dependency of this converter only: without it these tests skip.
"""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

from lib.convert import convert_state, tf_simplehumanpose
from tests.helpers import REPO, SHARED_DATA, require
from tools import convert_weights as tool

if importlib.util.find_spec('tensorflow') is None:
    pytest.skip('tensorflow is not installed; it is needed only by the tf_simplehumanpose converter '
                '(pip install tensorflow-cpu)', allow_module_level=True)

# TensorFlow, once imported, stays in the process, and its oneDNN next to Paddle Inference's crashes the process
# (a segmentation fault in tests/test_export.py's oneDNN test when it runs after these): conftest.py runs the
# tests marked so after all others.
pytestmark = pytest.mark.tensorflow_in_process

TOLERANCE = 1e-4
WRITER = os.path.join(REPO, 'tests', 'tf_simplehumanpose_reference.py')
COCO_MINI = os.path.join(SHARED_DATA, 'coco', 'coco_mini')
# SEED_WEIGHTS 1.4, written out independently of the converter: BGR 0-255 minus the VGG means, no std.
TF_DATA = {'color_rgb': False, 'mean': [123.68 / 255, 116.78 / 255, 103.94 / 255], 'std': [1 / 255] * 3}


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """(prefix, input NHWC [2, 96, 64, 3], TF heatmaps NHWC) of a 17-joint checkpoint written by TensorFlow."""
    root = tmp_path_factory.mktemp('tf')
    x = np.random.default_rng(1).uniform(-120, 140, (2, 96, 64, 3)).astype(np.float32)
    np.save(root / 'x.npy', x)
    (root / 'model_dump').mkdir()
    prefix = str(root / 'model_dump' / 'snapshot_140.ckpt')
    done = subprocess.run([sys.executable, WRITER, prefix, '17', str(root / 'x.npy'), str(root / 'y.npy')],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return prefix, x, np.load(root / 'y.npy')


def ours(conversion, x_nhwc):
    conversion.model.eval()
    with paddle.no_grad():
        out = conversion.model(paddle.to_tensor(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))))[-1]
    return out.numpy()


def test_reader_keeps_the_model_and_drops_the_optimizer(checkpoint):
    prefix, _, _ = checkpoint
    state = tf_simplehumanpose.read_checkpoint(prefix + '.index')      # a file of the prefix works too
    dropped = tf_simplehumanpose.dropped_unused(state)
    assert {'global_step', 'beta1_power', 'beta2_power'} <= set(dropped)
    assert any(k.endswith('/Adam_1') for k in dropped)
    assert len(state) - len(dropped) == 282                            # SEED_WEIGHTS 1.4
    assert state['up1/weights'].shape == (4, 4, 256, 2048) and state['out/weights'].shape == (1, 1, 256, 17)


def test_converted_model_gives_the_tf_heatmaps_over_255(checkpoint, monkeypatch):
    prefix, x, theirs = checkpoint
    state = tf_simplehumanpose.read_checkpoint(prefix)
    conversion = convert_state('tf_simplehumanpose', state, prefix)
    assert (conversion.model_name, conversion.model_kwargs) == ('pose_resnet_50', {'num_joints': 17})
    expected = theirs.transpose(0, 3, 1, 2) / 255.0
    diff = float(np.abs(ours(conversion, x) - expected).max() / np.abs(expected).max())
    print(f'tf_simplehumanpose: max relative diff vs TensorFlow / 255 {diff:.2e}')
    assert diff <= TOLERANCE
    # control: without the epsilon fold the tiny variances of up3 show
    monkeypatch.setattr(tf_simplehumanpose, 'TF_BN_EPSILON', tf_simplehumanpose.OUR_BN_EPSILON)
    unfolded = convert_state('tf_simplehumanpose', state, prefix)
    assert np.abs(ours(unfolded, x) - expected).max() / np.abs(expected).max() > 1e-2


def test_converter_cli_writes_the_tf_conventions(checkpoint, tmp_path):
    prefix, _, _ = checkpoint
    output = tmp_path / 'tf_res50' / 'model.pdparams'
    assert tool.main(['--format', 'tf_simplehumanpose', '--source', prefix, '--output', str(output)]) == 0
    config = json.loads((output.parent / 'config.json').read_text())
    assert config['model'] == {'name': 'pose_resnet_50', 'num_joints': 17}
    assert config['data']['color_rgb'] is TF_DATA['color_rgb']
    for key in ('mean', 'std'):     # one approx per list: pytest >= 9.2 refuses lists nested in a dict
        assert config['data'][key] == pytest.approx(TF_DATA[key])
    assert config['data']['input_wh'] == [192, 256] and config['data']['dataset'] == 'coco'
    assert config['test']['shift_heatmap'] is True
    assert len(config['converted_from']['sha256']) == 64


def test_val_on_the_converted_file_equals_the_native_model_with_tf_conventions(checkpoint, tmp_path, pycocotools):
    import val
    from lib.utils.checkpoint import save_weights
    data = require(COCO_MINI)
    prefix, _, _ = checkpoint
    converted = tmp_path / 'converted' / 'model.pdparams'
    assert tool.main(['--format', 'tf_simplehumanpose', '--source', prefix, '--output', str(converted)]) == 0
    # the native pose_resnet_50 with the same weights and SEED's conventions written by hand
    conversion = convert_state('tf_simplehumanpose', tf_simplehumanpose.read_checkpoint(prefix), prefix)
    native = tmp_path / 'native' / 'model.pdparams'
    save_weights(conversion.model, str(native))
    (native.parent / 'config.json').write_text(json.dumps({
        'model': {'name': 'pose_resnet_50', 'num_joints': 17},
        'data': {'dataset': 'coco', 'input_wh': [64, 96], 'heatmap_wh': [16, 24], 'sigma': 2.0, **TF_DATA},
        'test': {'flip_test': True, 'shift_heatmap': True}}))
    common = ['--dataset_root', data, '--image_size', '96x64', '--device', 'cpu', '--workers', '0']
    results = []
    for weights, out in ((converted, 'val_converted'), (native, 'val_native')):
        assert val.main(['--pretrained_model', str(weights), *common, '--output_dir', str(tmp_path / out)]) == 0
        results.append(json.loads((tmp_path / out / 'keypoints_val2017_results.json').read_text()))
    theirs, mine = (np.array([r['keypoints'] for r in res]) for res in results)
    print(f'tf_simplehumanpose val.py (COCO mini) vs native: max |keypoint diff| {np.abs(theirs - mine).max():.3g}')
    np.testing.assert_array_equal(theirs, mine)


def test_missing_tensorflow_says_how_to_install_it(checkpoint, monkeypatch):
    monkeypatch.setitem(sys.modules, 'tensorflow', None)
    with pytest.raises(ImportError, match='pip install tensorflow-cpu'):
        tf_simplehumanpose.read_checkpoint(checkpoint[0])

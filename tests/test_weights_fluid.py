"""Fluid SimpleBaselines persistables (lib/convert/fluid_pose_resnet.py, lib/convert/loading.py).

The directory is written by Paddle itself (tests/fluid_pose_resnet_reference.py: the PaddleCV
human_pose_estimation pose_resnet network built layer by layer in the old static graph, Adam with a
piecewise learning rate, random parameters and BatchNorm statistics, paddle.static.save_vars one file
per variable), so its bytes and auto-generated names are Paddle's. The numpy reader must parse them, the
converted model must give the static program's heatmaps, and val.py must take the directory as
--pretrained_model and give exactly the native pose_resnet_50's predictions under the Fluid conventions
(BGR with the RGB-ordered ImageNet mean/std, flip test with the shift).
"""
import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

import val
from lib.convert import convert_state, fluid_pose_resnet
from lib.datasets.synthetic import make_synthetic_mpii
from lib.convert.loading import foreign_config
from lib.utils.checkpoint import save_weights
from tools import convert_weights as tool
from tests.helpers import REPO, preds_of

TOLERANCE = 1e-4
WRITER = os.path.join(REPO, 'tests', 'fluid_pose_resnet_reference.py')


@pytest.fixture(scope='module')
def fluid_dir(tmp_path_factory):
    """(directory, input [2, 3, 64, 64], the Fluid program's heatmaps): an MPII 256x256 tarball's folder."""
    root = tmp_path_factory.mktemp('fluid')
    folder = root / 'pose-resnet50-mpii-256x256'
    x = np.random.default_rng(1).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    np.save(root / 'x.npy', x)
    # Paddle 3.x builds fluid-style layers only in the old IR; the flag is ignored by Paddle 2.6.
    env = dict(os.environ, FLAGS_enable_pir_api='0')
    done = subprocess.run([sys.executable, WRITER, str(folder), '16', str(root / 'x.npy'), str(root / 'y.npy')],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return str(folder), x, np.load(root / 'y.npy')


def test_numpy_reader_parses_the_files_paddle_wrote(fluid_dir):
    folder, _, _ = fluid_dir
    state = fluid_pose_resnet.read_persistables(folder)
    assert state['conv2d_0.w_0'].shape == (64, 3, 7, 7) and state['conv2d_0.w_0'].dtype == np.float32
    assert state['conv2d_transpose_0.w_0'].shape == (2048, 256, 4, 4)
    assert state['conv2d_53.b_0'].shape == (16,) and state['batch_norm_55.w_2'].shape == (256,)
    dropped = fluid_pose_resnet.dropped_unused(state)
    assert any(k.endswith('_moment1_0') for k in dropped) and any(k.endswith('_beta2_pow_acc_0') for k in dropped)
    assert len(state) - len(dropped) == 282     # SEED_WEIGHTS 1.2: 282 model tensors


def test_converted_model_gives_the_fluid_programs_heatmaps(fluid_dir):
    folder, x, theirs = fluid_dir
    conversion = convert_state('fluid_pose_resnet', fluid_pose_resnet.read_persistables(folder), folder)
    assert (conversion.model_name, conversion.model_kwargs) == ('pose_resnet_50', {'num_joints': 16})
    conversion.model.eval()
    with paddle.no_grad():
        ours = conversion.model(paddle.to_tensor(x))[-1].numpy()
    diff = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
    print(f'fluid_pose_resnet: max relative diff vs the static program {diff:.2e}')
    assert diff <= TOLERANCE


def test_conventions_follow_the_tarball(fluid_dir):
    folder, _, _ = fluid_dir
    config = foreign_config(folder)
    assert config['model'] == {'name': 'pose_resnet_50', 'num_joints': 16}
    assert config['data']['input_wh'] == [256, 256] and config['data']['color_rgb'] is False
    assert config['data']['mean'] == [0.485, 0.456, 0.406] and config['data']['sigma'] == 3.0
    assert config['test']['shift_heatmap'] is True
    coco = {f'conv2d_{k}.w_0': np.zeros(1, np.float32) for k in range(53)}
    coco['conv2d_53.w_0'] = np.zeros((17, 256, 1, 1), np.float32)
    assert fluid_pose_resnet.conventions_for(coco, 'pose-resnet50-coco-384x288')['data']['input_wh'] == [288, 384]
    assert fluid_pose_resnet.conventions_for(coco, 'weights')['data']['dataset'] == 'coco'


def test_val_takes_the_directory_and_equals_the_native_model(fluid_dir, tmp_path, capsys):
    folder, _, _ = fluid_dir
    data = str(tmp_path / 'mpii')
    make_synthetic_mpii(data, num_train=1, num_valid=4, seed=4)
    common = ['--dataset_root', data, '--device', 'cpu', '--workers', '0', '--val_batch_size', '4']
    assert val.main(['--pretrained_model', folder, *common, '--output_dir', str(tmp_path / 'fluid')]) == 0
    assert '[EVAL]' in capsys.readouterr().out
    results = json.loads((tmp_path / 'fluid' / 'results.json').read_text())
    assert results['data']['color_rgb'] is False and results['test']['shift_heatmap'] is True
    assert results['data']['input_wh'] == [256, 256]

    conversion = convert_state('fluid_pose_resnet', fluid_pose_resnet.read_persistables(folder), folder)
    native = str(tmp_path / 'native' / 'model.pdparams')
    save_weights(conversion.model, native)
    # pose_resnet_50's MPII preset is HRNet's: BGR with the RGB ImageNet statistics, flip test with the shift
    assert val.main(['--model', 'pose_resnet_50', '--image_size', '256', '--pretrained_model', native, *common,
                     '--output_dir', str(tmp_path / 'native_val')]) == 0
    theirs, ours = preds_of(tmp_path / 'fluid'), preds_of(tmp_path / 'native_val')
    print(f'fluid_pose_resnet val.py vs native: max |pred diff| {np.abs(theirs - ours).max():.3g} px')
    np.testing.assert_array_equal(theirs, ours)


def test_converter_cli_writes_the_fluid_conventions(fluid_dir, tmp_path):
    folder, _, _ = fluid_dir
    output = tmp_path / 'fluid_res50' / 'model.pdparams'
    assert tool.main(['--format', 'fluid_pose_resnet', '--source', folder, '--output', str(output)]) == 0
    config = json.loads((output.parent / 'config.json').read_text())
    assert config['model'] == {'name': 'pose_resnet_50', 'num_joints': 16}
    assert config['data']['color_rgb'] is False and config['data']['sigma'] == 3.0
    assert config['data']['input_wh'] == [256, 256]
    assert len(config['converted_from']['sha256']) == 64


def test_a_build_order_mismatch_is_caught_by_the_shapes(fluid_dir):
    """Shortcut before conv2 would swap conv2d_13 [512, 128, 1, 1] and conv2d_14 [512, 256, 1, 1]. (In
    layer1.0 conv3 and the shortcut are both [256, 64, 1, 1]: there only the heatmap parity above sees it.)"""
    folder, _, _ = fluid_dir
    state = fluid_pose_resnet.read_persistables(folder)
    state['conv2d_13.w_0'], state['conv2d_14.w_0'] = state['conv2d_14.w_0'], state['conv2d_13.w_0']
    with pytest.raises(ValueError, match=r'conv2d_13\.w_0 -> layer2\.0\.conv3\.weight: received'):
        convert_state('fluid_pose_resnet', state, folder)


def test_lod_tensor_reader_errors_and_packed_dims(tmp_path):
    # version 0, one LoD level of 16 bytes, tensor version 0, a TensorDesc with packed dims [2, 3], 6 floats
    desc = bytes([0x08, 0x05, 0x12, 0x02, 0x02, 0x03])
    values = np.arange(6, dtype='<f4')
    blob = (np.uint32(0).tobytes() + np.uint64(1).tobytes() + np.uint64(16).tobytes() + bytes(16)
            + np.uint32(0).tobytes() + np.int32(len(desc)).tobytes() + desc + values.tobytes())
    (tmp_path / 'v').write_bytes(blob)
    np.testing.assert_array_equal(fluid_pose_resnet.read_lod_tensor(str(tmp_path / 'v')), values.reshape(2, 3))
    (tmp_path / 'cut').write_bytes(blob[:-4])
    with pytest.raises(ValueError, match='not a Paddle LoDTensor file'):
        fluid_pose_resnet.read_lod_tensor(str(tmp_path / 'cut'))


def test_infer_takes_the_directory(fluid_dir, tmp_path):
    import infer
    folder, _, _ = fluid_dir
    data = str(tmp_path / 'mpii')
    make_synthetic_mpii(data, num_train=1, num_valid=1, seed=5)
    image = str(next((tmp_path / 'mpii' / 'images').iterdir()))
    assert infer.main(['--input', image, '--pretrained_model', folder, '--device', 'cpu',
                       '--output_dir', str(tmp_path / 'infer')]) == 0
    assert len(json.loads((tmp_path / 'infer' / 'keypoints.json').read_text())[0]['persons'][0]['keypoints']) == 16

"""Weights in a layout val.py / infer.py / export.py do not read as they are get an answer, not hundreds of
missing keys: the project whose names the keys use and the command that converts it, or "unknown" with a
few of the keys (lib/convert/detect.py, lib/convert/loading.py)."""
import numpy as np
import paddle
import pytest

from lib.convert.detect import detect_layout
from lib.datasets.synthetic import make_synthetic_mpii
from lib.convert.loading import load_weights
from lib.models import build_model

Z = np.zeros((1,), np.float32)

# A few keys of each layout, as the projects' model code names them (SEED_WEIGHTS; lib/convert/*.py).
LAYOUTS = {
    'princeton_hourglass': ['model.module.pre.0.conv.weight', 'model.module.hgs.0.0.up1.bn1.weight',
                            'model.module.outs.0.conv.weight'],
    'mmpose_hourglass': ['backbone.stem.0.conv.weight', 'backbone.hourglass_modules.0.up1.0.bn1.running_mean',
                         'head.multi_final_layers.0.weight'],
    'mmpose_pose_resnet': ['backbone.conv1.weight', 'backbone.layer1.0.conv1.weight', 'backbone.bn1.running_mean',
                           'keypoint_head.deconv_layers.0.weight', 'keypoint_head.final_layer.weight'],
    'hrnet_pose_resnet': ['conv1.weight', 'bn1.running_mean', 'layer1.0.conv1.weight', 'deconv_layers.0.weight',
                          'final_layer.weight'],
    'hrnet_pose_hrnet': ['conv1.weight', 'bn1.running_mean', 'layer1.0.conv1.weight', 'transition1.0.0.weight',
                         'stage2.0.branches.0.0.conv1.weight', 'final_layer.weight'],
    'torchvision_resnet': ['conv1.weight', 'bn1.running_mean', 'layer1.0.conv1.weight', 'fc.weight', 'fc.bias'],
    'paddle_imagenet_resnet': ['conv1.weight', 'bn1._mean', 'layer1.0.conv1.weight', 'fc.weight'],
    'stacked_hourglass_paddle': ['down_sample.0.weight', 'down_sample.1._mean',
                                 'hourglass_modules.0.hourglass_module.keeps.0.conv_res.weight',
                                 'hourglass_modules.0.remap_channels_1.weight'],
    'paddlepose_hourglass52': ['backbone.stem.0._conv.weight', 'backbone.hourglass_modules.0.up1.0.conv1._conv.weight',
                               'keypoint_head.multi_final_layers.0.weight'],
    'fluid_pose_resnet': ['conv2d_0.w_0', 'batch_norm_0.w_0', 'conv2d_transpose_0.w_0'],
    'tf_simplehumanpose': ['resnet_v1_50/conv1/weights', 'up1/weights', 'out/weights'],
}


@pytest.mark.parametrize('name', sorted(LAYOUTS))
def test_detector_names_each_known_layout(name):
    assert detect_layout(LAYOUTS[name]).name == name


def test_unknown_layout_is_none():
    assert detect_layout(['encoder.0.weight', 'decoder.1.bias']) is None


def save(tmp_path, keys, name='model.pdparams', wrap=None):
    path = str(tmp_path / name)
    state = {k: Z for k in keys}
    paddle.save(wrap(state) if wrap else state, path)
    return path


@pytest.mark.parametrize('name, fmt', [('mmpose_hourglass', 'mmpose_hourglass'),
                                       ('princeton_hourglass', 'princeton_hourglass'),
                                       ('hrnet_pose_resnet', 'hrnet_pose_resnet'),
                                       ('mmpose_pose_resnet', 'mmpose_pose_resnet'),
                                       ('torchvision_resnet', 'torchvision_resnet')])
def test_convertible_layout_gets_the_exact_command(name, fmt, tmp_path):
    path = save(tmp_path, LAYOUTS[name])
    with pytest.raises(ValueError) as error:
        load_weights(build_model('pose_resnet_18'), path)
    message = str(error.value)
    assert f'python tools/convert_weights.py --format {fmt} --source {path} --output ' in message
    assert 'missing keys' in message          # the strict check's details stay


def test_stacked_hourglass_paddle_is_named_as_a_different_architecture(tmp_path):
    path = save(tmp_path, LAYOUTS['stacked_hourglass_paddle'], wrap=lambda s: {'state_dict': s, 'epoch': 3})
    with pytest.raises(ValueError, match=r'BangwenHe/stacked-hourglass\.paddle\..*different architecture.*no weights'):
        load_weights(build_model('pose_resnet_18'), path)


def test_unknown_layout_lists_a_few_keys(tmp_path):
    path = save(tmp_path, ['encoder.0.weight', 'decoder.1.bias'])
    unknown = r'match no layout this repository knows \(decoder\.1\.bias, encoder\.0\.weight\)'
    with pytest.raises(ValueError, match=unknown):
        load_weights(build_model('pose_resnet_18'), path)


def test_resumable_checkpoint_of_another_model_says_so(tmp_path):
    model = build_model('pose_resnet_18')
    path = str(tmp_path / 'checkpoint.pdparams')
    paddle.save({'model': model.state_dict(), 'optimizer': {}, 'config': {'model': {'name': 'pose_resnet_18'}}}, path)
    load_weights(build_model('pose_resnet_18'), path)           # fits: loads
    with pytest.raises(ValueError, match=r"resumable checkpoint .* of the model pose_resnet_18"):
        load_weights(build_model('hourglass', num_stacks=1, num_features=16), path)


def test_pytorch_and_tf_files_get_the_convert_command(tmp_path):
    torch = pytest.importorskip('torch', reason='torch writes the .pth of this test')
    pth = str(tmp_path / 'hg.pth')
    torch.save({'state_dict': {'pre.0.conv.weight': torch.zeros(1)}}, pth)
    with pytest.raises(ValueError, match=r'PyTorch checkpoint.*--format FORMAT --source .*hg\.pth.*princeton_hourg'):
        load_weights(build_model('pose_resnet_18'), pth)
    prefix = str(tmp_path / 'snapshot_140.ckpt')
    (tmp_path / 'snapshot_140.ckpt.index').write_bytes(b'')
    with pytest.raises(ValueError, match=r'--format tf_simplehumanpose --source .*snapshot_140\.ckpt --output'):
        load_weights(build_model('pose_resnet_18'), prefix + '.index')


def test_val_infer_and_export_give_the_answer(tmp_path):
    import export
    import infer
    import val
    path = save(tmp_path, LAYOUTS['mmpose_hourglass'])
    data = str(tmp_path / 'mpii')
    make_synthetic_mpii(data, num_train=1, num_valid=2, seed=1)
    expected = (r'MMPose hourglass52 / hourglass104\. Convert it first: '
                r'python tools/convert_weights.py --format mmpose_hourglass')
    with pytest.raises(ValueError, match=expected):
        val.main(['--pretrained_model', path, '--dataset_root', data, '--device', 'cpu', '--workers', '0',
                  '--model', 'hourglass', '--num_stacks', '1', '--num_features', '16', '--image_size', '64'])
    image = str(next((tmp_path / 'mpii' / 'images').iterdir()))
    with pytest.raises(ValueError, match=expected):
        infer.main(['--input', image, '--pretrained_model', path, '--device', 'cpu', '--output_dir',
                    str(tmp_path / 'infer')])
    with pytest.raises(ValueError, match=expected):
        export.main(['--pretrained_model', path, '--output_dir', str(tmp_path / 'export'), '--no_check'])

"""MMPose HourglassNet (SPEC F.2) and SimpleBaselines pose_resnet (SPEC F.3): parameter counts, the output
contract, multiply-add counting against hand numbers and MMPose's model zoo, and bad inputs."""
import json
import os
import subprocess
import sys

import paddle
import paddle.nn as nn
import pytest

from lib.models import MODELS
from lib.models.pose_resnet import deconv_padding, pose_resnet_18
from lib.utils.complexity import count_macs, count_parameters

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAD_16 = 256 * 16 + 16   # one 1x1 conv 256 -> 16 joints, with bias


def _lazy_parameter_count(name, num_joints):
    """Parameters of a full-size model, built without running its initialisers (fast for 188M)."""
    with paddle.LazyGuard():
        return count_parameters(MODELS[name](num_joints=num_joints))


@pytest.mark.parametrize('name, num_joints, expected', [
    ('hourglass52', 16, 93_666_960),             # backbone 93,662,848 + head 4,112
    ('hourglass104', 16, 187_700_352 + 2 * HEAD_16),
    ('pose_resnet_50', 16, 33_999_440), ('pose_resnet_50', 17, 33_999_697),
    ('pose_resnet_101', 16, 52_991_568), ('pose_resnet_101', 17, 52_991_825),
    ('pose_resnet_152', 16, 68_635_216), ('pose_resnet_152', 17, 68_635_473),
])
def test_parameter_counts_match_spec(name, num_joints, expected):
    assert _lazy_parameter_count(name, num_joints) == expected


def test_lazy_count_equals_the_initialised_model():
    paddle.seed(0)
    assert count_parameters(MODELS['pose_resnet_50'](num_joints=16)) == 33_999_440


@pytest.fixture(scope='module')
def hourglass52():
    paddle.seed(0)
    model = MODELS['hourglass52'](num_joints=16)
    model.eval()
    return model


def test_hourglass52_full_size_output_contract(hourglass52):
    with paddle.no_grad():
        outputs = hourglass52(paddle.randn([2, 3, 128, 128]))
    assert isinstance(outputs, list) and len(outputs) == 1
    assert outputs[0].shape == [2, 16, 32, 32]


def test_hourglass104_returns_one_heatmap_per_stack():
    paddle.seed(0)
    tiny = dict(downsample_times=2, stage_channels=(16, 16, 24), stage_blocks=(1, 1, 2), feat_channel=8)
    model = MODELS['hourglass104'](num_joints=5, **tiny)
    model.eval()
    with paddle.no_grad():
        outputs = model(paddle.randn([1, 3, 32, 64]))   # divisor 2 ** (2 + 2) = 16
    assert [out.shape for out in outputs] == [[1, 5, 8, 16]] * 2


def test_pose_resnet_18_non_square_output_contract():
    paddle.seed(0)
    model = pose_resnet_18(num_joints=17)
    model.eval()
    with paddle.no_grad():
        outputs = model(paddle.randn([2, 3, 64, 96]))   # H = 64, W = 96 -> heatmaps 16 x 24
    assert isinstance(outputs, list) and len(outputs) == 1
    assert outputs[0].shape == [2, 17, 16, 24]


def test_pose_resnet_names_match_torchvision_and_hrnet():
    with paddle.LazyGuard():
        keys = set(MODELS['pose_resnet_50'](num_joints=16).state_dict())
    for key in ['conv1.weight', 'bn1._mean', 'layer1.0.downsample.0.weight', 'layer1.0.downsample.1.weight',
                'layer4.2.conv3.weight', 'layer4.2.bn3.bias', 'deconv_layers.0.weight', 'deconv_layers.1.weight',
                'deconv_layers.6.weight', 'deconv_layers.7._variance', 'final_layer.weight', 'final_layer.bias']:
        assert key in keys, key
    assert not any(key.startswith(('fc.', 'avgpool')) for key in keys)


def test_hourglass_names_match_mmpose():
    with paddle.LazyGuard():
        keys = set(MODELS['hourglass104'](num_joints=16).state_dict())
    for key in ['stem.0.conv.weight', 'stem.0.bn.weight', 'stem.1.0.downsample.0.weight',
                'hourglass_modules.1.up1.1.conv2.weight', 'hourglass_modules.0.low2.low2.low2.low2.low2.3.bn1.weight',
                'hourglass_modules.0.low2.low3.1.downsample.1._mean', 'out_convs.1.conv.weight', 'conv1x1s.0.bn.bias',
                'remap_convs.0.conv.weight', 'inters.0.conv1.weight', 'final_layers.1.bias']:
        assert key in keys, key
    assert not any(key.startswith(('conv1x1s.1', 'inters.1')) for key in keys)


def test_initialisation_as_references():
    paddle.seed(0)
    model = pose_resnet_18(num_joints=16)
    for layer in model.sublayers():
        if isinstance(layer, (nn.Conv2D, nn.Conv2DTranspose)):
            assert abs(float(layer.weight.std()) - 0.001) < 2e-4
        if isinstance(layer, nn.BatchNorm2D):
            assert float(layer.weight.min()) == 1 and float(paddle.abs(layer.bias).max()) == 0
    assert float(paddle.abs(model.final_layer.bias).max()) == 0


def test_count_macs_on_a_conv_and_a_transposed_conv():
    model = nn.Sequential(nn.Conv2D(3, 4, 3, padding=1),                                   # bias
                          nn.Conv2DTranspose(4, 2, 4, stride=2, padding=1, bias_attr=False))
    # W = 6, H = 5. Conv: 5*6 outputs * 4 * 3 * 3*3 = 3240, + 4*5*6 bias adds = 120.
    # Deconv: each of the 5*6 input pixels meets every tap once: 30 * 4 * 2 * 4*4 = 3840.
    assert count_macs(model, (6, 5)) == 3240 + 120 + 3840
    assert count_parameters(model) == 4 * 3 * 9 + 4 + 4 * 2 * 16


def test_count_macs_counts_norm_and_activation_as_mmcv_and_restores_training_mode():
    model = nn.Sequential(nn.BatchNorm2D(3), nn.ReLU(), nn.MaxPool2D(2, 2))
    model.train()
    # mmcv: affine BN 2 per element, ReLU 1 per element, pooling 1 per input element (3 * 4 * 8 each).
    assert count_macs(model, (8, 4)) == 2 * 96 + 96 + 96
    assert model.training


def _model_info(*args):
    result = subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'model_info.py'), *args],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    return result


def test_model_info_pose_resnet_50_matches_mmpose_gmacs():
    result = _model_info('--model', 'pose_resnet_50', '--image_size', '256x192')
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info['model'] == 'pose_resnet_50' and info['input_wh'] == [192, 256]
    assert info['params'] == 33_999_440
    assert info['gmacs'] == pytest.approx(5.46, rel=0.01)


def test_model_info_hourglass52_matches_mmpose_gmacs():
    # A forward pass of the 94M model at 256x256 on CPU: about 4 s for the whole command.
    result = _model_info('--model', 'hourglass52', '--image_size', '256')
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info == {'model': 'hourglass52', 'input_wh': [256, 256], 'params': 93_666_960,
                    'gmacs': pytest.approx(28.67, rel=0.01)}


def test_model_info_unknown_model_lists_the_choices():
    result = _model_info('--model', 'resnet50', '--image_size', '256')
    assert result.returncode != 0
    assert 'pose_resnet_50' in result.stderr and 'hourglass52' in result.stderr


def test_hourglass52_rejects_a_side_not_divisible_by_128(hourglass52):
    with pytest.raises(ValueError, match=r'divisible by 128.*200 x 200'):
        hourglass52(paddle.zeros([1, 3, 200, 200]))


def test_pose_resnet_rejects_a_side_not_divisible_by_32():
    model = pose_resnet_18(num_joints=16, deconv_filters=(8, 8, 8))
    with pytest.raises(ValueError, match=r'divisible by 32.*48 x 64'):
        model(paddle.zeros([1, 3, 64, 48]))   # width 48 would give 16-wide heatmaps, not 12


def test_deconv_kernel_5_is_refused():
    assert [deconv_padding(k) for k in (4, 3, 2)] == [(1, 0), (1, 1), (0, 0)]
    with pytest.raises(ValueError, match=r'kernel size 5 .*\[2, 3, 4\]'):
        pose_resnet_18(num_joints=16, deconv_kernels=(4, 4, 5))


def test_project_batchnorm_counts_as_paddles():
    """lib.models.layers.BatchNorm2D changes only the running-variance update: mmcv's rules count it as BatchNorm."""
    from lib.models.layers import batch_norm
    ours, plain = paddle.nn.Sequential(batch_norm(3)), paddle.nn.Sequential(paddle.nn.BatchNorm2D(3))
    assert count_macs(ours, (6, 5)) == count_macs(plain, (6, 5)) > 0

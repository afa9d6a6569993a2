"""Loss (SPEC E) against a numpy reference, and the model contract / parameter counts (SPEC F.1)."""
import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from lib.core.loss import JointsMSELoss, StackedHeatmapLoss
from lib.models import MODELS, build_model
from lib.models.layers import upsample_nearest_2x

N, K, H_HM, W_HM = 3, 5, 8, 6


def _random_batch(seed, fractional):
    rng = np.random.default_rng(seed)
    pred = rng.normal(size=(N, K, H_HM, W_HM)).astype(np.float32)
    target = rng.uniform(size=(N, K, H_HM, W_HM)).astype(np.float32)
    if fractional:
        weight = rng.uniform(0.2, 1.5, size=(N, K, 1)).astype(np.float32)
        weight[0, 1] = 0
    else:
        weight = (rng.uniform(size=(N, K, 1)) > 0.3).astype(np.float32)
        weight[0, 0], weight[1, 0] = 0, 1
    return pred, target, weight


def _numpy_loss(pred, target, weight):
    """SPEC E: 0.5 * mean over (n, k, pixel) of w^2 (pred - gt)^2, in float64."""
    w = weight.astype(np.float64)[..., None]
    return 0.5 * np.mean(w ** 2 * (pred.astype(np.float64) - target) ** 2)


def _t(array):
    return paddle.to_tensor(array)


@pytest.mark.parametrize('fractional', [False, True], ids=['binary_weights', 'fractional_weights'])
def test_joints_mse_loss_matches_numpy(fractional):
    pred, target, weight = _random_batch(0, fractional)
    loss = JointsMSELoss()(_t(pred), _t(target), _t(weight))
    assert loss.shape == [] or loss.shape == [1]
    assert_allclose(float(loss), _numpy_loss(pred, target, weight), rtol=1e-6)


def test_joints_mse_loss_without_target_weight_ignores_weights():
    pred, target, weight = _random_batch(1, fractional=True)
    loss = JointsMSELoss(use_target_weight=False)(_t(pred), _t(target), _t(weight))
    assert_allclose(float(loss), _numpy_loss(pred, target, np.ones_like(weight)), rtol=1e-6)


def test_joint_with_zero_weight_contributes_nothing():
    pred, target, weight = _random_batch(2, fractional=True)
    weight[1, 3] = 0
    criterion = JointsMSELoss()
    before = float(criterion(_t(pred), _t(target), _t(weight)))
    pred[1, 3] += 100.0
    assert float(criterion(_t(pred), _t(target), _t(weight))) == before
    weight[1, 3] = 1   # and the same change does count once the joint is weighted
    assert float(criterion(_t(pred), _t(target), _t(weight))) > before + 1.0


@pytest.mark.parametrize('reduction', ['sum', 'mean'])
def test_stacked_loss_reduction_over_stacks(reduction):
    _, target, weight = _random_batch(3, fractional=False)
    rng = np.random.default_rng(4)
    outputs = [rng.normal(size=target.shape).astype(np.float32) for _ in range(3)]
    per_stack = [_numpy_loss(out, target, weight) for out in outputs]
    loss = StackedHeatmapLoss(reduction)([_t(out) for out in outputs], _t(target), _t(weight))
    expected = sum(per_stack) if reduction == 'sum' else sum(per_stack) / 3
    assert_allclose(float(loss), expected, rtol=1e-6)


def test_stacked_loss_rejects_unknown_reduction():
    with pytest.raises(ValueError, match="'max'"):
        StackedHeatmapLoss('max')


# Tiny constructor arguments per registered model; a new entry in MODELS must add one here.
TINY_HOURGLASS_NET = dict(downsample_times=2, stage_channels=(16, 16, 24), stage_blocks=(1, 1, 2), feat_channel=8)
TINY_DECONVS = dict(deconv_filters=(16, 16, 16))   # the ResNet backbones keep their size (0.3-1.5 s to build)
TINY_KWARGS = {
    'hourglass': dict(num_stacks=2, num_features=16),
    'hourglass52': TINY_HOURGLASS_NET,
    'hourglass104': TINY_HOURGLASS_NET,
    'pose_resnet_18': TINY_DECONVS,
    'pose_resnet_34': TINY_DECONVS,
    'pose_resnet_50': TINY_DECONVS,
    'pose_resnet_101': TINY_DECONVS,
    'pose_resnet_152': TINY_DECONVS,
}


@pytest.mark.parametrize('name', sorted(MODELS))
def test_every_registered_model_returns_the_heatmap_contract(name):
    assert name in TINY_KWARGS, f'add tiny constructor arguments for {name!r} to TINY_KWARGS'
    paddle.seed(0)
    model = build_model(name, num_joints=16, **TINY_KWARGS[name])
    model.eval()
    with paddle.no_grad():
        outputs = model(paddle.randn([2, 3, 64, 128]))   # H = 64, W = 128 -> heatmaps 16 x 32
    assert isinstance(outputs, list) and len(outputs) >= 1
    for out in outputs:
        assert out.shape == [2, 16, 16, 32]


@pytest.mark.parametrize('num_stacks', [1, 3])
def test_hourglass_returns_one_output_per_stack(num_stacks):
    paddle.seed(0)
    model = build_model('hourglass', num_stacks=num_stacks, num_features=16, num_joints=16)
    model.eval()
    with paddle.no_grad():
        outputs = model(paddle.randn([1, 3, 64, 64]))
    assert len(outputs) == num_stacks
    assert all(out.shape == [1, 16, 16, 16] for out in outputs)


def test_build_model_rejects_unknown_names():
    with pytest.raises(ValueError, match='hourglass'):
        build_model('no_such_model')


def _trainable_parameters(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)


@pytest.mark.parametrize('num_stacks, expected', [
    (1, 3_426_448), (2, 6_570_400), (4, 12_858_304), (8, 25_434_112),
])
def test_full_size_hourglass_parameter_count(num_stacks, expected):
    model = build_model('hourglass', num_stacks=num_stacks, num_features=256, num_joints=16)
    assert _trainable_parameters(model) == expected


def test_gradient_reaches_the_first_conv_from_the_last_stack():
    paddle.seed(0)
    model = build_model('hourglass', num_stacks=2, num_features=16, num_joints=16)
    model.train()
    outputs = model(paddle.randn([2, 3, 64, 64]))
    target = paddle.rand(outputs[-1].shape)
    weight = paddle.ones([2, 16, 1])
    JointsMSELoss()(outputs[-1], target, weight).backward()
    first_conv = next(layer for layer in model.sublayers() if isinstance(layer, nn.Conv2D))
    assert first_conv.weight.shape[1] == 3          # it really is the stem conv on the image
    grad = first_conv.weight.grad
    assert grad is not None
    assert float(paddle.abs(grad).sum()) > 0


@pytest.mark.parametrize('shape', [[2, 3, 5, 7], [1, 4, 1, 1]])
def test_upsample_nearest_2x_matches_interpolate(shape):
    x = paddle.to_tensor(np.random.default_rng(5).normal(size=shape).astype(np.float32))
    ours = upsample_nearest_2x(x)
    reference = F.interpolate(x, scale_factor=2, mode='nearest')
    assert ours.shape == [shape[0], shape[1], 2 * shape[2], 2 * shape[3]]
    assert_array_equal(ours.numpy(), reference.numpy())

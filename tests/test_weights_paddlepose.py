"""txyugood/PaddlePose hourglass52 .pdparams (lib/convert/paddlepose_hourglass.py, lib/convert/loading.py).

The reference network is re-written below in Paddle with PaddlePose's module names and nesting (its
hourglass.py / top_down.py: MMPose's HourglassNet with ConvBNLayer `_conv` / `_batch_norm` sublayers, the
unused `backbone.inters.0`, head `keypoint_head.multi_final_layers`), randomised including the BatchNorm
statistics, and saved as PaddlePose saves it: paddle.save(model.state_dict(), 'output/256_best_model/
model.pdparams'). Its own heatmaps must equal our converted model's, and PaddlePose's own val.py command,
run against this repository's val.py with no config.json and no conversion, must give exactly the
predictions of the native hourglass52 on the same weights under PaddlePose's conventions (RGB, ImageNet
mean/std, flip test without the heatmap shift, quarter-pixel refinement).
"""
import json
import os

import numpy as np
import paddle
import paddle.nn as nn
import pytest

import val
from lib.convert import convert_state, paddlepose_hourglass
from lib.convert.readers import read_pdparams
from lib.datasets.synthetic import make_synthetic_mpii
from lib.utils.checkpoint import save_weights
from tests.helpers import preds_of
from tools import convert_weights as tool

TOLERANCE = 1e-4
TINY = dict(downsample_times=2, stage_channels=(256, 32, 48), stage_blocks=(2, 2, 3), feat_channel=64)
FULL = dict(downsample_times=5, stage_channels=(256, 256, 384, 384, 384, 512), stage_blocks=(2, 2, 2, 2, 2, 4),
            feat_channel=256)


# --- PaddlePose's model, as its hourglass.py builds it (names and nesting; Paddle 2.1 layers)

class ConvBNLayer(nn.Layer):
    def __init__(self, cin, cout, k, stride=1, act=True):
        super().__init__()
        self._conv = nn.Conv2D(cin, cout, k, stride, (k - 1) // 2, bias_attr=False)
        self._batch_norm = nn.BatchNorm2D(cout)
        self.act = act

    def forward(self, x):
        x = self._batch_norm(self._conv(x))
        return nn.functional.relu(x) if self.act else x


class BasicBlock(nn.Layer):
    def __init__(self, cin, cout, stride=1, downsample=None):
        super().__init__()
        self.conv1 = ConvBNLayer(cin, cout, 3, stride)
        self.conv2 = ConvBNLayer(cout, cout, 3, act=False)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return nn.functional.relu(self.conv2(self.conv1(x)) + identity)


def res_layer(num_blocks, cin, cout, stride=1, downsample_first=True):
    """MMPose's ResLayer of BasicBlocks (0 blocks still builds one); downsample = Sequential(ConvBNLayer)."""
    downsample = nn.Sequential(ConvBNLayer(cin, cout, 1, stride, act=False)) if stride != 1 or cin != cout else None
    if downsample_first:
        layers = [BasicBlock(cin, cout, stride, downsample)] + [BasicBlock(cout, cout) for _ in range(1, num_blocks)]
    else:
        layers = [BasicBlock(cin, cin) for _ in range(num_blocks - 1)] + [BasicBlock(cin, cout, stride, downsample)]
    return nn.Sequential(*layers)


class HourglassModule(nn.Layer):
    def __init__(self, depth, channels, blocks):
        super().__init__()
        self.up1 = res_layer(blocks[0], channels[0], channels[0])
        self.low1 = res_layer(blocks[0], channels[0], channels[1], stride=2)
        self.low2 = (HourglassModule(depth - 1, channels[1:], blocks[1:]) if depth > 1
                     else res_layer(blocks[1], channels[1], channels[1]))
        self.low3 = res_layer(blocks[0], channels[1], channels[0], downsample_first=False)

    def forward(self, x):
        low = self.low3(self.low2(self.low1(x)))
        return self.up1(x) + nn.functional.interpolate(low, scale_factor=2, mode='nearest')


class HourglassNet(nn.Layer):
    def __init__(self, downsample_times, stage_channels, stage_blocks, feat_channel, num_stacks=1):
        super().__init__()
        ch = stage_channels[0]
        self.stem = nn.Sequential(ConvBNLayer(3, 128, 7, 2), res_layer(1, 128, 256, stride=2))
        self.hourglass_modules = nn.LayerList([HourglassModule(downsample_times, stage_channels, stage_blocks)
                                               for _ in range(num_stacks)])
        self.inters = res_layer(num_stacks - 1, ch, ch)          # one block forward never calls
        self.out_convs = nn.LayerList([ConvBNLayer(ch, feat_channel, 3) for _ in range(num_stacks)])

    def forward(self, x):
        x = self.stem(x)
        return [self.out_convs[0](self.hourglass_modules[0](x))]


class MultiStageHead(nn.Layer):
    def __init__(self, in_channels, num_joints):
        super().__init__()
        self.multi_final_layers = nn.LayerList([nn.Conv2D(in_channels, num_joints, 1)])

    def forward(self, feats):
        return [self.multi_final_layers[0](feats[-1])]


class TopDown(nn.Layer):
    def __init__(self, options, num_joints=16):
        super().__init__()
        self.backbone = HourglassNet(**options)
        self.keypoint_head = MultiStageHead(options['feat_channel'], num_joints)

    def forward(self, x):
        return self.keypoint_head(self.backbone(x))


def randomised(net, seed=0):
    """Random weights (He by fan-in), BN affine parameters and running statistics away from 1 / 0; eval mode."""
    rng = np.random.default_rng(seed)
    for name, value in net.state_dict().items():
        shape = value.shape
        if name.endswith('_mean'):
            new = rng.normal(0.0, 0.2, shape)
        elif name.endswith('_variance'):
            new = rng.uniform(0.5, 2.0, shape)
        elif '_batch_norm.' in name and name.endswith('weight'):
            new = rng.uniform(0.5, 1.5, shape)
        elif name.endswith('bias'):
            new = rng.normal(0.0, 0.1, shape)
        else:
            new = rng.normal(0.0, (2.0 / max(1, int(np.prod(shape[1:])))) ** 0.5, shape)
        value.set_value(new.astype(np.float32))
    net.eval()
    return net


def save_like_paddlepose(net, folder):
    """PaddlePose's train.py: paddle.save(model.state_dict(), 'output/best_model/model.pdparams'), the folder
    renamed by its README to 256_best_model / 384_best_model."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, 'model.pdparams')
    paddle.save(net.state_dict(), path)
    return path


# --- the names

def test_full_size_file_has_412_tensors_and_renames_onto_hourglass52():
    net = TopDown(FULL)
    source = {k: v.numpy() for k, v in net.state_dict().items()}
    assert len(source) == 412
    conversion = convert_state('paddlepose_hourglass52', source, 'model.pdparams')
    assert (conversion.model_name, conversion.model_kwargs) == ('hourglass52', {'num_joints': 16})
    assert len(conversion.state) == 402
    assert set(conversion.dropped) == {k for k in source if k.startswith('backbone.inters.0.')}
    assert len(conversion.dropped) == 10
    assert paddlepose_hourglass.mmpose_name('backbone.hourglass_modules.0.low1.0.downsample.0._batch_norm._mean') \
        == 'backbone.hourglass_modules.0.low1.0.downsample.1.running_mean'


def test_tiny_paddlepose_gives_the_reference_heatmaps(tmp_path):
    net = randomised(TopDown(TINY))
    path = save_like_paddlepose(net, tmp_path / 'output' / '256_best_model')
    conversion = convert_state('paddlepose_hourglass52', read_pdparams(path), path)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    conversion.model.eval()
    with paddle.no_grad():
        theirs = net(paddle.to_tensor(x))[-1].numpy()
        ours = conversion.model(paddle.to_tensor(x))[-1].numpy()
    diff = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
    print(f'paddlepose_hourglass52 (tiny): max relative diff {diff:.2e}')
    assert diff <= TOLERANCE


def test_converter_cli_writes_paddlepose_conventions(tmp_path):
    net = randomised(TopDown(TINY))
    path = save_like_paddlepose(net, tmp_path / 'output' / '384_best_model')
    output = tmp_path / 'converted' / 'model.pdparams'
    assert tool.main(['--format', 'paddlepose_hourglass52', '--source', path, '--output', str(output)]) == 0
    config = json.loads((output.parent / 'config.json').read_text())
    assert config['model']['name'] == 'hourglass52'
    assert config['data']['input_wh'] == [384, 384] and config['data']['color_rgb'] is True   # from 384_best_model
    assert config['test']['shift_heatmap'] is False and config['test']['flip_test'] is True
    assert config['converted_from']['format'] == 'paddlepose_hourglass52'


# --- PaddlePose's own command, against this repository's val.py

@pytest.fixture(scope='module')
def paddlepose_run(tmp_path_factory):
    root = tmp_path_factory.mktemp('paddlepose')
    data = str(root / 'mpii')
    make_synthetic_mpii(data, num_train=1, num_valid=4, seed=3)
    net = randomised(TopDown(FULL), seed=5)
    weights = save_like_paddlepose(net, str(root / 'output' / '256_best_model'))
    del net
    return root, data, weights


def test_paddlepose_val_command_equals_the_native_model(paddlepose_run, capsys):
    root, data, weights = paddlepose_run
    common = ['--dataset_root', data, '--device', 'cpu', '--workers', '0', '--val_batch_size', '4']
    # PaddlePose's README: python val.py --image_size 256 --pretrained_model ./output/256_best_model/model.pdparams
    assert val.main(['--image_size', '256', '--pretrained_model', weights, *common,
                     '--output_dir', str(root / 'val_paddlepose')]) == 0
    out = capsys.readouterr().out
    assert '[EVAL]' in out and 'Mean@0.1=' in out and 'compare it with Mean@0.1.' in out
    results = json.loads((root / 'val_paddlepose' / 'results.json').read_text())
    assert results['test']['shift_heatmap'] is False and results['test']['flip_test'] is True
    assert results['data']['color_rgb'] is True and results['model']['name'] == 'hourglass52'

    # the native hourglass52 on the same weights, with PaddlePose's conventions given as flags, no config.json
    conversion = convert_state('paddlepose_hourglass52', read_pdparams(weights), weights)
    native = str(root / 'native' / 'model.pdparams')
    save_weights(conversion.model, native)
    assert val.main(['--model', 'hourglass52', '--image_size', '256', '--no_shift_heatmap', '--pretrained_model',
                     native, *common, '--output_dir', str(root / 'val_native')]) == 0
    theirs, ours = preds_of(root / 'val_paddlepose'), preds_of(root / 'val_native')
    print(f'paddlepose_hourglass52 val.py vs native: max |pred diff| {np.abs(theirs - ours).max():.3g} px')
    np.testing.assert_array_equal(theirs, ours)
    # control: with the heatmap shift (MMPose's own config) the predictions differ, so the convention is seen
    assert val.main(['--model', 'hourglass52', '--image_size', '256', '--pretrained_model', native, *common,
                     '--output_dir', str(root / 'val_shifted')]) == 0
    assert np.abs(preds_of(root / 'val_shifted') - theirs).max() > 0


def test_paddlepose_file_runs_in_infer_and_export(paddlepose_run, tmp_path):
    import export
    import infer
    root, data, weights = paddlepose_run
    image = sorted(os.listdir(os.path.join(data, 'images')))[0]
    assert infer.main(['--input', os.path.join(data, 'images', image), '--pretrained_model', weights,
                       '--device', 'cpu', '--output_dir', str(tmp_path / 'infer')]) == 0
    assert json.loads((tmp_path / 'infer' / 'keypoints.json').read_text())[0]['persons']
    assert export.main(['--pretrained_model', weights, '--output_dir', str(tmp_path / 'export'), '--no_check']) == 0
    exported = json.loads((tmp_path / 'export' / 'inference.json').read_text())
    assert exported['model']['name'] == 'hourglass52' and exported['test']['shift_heatmap'] is False

"""MMPose, HRNet-repo and torchvision checkpoint conversion (lib/convert, tools/convert_weights.py) and
ImageNet backbone loading (lib/models/pretrained.py).

Each source model is re-implemented below in PyTorch with the reference's module names and nesting (hence
its state-dict keys), randomised including the BatchNorm statistics, saved as the reference saves it,
converted, and run on the same input in both frameworks: the outputs must agree to 1e-4 relative."""
import json

import numpy as np
import paddle
import pytest

torch = pytest.importorskip('torch', reason='torch is needed only for checkpoint conversion: pip install torch')
tnn = torch.nn

from lib.convert import convert_state  # noqa: E402
from lib.convert import mmpose_hourglass as hourglass_format  # noqa: E402
from lib.convert.resnet_maps import RESNETS, backbone_map, resnet_depth  # noqa: E402
from lib.models import build_model  # noqa: E402
from lib.models.pretrained import backbone_state, load_backbone  # noqa: E402
from lib.convert.loading import load_weights  # noqa: E402
from tests.helpers import randomize_torch_batchnorm  # noqa: E402

TOLERANCE = 1e-4
IMAGENET = {'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225]}


from tools import convert_weights as tool  # noqa: E402


# --- torchvision / HRNet / MMPose ResNet: torchvision's names (conv1, bn1, layer*, downsample.0/.1, fc)

class BasicBlock(tnn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(tnn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.conv2 = tnn.Conv2d(planes, planes, 3, stride, 1, bias=False)   # v1.5: stride on the 3x3
        self.bn2 = tnn.BatchNorm2d(planes)
        self.conv3 = tnn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = tnn.BatchNorm2d(planes * 4)
        self.relu = tnn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(tnn.Module):
    """torchvision.models.ResNet (fc only when num_classes is given); MMPose's ResNet(depth) has the same
    backbone names (norm layers built with postfixes 1..3)."""

    def __init__(self, depth, num_classes=None):
        super().__init__()
        bottleneck, blocks = RESNETS[depth]
        block = Bottleneck if bottleneck else BasicBlock
        self.inplanes = 64
        self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(64)
        self.relu = tnn.ReLU()
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        for i, n in enumerate(blocks):
            setattr(self, f'layer{i + 1}', self._make_layer(block, 64 * 2 ** i, n, 1 if i == 0 else 2))
        if num_classes:
            self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
            self.fc = tnn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, n, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = tnn.Sequential(tnn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                        tnn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, n)]
        return tnn.Sequential(*layers)

    def features(self, x):                              # [N, C, H/32, W/32]
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


def deconv_layers(in_channels):
    """SimpleBaselines' deconv stack: [ConvTranspose2d(k4, s2, p1, no bias), BN, ReLU] x 3."""
    layers = []
    for _ in range(3):
        layers += [tnn.ConvTranspose2d(in_channels, 256, 4, 2, 1, 0, bias=False), tnn.BatchNorm2d(256), tnn.ReLU()]
        in_channels = 256
    return tnn.Sequential(*layers)


class HeatmapHead(tnn.Module):
    """MMPose 1.x HeatmapHead / 0.x TopdownHeatmapSimpleHead with the SimpleBaseline settings."""

    def __init__(self, in_channels, num_joints):
        super().__init__()
        self.deconv_layers = deconv_layers(in_channels)
        self.conv_layers = tnn.Identity()
        self.final_layer = tnn.Conv2d(256, num_joints, 1)

    def forward(self, feats):
        return self.final_layer(self.conv_layers(self.deconv_layers(feats)))


class HRNetPoseResNet(ResNet):
    """HRNet repo lib/models/pose_resnet.py PoseResNet: the ResNet plus deconv_layers and final_layer."""

    def __init__(self, depth, num_joints):
        super().__init__(depth)
        self.deconv_layers = deconv_layers(self.inplanes)
        self.final_layer = tnn.Conv2d(256, num_joints, 1)

    def forward(self, x):
        return self.final_layer(self.deconv_layers(self.features(x)))


class TopDown(tnn.Module):
    """MMPose's top-down model: `backbone` plus the head as 'keypoint_head' (0.x TopDown) or 'head' (1.x
    TopdownPoseEstimator), hence keys 'backbone.*' and 'keypoint_head.*' / 'head.*'."""

    def __init__(self, backbone, head, head_name):
        super().__init__()
        self.backbone, self.head_name = backbone, head_name
        setattr(self, head_name, head)

    def forward(self, x):
        feats = self.backbone(x) if not isinstance(self.backbone, ResNet) else self.backbone.features(x)
        return getattr(self, self.head_name)(feats)


# --- MMPose HourglassNet + CPMHead (mmpose/models/backbones/hourglass.py, resnet.py; cpm_head.py)

class ConvModule(tnn.Module):
    def __init__(self, cin, cout, k, stride=1, act=True):
        super().__init__()
        self.conv = tnn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False)
        self.bn = tnn.BatchNorm2d(cout)
        self.activate = tnn.ReLU() if act else None

    def forward(self, x):
        x = self.bn(self.conv(x))
        return x if self.activate is None else self.activate(x)


def res_layer(num_blocks, cin, cout, stride=1, downsample_first=True):
    """MMPose ResLayer of BasicBlocks. Like MMPose, num_blocks = 0 still builds the first block."""
    downsample = None
    if stride != 1 or cin != cout:
        downsample = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout))
    if downsample_first:
        layers = [BasicBlock(cin, cout, stride, downsample)] + [BasicBlock(cout, cout) for _ in range(1, num_blocks)]
    else:
        layers = [BasicBlock(cin, cin) for _ in range(num_blocks - 1)] + [BasicBlock(cin, cout, stride, downsample)]
    return tnn.Sequential(*layers)


class HourglassModule(tnn.Module):
    def __init__(self, depth, channels, blocks):
        super().__init__()
        self.up1 = res_layer(blocks[0], channels[0], channels[0])
        self.low1 = res_layer(blocks[0], channels[0], channels[1], stride=2)
        self.low2 = (HourglassModule(depth - 1, channels[1:], blocks[1:]) if depth > 1
                     else res_layer(blocks[1], channels[1], channels[1]))
        self.low3 = res_layer(blocks[0], channels[1], channels[0], downsample_first=False)
        self.up2 = tnn.Upsample(scale_factor=2)

    def forward(self, x):
        return self.up1(x) + self.up2(self.low3(self.low2(self.low1(x))))


class HourglassNet(tnn.Module):
    def __init__(self, downsample_times, num_stacks, stage_channels, stage_blocks, feat_channel):
        super().__init__()
        ch = stage_channels[0]
        self.num_stacks = num_stacks
        self.stem = tnn.Sequential(ConvModule(3, 128, 7, 2), res_layer(1, 128, 256, stride=2))   # hard-coded
        self.hourglass_modules = tnn.ModuleList([HourglassModule(downsample_times, stage_channels, stage_blocks)
                                                 for _ in range(num_stacks)])
        self.inters = res_layer(num_stacks - 1, ch, ch)          # 1 unused block for num_stacks = 1
        self.conv1x1s = tnn.ModuleList([ConvModule(ch, ch, 1, act=False) for _ in range(num_stacks - 1)])
        self.out_convs = tnn.ModuleList([ConvModule(ch, feat_channel, 3) for _ in range(num_stacks)])
        self.remap_convs = tnn.ModuleList([ConvModule(feat_channel, ch, 1, act=False) for _ in range(num_stacks - 1)])
        self.relu = tnn.ReLU()

    def forward(self, x):
        inter, outs = self.stem(x), []
        for i in range(self.num_stacks):
            outs.append(self.out_convs[i](self.hourglass_modules[i](inter)))
            if i < self.num_stacks - 1:
                inter = self.inters[i](self.relu(self.conv1x1s[i](inter) + self.remap_convs[i](outs[-1])))
        return outs


class CPMHead(tnn.Module):
    """CPMHead(deconv_out_channels=None) / 0.x TopdownHeatmapMultiStageHead(num_deconv_layers=0)."""

    def __init__(self, in_channels, num_joints, num_stages):
        super().__init__()
        self.multi_deconv_layers = tnn.ModuleList([tnn.Identity() for _ in range(num_stages)])
        self.multi_final_layers = tnn.ModuleList([tnn.Conv2d(in_channels, num_joints, 1) for _ in range(num_stages)])

    def forward(self, feats):
        return [final(deconv(f)) for f, deconv, final in zip(feats, self.multi_deconv_layers, self.multi_final_layers)]


TINY_HOURGLASS = dict(downsample_times=2, stage_channels=(256, 32, 48), stage_blocks=(2, 2, 3), feat_channel=64)


# --- helpers

def randomised(net, seed=0):
    """Random weights, BN affine parameters and running statistics away from 1/0, eval mode."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (tnn.Conv2d, tnn.ConvTranspose2d)):
                # He-normal by fan-in: Conv2d weights are [out, in, k, k], ConvTranspose2d [in, out, k, k]
                fan_in = m.weight[0].numel() if isinstance(m, tnn.Conv2d) else m.weight[:, 0].numel()
                m.weight.normal_(0.0, (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.1)
        randomize_torch_batchnorm(net)
    return net.eval()


def mmpose_hourglass(num_stacks, head_name, num_joints=16, seed=0):
    return randomised(TopDown(HourglassNet(num_stacks=num_stacks, **TINY_HOURGLASS),
                              CPMHead(TINY_HOURGLASS['feat_channel'], num_joints, num_stacks), head_name), seed)


def mmpose_pose_resnet(depth, head_name, num_joints=16, seed=0):
    backbone = ResNet(depth)
    return randomised(TopDown(backbone, HeatmapHead(backbone.inplanes, num_joints), head_name), seed)


def save_like_mmpose(net, path):
    """MMPose's published checkpoints: {'meta': ..., 'state_dict': ...} (optimizer removed)."""
    torch.save({'meta': {'epoch': 210, 'mmpose_version': '0.x', 'CLASSES': None}, 'state_dict': net.state_dict()},
               path)
    return str(path)


def source_of(path):
    """What the CLI hands to lib.convert: the state dict found in the file, prefixes stripped."""
    state, removed = tool.find_state_dict(tool.load_torch_checkpoint(path), path)
    return tool.to_numpy(state), removed


def images(seed=1, size=64):
    return np.random.default_rng(seed).uniform(-1, 1, size=(2, 3, size, size)).astype(np.float32)   # [N, 3, H, W]


def relative_diffs(theirs, ours):
    """max |ours - theirs| / max |theirs| per output."""
    assert len(theirs) == len(ours)
    return [float(np.abs(o - t).max() / np.abs(t).max()) for t, o in zip(theirs, ours)]


def heatmap_diffs(net, model, seed=1):
    x = images(seed)
    with torch.no_grad():
        theirs = net(torch.from_numpy(x))
    theirs = [t.numpy() for t in (theirs if isinstance(theirs, list) else [theirs])]
    model.eval()
    with paddle.no_grad():
        ours = [h.numpy() for h in model(paddle.to_tensor(x))]
    return relative_diffs(theirs, ours)


def paddle_backbone_features(model, x):
    """Our pose_resnet up to layer4, from its sub-layers (the model's forward runs the head too)."""
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer4(model.layer3(model.layer2(model.layer1(x))))


def report(fmt, diffs):
    print(f'{fmt}: max relative diff per output', ['%.2e' % d for d in diffs])
    assert max(diffs) <= TOLERANCE, diffs


# --- mmpose_hourglass

@pytest.mark.parametrize('num_stacks, head_name', [(1, 'keypoint_head'), (2, 'head')])
def test_mmpose_hourglass_gives_the_reference_heatmaps(num_stacks, head_name, tmp_path):
    net = mmpose_hourglass(num_stacks, head_name)
    source, removed = source_of(save_like_mmpose(net, tmp_path / 'hg.pth'))
    assert removed == ''
    conversion = convert_state('mmpose_hourglass', source, 'hg.pth')
    assert conversion.model_name == {1: 'hourglass52', 2: 'hourglass104'}[num_stacks]
    assert conversion.model_kwargs == {'num_joints': 16, 'downsample_times': 2, 'stage_channels': [256, 32, 48],
                                       'stage_blocks': [2, 2, 3], 'feat_channel': 64}
    report(f'mmpose_hourglass ({num_stacks} stack, {head_name}.*)', heatmap_diffs(net, conversion.model))


def test_mmpose_hourglass52_drops_exactly_the_unused_inters_block():
    net = mmpose_hourglass(1, 'head')
    source = tool.to_numpy(net.state_dict())
    conversion = convert_state('mmpose_hourglass', source, 'hg52')
    inters = {k for k in source if k.startswith('backbone.inters.')}
    assert inters and all(k.startswith('backbone.inters.0.') for k in inters)
    assert {k for k, why in conversion.dropped.items() if 'inters.0' in why} == inters
    counters = {k for k in source if k.endswith('num_batches_tracked')}
    assert set(conversion.dropped) == inters | counters
    assert set(source) == conversion.used | set(conversion.dropped)

    # with two stacks inters.0 is used, not dropped
    two = convert_state('mmpose_hourglass', tool.to_numpy(mmpose_hourglass(2, 'head').state_dict()), 'hg104')
    assert 'backbone.inters.0.conv1.weight' in two.used and not any('inters' in k and 'tracked' not in k
                                                                      for k in two.dropped)
    # an inters block MMPose does not build is not dropped silently
    source['backbone.inters.1.conv1.weight'] = source['backbone.inters.0.conv1.weight']
    with pytest.raises(ValueError, match=r'not used .*backbone\.inters\.1\.conv1\.weight'):
        convert_state('mmpose_hourglass', source, 'hg52+')


def test_mmpose_hourglass_full_size_key_map_matches_spec_counts():
    """The default HourglassNet(num_stacks=1) + 16-joint head: SPEC F.2's 93,666,960 parameters, plus the
    1,180,672 of MMPose's unused inters.0 (counted from the key map, nothing allocated)."""
    options = dict(hourglass_format.DEFAULTS, num_stacks=1, num_joints=16)

    def count(mapping):
        return sum(int(np.prod(shape)) for key, (_, shape) in mapping.items() if not key.endswith(('_mean', '_var')))
    assert count(hourglass_format.key_map('head.', **options)) == 93_666_960
    assert count(hourglass_format._unused_inter(options)) == 1_180_672


def test_mmpose_hourglass_errors_name_the_keys():
    source = tool.to_numpy(mmpose_hourglass(1, 'keypoint_head').state_dict())
    with pytest.raises(ValueError, match=r'not used .*backbone\.attention\.weight'):
        convert_state('mmpose_hourglass', {**source, 'backbone.attention.weight': np.zeros(3, np.float32)}, 'x')
    with pytest.raises(ValueError, match="one of \\['keypoint_head.', 'head.'\\]"):
        convert_state('mmpose_hourglass', {**source, 'head.multi_final_layers.0.bias': np.zeros(16, np.float32)}, 'x')
    bad = dict(source)
    bad['backbone.out_convs.0.conv.weight'] = np.zeros((64, 256, 1, 1), np.float32)
    with pytest.raises(ValueError, match=r'out_convs\.0\.conv\.weight -> out_convs\.0\.conv\.weight: received '
                                         r'\(64, 256, 1, 1\), expected \(64, 256, 3, 3\)'):
        convert_state('mmpose_hourglass', bad, 'x')


def test_mmpose_hourglass_cli_writes_config_with_mmpose_conventions(tmp_path, capsys):
    net = mmpose_hourglass(1, 'keypoint_head')
    path = save_like_mmpose(net, tmp_path / 'hourglass52.pth')
    output = tmp_path / 'mmpose_hg52' / 'model.pdparams'
    assert tool.main(['--format', 'mmpose_hourglass', '--source', path, '--output', str(output)]) == 0
    out = capsys.readouterr().out
    assert 'inters.0' in out and 'num_batches_tracked' in out
    config = json.loads((output.parent / 'config.json').read_text())
    assert config['model']['name'] == 'hourglass52' and config['model']['num_joints'] == 16
    assert config['data'] == {'input_wh': [256, 256], 'heatmap_wh': [64, 64], 'sigma': 2.0, 'color_rgb': True,
                              **IMAGENET}
    assert config['test'] == {'flip_test': True, 'shift_heatmap': True}
    assert config['converted_from']['format'] == 'mmpose_hourglass'
    model = build_model('hourglass52', **{k: v for k, v in config['model'].items() if k != 'name'})
    load_weights(model, str(output))
    assert max(heatmap_diffs(net, model)) <= TOLERANCE


# --- mmpose_pose_resnet

@pytest.mark.parametrize('depth, head_name, num_joints', [(50, 'keypoint_head', 16), (18, 'head', 17)])
def test_mmpose_pose_resnet_gives_the_reference_heatmaps(depth, head_name, num_joints, tmp_path):
    net = mmpose_pose_resnet(depth, head_name, num_joints)
    source, _ = source_of(save_like_mmpose(net, tmp_path / 'res.pth'))
    conversion = convert_state('mmpose_pose_resnet', source, 'res.pth')
    assert (conversion.model_name, conversion.model_kwargs) == (f'pose_resnet_{depth}', {'num_joints': num_joints})
    assert set(conversion.dropped) == {k for k in source if k.endswith('num_batches_tracked')}
    report(f'mmpose_pose_resnet (res{depth}, {head_name}.*)', heatmap_diffs(net, conversion.model))


def test_parity_check_sees_a_batchnorm_mapping_error():
    """Control: swapping one BN's running mean and variance must show in the outputs."""
    net = mmpose_pose_resnet(18, 'head')
    source = tool.to_numpy(net.state_dict())
    mean, var = 'backbone.layer2.0.bn1.running_mean', 'backbone.layer2.0.bn1.running_var'
    source[mean], source[var] = source[var], source[mean]
    assert max(heatmap_diffs(net, convert_state('mmpose_pose_resnet', source, 'swapped').model)) > 1e-2


def test_resnet_depth_is_read_from_the_blocks_per_stage():
    for depth in RESNETS:
        keys = {k: np.zeros(1, np.float32) for k in backbone_map(depth, 'backbone.')}
        assert resnet_depth(keys, 'backbone.', 'test') == depth
    keys = {k: np.zeros(1, np.float32) for k in backbone_map(50)}
    keys = {k: v for k, v in keys.items() if not k.startswith('layer3.5.')}
    with pytest.raises(ValueError, match=r'Bottleneck blocks \(3, 4, 5, 3\)'):
        resnet_depth(keys, '', 'test')


# --- hrnet_pose_resnet

def test_hrnet_pose_resnet_gives_the_reference_heatmaps(tmp_path):
    net = randomised(HRNetPoseResNet(50, 16))
    path = tmp_path / 'pose_resnet_50_256x256.pth'
    torch.save(net.state_dict(), path)                       # the model zoo's bare state dict
    source, removed = source_of(str(path))
    assert removed == ''
    conversion = convert_state('hrnet_pose_resnet', source, str(path))
    assert (conversion.model_name, conversion.model_kwargs) == ('pose_resnet_50', {'num_joints': 16})
    report('hrnet_pose_resnet (res50)', heatmap_diffs(net, conversion.model))


def test_hrnet_pose_resnet_cli_strips_module_prefix_and_records_bgr(tmp_path, capsys):
    net = randomised(HRNetPoseResNet(18, 16), seed=3)
    path = tmp_path / 'checkpoint.pth'
    torch.save({'state_dict': tnn.DataParallel(net).state_dict(), 'epoch': 140}, path)   # HRNet's checkpoint.pth
    output = tmp_path / 'hrnet_res18' / 'model.pdparams'
    assert tool.main(['--format', 'hrnet_pose_resnet', '--source', str(path), '--output', str(output)]) == 0
    assert "'module.' removed" in capsys.readouterr().out
    config = json.loads((output.parent / 'config.json').read_text())
    assert config['model'] == {'name': 'pose_resnet_18', 'num_joints': 16}
    assert config['data']['color_rgb'] is False and config['data']['mean'] == IMAGENET['mean']
    model = build_model('pose_resnet_18', num_joints=16)
    load_weights(model, str(output))
    assert max(heatmap_diffs(net, model)) <= TOLERANCE


def test_hrnet_deconv_bias_is_reported_as_unused():
    """DECONV_WITH_BIAS true gives the deconvs a bias our pose_resnet does not have: an error, not a skip."""
    source = tool.to_numpy(randomised(HRNetPoseResNet(18, 16)).state_dict())
    source['deconv_layers.0.bias'] = np.zeros(256, np.float32)
    with pytest.raises(ValueError, match=r'not used .*deconv_layers\.0\.bias'):
        convert_state('hrnet_pose_resnet', source, 'biased.pth')


# --- torchvision_resnet and load_backbone

@pytest.mark.parametrize('depth', [18, 50])
def test_torchvision_backbone_gives_the_reference_features(depth, tmp_path, capsys):
    net = randomised(ResNet(depth, num_classes=1000), seed=depth)
    path = tmp_path / f'resnet{depth}-0000.pth'
    torch.save(net.state_dict(), path)
    output = tmp_path / 'imagenet' / f'resnet{depth}.pdparams'
    assert tool.main(['--format', 'torchvision_resnet', '--source', str(path), '--output', str(output)]) == 0
    out = capsys.readouterr().out
    assert 'fc (pose_resnet has no fc)' in out and '--pretrained_backbone' in out
    assert not (output.parent / 'config.json').exists()

    saved = paddle.load(str(output))
    model = build_model(f'pose_resnet_{depth}')
    assert set(saved) == set(backbone_state(model))
    head_before = model.final_layer.weight.numpy().copy()
    loaded = load_backbone(model, str(output))
    assert set(loaded) == set(backbone_state(model))
    assert np.array_equal(model.final_layer.weight.numpy(), head_before)      # the head keeps its init

    x = images(seed=2)
    with torch.no_grad():
        theirs = net.features(torch.from_numpy(x)).numpy()                     # [N, C, H/32, W/32]
    model.eval()
    with paddle.no_grad():
        ours = paddle_backbone_features(model, paddle.to_tensor(x)).numpy()
    report(f'torchvision_resnet (resnet{depth}, layer4 features)', relative_diffs([theirs], [ours]))


def test_torchvision_extra_key_is_reported_as_unused():
    source = tool.to_numpy(ResNet(18, num_classes=10).state_dict())
    source['layer5.0.conv1.weight'] = np.zeros((1,), np.float32)
    with pytest.raises(ValueError, match=r'not used .*layer5\.0\.conv1\.weight'):
        convert_state('torchvision_resnet', source, 'odd.pth')


def _paddle_vision_resnet(depth, path):
    """A .pdparams laid out as Paddle's ImageNet weights (paddle.vision.models.resnet*), random values."""
    from paddle.vision.models import resnet18, resnet34, resnet50
    paddle.seed(depth)
    net = {18: resnet18, 34: resnet34, 50: resnet50}[depth](pretrained=False)
    rng = np.random.default_rng(depth)
    for layer in net.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):      # statistics away from 0/1, as randomised() does
            c = layer.weight.shape
            layer.weight.set_value(rng.uniform(0.5, 1.5, c).astype(np.float32))
            layer.bias.set_value(rng.normal(0.0, 0.2, c).astype(np.float32))
            layer._mean.set_value(rng.normal(0.0, 0.2, c).astype(np.float32))
            layer._variance.set_value(rng.uniform(0.5, 2.0, c).astype(np.float32))
    paddle.save(net.state_dict(), str(path))
    net.eval()             # (Paddle 2.6's Layer.eval returns None, 3.x's the layer)
    return net


def test_load_backbone_takes_paddle_vision_imagenet_weights(tmp_path):
    path = tmp_path / 'resnet18.pdparams'
    vision = _paddle_vision_resnet(18, path)
    assert list(paddle.load(str(path))['fc.weight'].shape) == [512, 1000]     # Paddle's Linear is [in, out]
    model = build_model('pose_resnet_18')
    loaded = load_backbone(model, str(path))
    assert set(loaded) == set(backbone_state(model)) and len(loaded) == len(vision.state_dict()) - 2
    x = paddle.to_tensor(images(seed=3))
    model.eval()
    with paddle.no_grad():
        theirs = vision.layer4(vision.layer3(vision.layer2(vision.layer1(
            vision.maxpool(vision.relu(vision.bn1(vision.conv1(x))))))))
        ours = paddle_backbone_features(model, x)
    assert max(relative_diffs([theirs.numpy()], [ours.numpy()])) <= 1e-6


def test_load_backbone_lists_shape_mismatches_of_a_wrong_depth(tmp_path):
    path = tmp_path / 'resnet18.pdparams'
    _paddle_vision_resnet(18, path)
    with pytest.raises(ValueError) as error:
        load_backbone(build_model('pose_resnet_50'), str(path))
    message = str(error.value)
    assert 'ResNet-50 backbone' in message
    assert 'layer1.0.conv1.weight: file (64, 64, 3, 3) vs model (64, 64, 1, 1)' in message
    assert 'missing backbone keys: ' in message and 'layer1.0.conv3.weight' in message
    assert 'https://paddle-hapi.bj.bcebos.com/models/resnet50.pdparams' in message


def test_load_backbone_refuses_unexpected_keys(tmp_path):
    path = tmp_path / 'resnet18_plus.pdparams'
    _paddle_vision_resnet(18, path)
    state = paddle.load(str(path))
    state['final_layer.weight'] = paddle.zeros([16, 256, 1, 1])
    state['layer5.0.conv1.weight'] = paddle.zeros([1])
    paddle.save(state, str(path))
    with pytest.raises(ValueError, match=r'unexpected keys: final_layer\.weight, layer5\.0\.conv1\.weight\n'):
        load_backbone(build_model('pose_resnet_18'), str(path))
    with pytest.raises(TypeError, match='pose_resnet'):
        load_backbone(build_model('hourglass', num_stacks=1, num_features=16), str(path))

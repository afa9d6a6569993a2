"""princeton-vl checkpoint conversion (tools/convert_weights.py, lib/convert): a PyTorch PoseNet with the
reference's parameter names, saved as its train.py saves, converted and run in Paddle: same heatmaps."""
import json
import os
import sys

import numpy as np
import paddle
import pytest

torch = pytest.importorskip('torch', reason='torch is needed only for checkpoint conversion: pip install torch')
tnn = torch.nn

from lib.convert import convert_state  # noqa: E402
from lib.models import build_model  # noqa: E402
from lib.convert.loading import load_weights  # noqa: E402
from lib.utils.checkpoint import check_state_dict  # noqa: E402
from tests.helpers import randomize_torch_batchnorm  # noqa: E402

FORMAT = 'princeton_hourglass'


from tools import convert_weights as tool  # noqa: E402


from benchmarks.torch_reference import PoseNet  # noqa: E402


class Trainer(tnn.Module):
    """task/pose.py's wrapper: its `model` is DataParallel(PoseNet), hence keys 'model.module.*'."""

    def __init__(self, posenet):
        super().__init__()
        self.model = tnn.DataParallel(posenet)
        self.keys = ['imgs']


def make_posenet(nstack, inp_dim, seed=0):
    """Random weights, with BN affine parameters and running statistics away from 1/0 so that a
    BatchNorm mapping error shows in the outputs."""
    torch.manual_seed(seed)
    net = PoseNet(nstack, inp_dim, 16)
    with torch.no_grad():
        randomize_torch_batchnorm(net)
    return net.eval()


def save_like_reference(net, path):
    """train.py's save(): {'state_dict': Trainer.state_dict(), 'optimizer': ..., 'epoch': ...}."""
    trainer = Trainer(net)
    optimizer = torch.optim.Adam(trainer.parameters(), lr=1e-3)
    torch.save({'state_dict': trainer.state_dict(), 'optimizer': optimizer.state_dict(), 'epoch': 7}, path)


def source_state(net):
    """What the tool hands to lib.convert for a checkpoint of `net`."""
    state, removed = tool.find_state_dict({'state_dict': Trainer(net).state_dict()}, 'memory')
    assert removed == 'model.module.'
    return tool.to_numpy(state)


@pytest.fixture(scope='module')
def two_stacks(tmp_path_factory):
    net = make_posenet(nstack=2, inp_dim=256)
    path = tmp_path_factory.mktemp('princeton') / 'checkpoint.pt'
    save_like_reference(net, path)
    return net, str(path)


def relative_diffs(net, model, seed=1):
    """Max |ours - theirs| / max |theirs| per stack, on one random 64 x 64 batch."""
    images = np.random.default_rng(seed).uniform(0, 1, size=(2, 3, 64, 64)).astype(np.float32)   # [N, 3, H, W]
    with torch.no_grad():
        theirs = net(torch.from_numpy(images.transpose(0, 2, 3, 1).copy())).numpy()            # [N, S, K, h, w]
    model.eval()
    with paddle.no_grad():
        ours = [h.numpy() for h in model(paddle.to_tensor(images))]                             # S x [N, K, h, w]
    assert len(ours) == theirs.shape[1]
    return [float(np.abs(o - theirs[:, s]).max() / np.abs(theirs[:, s]).max()) for s, o in enumerate(ours)]


def test_converted_two_stack_model_gives_the_reference_heatmaps(two_stacks):
    net, path = two_stacks
    state, removed = tool.find_state_dict(tool.load_torch_checkpoint(path), path)
    assert removed == 'model.module.'
    conversion = convert_state(FORMAT, tool.to_numpy(state), path)
    assert (conversion.model_name, conversion.model_kwargs) == (
        'hourglass', {'num_stacks': 2, 'num_features': 256, 'num_joints': 16})
    diffs = relative_diffs(net, conversion.model)
    print('max relative diff per stack:', ['%.2e' % d for d in diffs])
    assert max(diffs) <= 1e-4, diffs


def test_parity_check_sees_a_batchnorm_mapping_error():
    """Control for the test above: swapping one BN's running mean and variance must show."""
    net = make_posenet(nstack=2, inp_dim=256)
    source = source_state(net)
    mean, var = 'hgs.0.0.low2.low1.bn2.running_mean', 'hgs.0.0.low2.low1.bn2.running_var'
    source[mean], source[var] = source[var], source[mean]
    assert max(relative_diffs(net, convert_state(FORMAT, source, 'swapped').model)) > 1e-2


def test_cli_writes_weights_and_config_with_the_reference_conventions(two_stacks, tmp_path, capsys):
    net, path = two_stacks
    output = tmp_path / 'princeton_hg2' / 'model.pdparams'
    assert tool.main(['--format', FORMAT, '--source', path, '--output', str(output)]) == 0
    report = capsys.readouterr().out
    assert 'Converted' in report and 'unused skip_layer' in report and str(output) in report

    config = json.loads((output.parent / 'config.json').read_text())
    assert config['model'] == {'name': 'hourglass', 'num_stacks': 2, 'num_features': 256, 'num_joints': 16}
    assert config['data'] == {'input_wh': [256, 256], 'heatmap_wh': [64, 64], 'sigma': 1.0, 'color_rgb': True,
                              'mean': [0, 0, 0], 'std': [1, 1, 1]}
    assert config['test'] == {'shift_heatmap': False, 'decode_offset': 0.5}
    source = config['converted_from']
    assert source['format'] == FORMAT and source['source'] == os.path.abspath(path)
    assert source['sha256'] == tool.sha256_of(path) and source['weights'] == 'model.pdparams'

    model = build_model('hourglass', **{k: v for k, v in config['model'].items() if k != 'name'})
    load_weights(model, str(output))        # the strict loader val.py uses
    assert max(relative_diffs(net, model)) <= 1e-4

    # converting again into the same folder is fine; other weights there would share its config.json
    tool.main(['--format', FORMAT, '--source', path, '--output', str(output)])
    with pytest.raises(ValueError, match='already describes'):
        tool.main(['--format', FORMAT, '--source', path, '--output', str(output.parent / 'other.pdparams')])


def test_list_prints_source_keys_and_shapes(two_stacks, tmp_path, capsys):
    _, path = two_stacks
    assert tool.main(['--format', FORMAT, '--source', path, '--list']) == 0
    out = capsys.readouterr().out
    assert "'model.module.' removed" in out
    assert 'hgs.1.0.low2.low2.low2.low2.skip_layer.conv.weight' in out and '[256, 256, 1, 1]' in out


def test_full_size_key_map_drops_exactly_the_unused_skip_convs():
    """8 stacks of 256 (the published checkpoint): SPEC F.1's 32,819,328 registered parameters become
    our 25,434,112; the difference is the skip convs of residuals with in == out."""
    net = make_posenet(nstack=8, inp_dim=256)
    assert sum(p.numel() for p in net.parameters()) == 32_819_328
    source = source_state(net)
    conversion = convert_state(FORMAT, source, 'PoseNet(8, 256, 16)')
    check_state_dict(conversion.model, conversion.state, 'converted')
    trainable = [p for p in conversion.model.parameters() if not p.stop_gradient]   # not BN running stats
    assert sum(int(np.prod(p.shape)) for p in trainable) == 25_434_112

    skips = [k for k, why in conversion.dropped.items() if 'skip_layer' in why]
    assert sum(source[k].size for k in skips) == 32_819_328 - 25_434_112
    assert len(skips) == 2 * (1 + 8 * 14)   # weight + bias of: stem Residual(128, 128); 13 + 1 per stack
    assert all('.skip_layer.conv.' in k for k in skips)
    counters = [k for k in conversion.dropped if k.endswith('num_batches_tracked')]
    assert len(counters) == sum(isinstance(m, tnn.BatchNorm2d) for m in net.modules())
    assert set(source) == conversion.used | set(conversion.dropped)


def test_unknown_source_key_is_named():
    source = source_state(make_posenet(nstack=2, inp_dim=256))
    source['hgs.0.0.attention.weight'] = np.zeros((4,), np.float32)
    with pytest.raises(ValueError, match=r'not used .*hgs\.0\.0\.attention\.weight'):
        convert_state(FORMAT, source, 'extra.pt')


def test_wrong_shape_names_the_key_and_both_shapes():
    source = source_state(make_posenet(nstack=2, inp_dim=256))
    source['hgs.1.0.low1.conv2.conv.weight'] = np.zeros((128, 128, 1, 1), np.float32)
    with pytest.raises(ValueError) as error:
        convert_state(FORMAT, source, 'bad.pt')
    message = str(error.value)
    assert 'hgs.1.0.low1.conv2.conv.weight -> hourglasses.1.low1.conv2' in message
    assert '(128, 128, 1, 1)' in message and '(128, 128, 3, 3)' in message


def test_inp_dim_other_than_256_is_refused_with_the_reason():
    """The reference's stem is 128 channels whatever inp_dim is; ours is num_features // 2."""
    source = source_state(make_posenet(nstack=2, inp_dim=32))
    with pytest.raises(ValueError, match='inp_dim 32.*stem'):
        convert_state(FORMAT, source, 'small.pt')


def test_bare_state_dict_with_module_prefix_is_found():
    state, removed = tool.find_state_dict({'module.pre.0.conv.weight': torch.zeros(1),
                                           'module.outs.0.conv.bias': torch.zeros(1)}, 'bare.pt')
    assert removed == 'module.' and sorted(state) == ['outs.0.conv.bias', 'pre.0.conv.weight']
    with pytest.raises(ValueError, match='state_dict'):
        tool.find_state_dict({'epoch': 3}, 'odd.pt')


def test_missing_torch_says_how_to_install_it(two_stacks, monkeypatch):
    _, path = two_stacks
    monkeypatch.setitem(sys.modules, 'torch', None)     # makes `import torch` fail
    with pytest.raises(ImportError, match=r'torch is needed only for conversion: pip install torch'):
        tool.load_torch_checkpoint(path)

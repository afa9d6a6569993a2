"""mks0601/TF-SimpleHumanPose (and its Huawei Ascend port) TF checkpoints -> our 'pose_resnet_{depth}'
(lib/models/pose_resnet.py; SEED_WEIGHTS 1.4).

lib/tfflat/saver.py writes `snapshot_<epoch>.ckpt.{index, data-*, meta}` with tf.train.Saver (checkpoint
V2); the published 256x192_resnet50_coco.zip holds such a prefix. The variables (lib/nets/basemodel.py,
resnet_v1.py, resnet_utils.py, main/model.py; TF-slim names, TF layouts):

    resnet_v1_50/conv1/weights [7, 7, 3, 64] + /BatchNorm/{gamma, beta, moving_mean, moving_variance}
    resnet_v1_50/block{b}/unit_{u}/bottleneck_v1/conv{1,2,3}/weights (+ /BatchNorm/*)
                           -> layer{b}.{u-1}.conv{1,2,3} / bn{1,2,3}  (stride on unit_1's 3x3 conv2)
    resnet_v1_50/block{b}/unit_1/bottleneck_v1/shortcut/weights (+ /BatchNorm/*) -> layer{b}.0.downsample.0/.1
    up{1,2,3}/weights [4, 4, 256 (out), in] + /BatchNorm/*      -> deconv_layers.{0,3,6} / {1,4,7}
    out/weights [1, 1, 256, K], out/biases [K]                  -> final_layer (K = 17)

Layouts: conv kernels HWIO -> OIHW and conv2d_transpose [H, W, out, in] -> Paddle [in, out, H, W] are
both transpose(3, 2, 0, 1), with no spatial flip (both frameworks' transposed conv is the adjoint of the
same cross-correlation). Padding agrees: conv2d_same pads symmetrically (3 for the 7x7/2, 1 for the
3x3/2), tf.pad(1) + VALID 3x3/2 max-pool after a ReLU equals MaxPool2D(3, 2, 1), the 1x1/2 shortcut
pads nothing, and a SAME 4x4/2 transposed conv is padding 1.

Two folds make our model compute the same function exactly:
- every BatchNorm has epsilon 1e-9 (resnet_arg_scope), ours 1e-5: gamma' = gamma * sqrt(var + 1e-5) /
  sqrt(var + 1e-9), mean and variance kept. (Not verified here: TF 1.x's fused batch norm, which slim's
  batch_norm picks by default, raised epsilon to at least 1.001e-5, so the TF 1.x runtime that trained
  the published weights may have used 1.001e-5; it differs from 1e-9 only for variances near 1e-5 or
  below. TF 2.x applies 1e-9, as the model code says, and so does this converter: TF_BN_EPSILON.)
- the targets were Gaussians x 255 and test.py divides by 255: out/weights and out/biases / 255 give
  heatmaps in [0, 1], which our scores and thresholds expect.
Variables of the optimizer and training loop (.../Adam, .../Adam_1, beta1_power, beta2_power,
global_step, ...) are dropped by pattern. Reading the checkpoint needs TensorFlow (tf.train.load_checkpoint),
an optional dependency of this converter only: pip install tensorflow-cpu.
"""
import re
from typing import Dict, Set, Tuple

import numpy as np

from lib.convert import resnet_maps
from lib.convert.common import KeyMap, State, apply_key_map
from lib.utils.errors import BadValue, MissingFile, MissingPackage

WHAT = 'a TF-SimpleHumanPose (TF-slim resnet_v1 + up1..3 + out) checkpoint'
TF_BN_EPSILON = 1e-9
OUR_BN_EPSILON = 1e-5
HEATMAP_SCALE = 255.0
TRAINING_REASON = 'optimizer / training-loop variable (Adam slots, beta powers, global_step): not the model'
TRAINING_PATTERN = re.compile(r'/(Adam|Adam_1|Momentum|RMSProp|RMSProp_1|ExponentialMovingAverage)$'
                              r'|^(beta1_power|beta2_power|global_step|learning_rate|lr)(_\d+)?$')
BN_TENSORS = {'gamma': 'weight', 'beta': 'bias', 'moving_mean': '_mean', 'moving_variance': '_variance'}
_SCOPE = re.compile(r'^resnet_v1_(\d+)/')

# main/config.py, gen_batch.py, test.py: BGR 0-255 (cv2.imread; the [:, :, ::-1] is commented out) minus
# pixel_means [123.68, 116.78, 103.94] (RGB-ordered VGG means applied to B, G, R) and no std: in our terms
# on [0, 1] pixels, mean / 255 and std 1 / 255. Input 256 x 192 (H x W) -> heatmaps 64 x 48, sigma 2;
# flip test with the one-column shift; argmax refined by a quarter pixel toward the higher neighbour.
CONVENTIONS = {
    'data': {'dataset': 'coco', 'input_wh': [192, 256], 'heatmap_wh': [48, 64], 'sigma': 2.0, 'color_rgb': False,
             'mean': [123.68 / 255, 116.78 / 255, 103.94 / 255], 'std': [1 / 255] * 3},
    'test': {'flip_test': True, 'shift_heatmap': True, 'post_process': True, 'decode_offset': 0.0},
}


def read_checkpoint(prefix: str) -> State:
    """{variable name: array} of a TF checkpoint, read with TensorFlow's own reader. `prefix` is the
    checkpoint prefix (snapshot_140.ckpt), a file of it (.index / .data-*) or a folder with a `checkpoint`
    file."""
    import os
    for suffix in ('.index', '.meta'):
        if prefix.endswith(suffix):
            prefix = prefix[:-len(suffix)]
    prefix = re.sub(r'\.data-\d{5}-of-\d{5}$', '', prefix)
    try:
        import tensorflow as tf
    except ImportError:
        raise MissingPackage('reading a TF checkpoint needs TensorFlow, for this converter only: pip install '
                             'tensorflow-cpu (training and evaluation do not need it).') from None
    if not (os.path.isfile(prefix + '.index') or os.path.isdir(prefix)):
        raise MissingFile(f'TF checkpoint not found: {prefix}.index does not exist. Pass the prefix of the '
                          'checkpoint, e.g. model_dump/COCO/snapshot_140.ckpt (beside .index and .data-*).')
    try:
        reader = tf.train.load_checkpoint(prefix)
        return {name: np.asarray(reader.get_tensor(name)) for name in reader.get_variable_to_shape_map()}
    except Exception as error:
        raise BadValue(f'cannot read {prefix} with tf.train.load_checkpoint ({type(error).__name__}: {error}); '
                       f'expected {WHAT} (TF1 checkpoint V2: .index + .data-*).') from None


def is_tf_checkpoint_name(path: str) -> bool:
    return bool(re.search(r'(\.ckpt|\.index|\.data-\d{5}-of-\d{5}|\.meta)$', path))


def _depth(state: State) -> int:
    depths = {int(m.group(1)) for k in state for m in [_SCOPE.match(k)] if m}
    if len(depths) != 1 or next(iter(depths)) not in (50, 101, 152):
        raise BadValue(f'not {WHAT}: its variable scopes name ResNet depths {sorted(depths)}; expected one of '
                       'resnet_v1_50 / resnet_v1_101 / resnet_v1_152. Pass the unmodified checkpoint.')
    return depths.pop()


def _bn(scope: str, target: str, channels: int) -> KeyMap:
    return {f'{scope}/BatchNorm/{s}': (f'{target}.{t}', (channels,)) for s, t in BN_TENSORS.items()}


def key_map(depth: int, num_joints: int) -> KeyMap:
    """TF variable -> (our key, TF shape). Shapes are checked on the TF side, then transposed."""
    root = f'resnet_v1_{depth}'
    mapping: KeyMap = {f'{root}/conv1/weights': ('conv1.weight', (7, 7, 3, 64)), **_bn(f'{root}/conv1', 'bn1', 64)}
    _, blocks = resnet_maps.RESNETS[depth]
    in_channels = 64
    for b, count in enumerate(blocks, start=1):
        planes = 64 * 2 ** (b - 1)
        for u in range(1, count + 1):
            scope, name = f'{root}/block{b}/unit_{u}/bottleneck_v1', f'layer{b}.{u - 1}'
            cin = in_channels if u == 1 else planes * 4
            for k, (kernel, i, o) in enumerate([(1, cin, planes), (3, planes, planes), (1, planes, planes * 4)], 1):
                mapping[f'{scope}/conv{k}/weights'] = (f'{name}.conv{k}.weight', (kernel, kernel, i, o))
                mapping.update(_bn(f'{scope}/conv{k}', f'{name}.bn{k}', o))
            if u == 1:
                mapping[f'{scope}/shortcut/weights'] = (f'{name}.downsample.0.weight', (1, 1, cin, planes * 4))
                mapping.update(_bn(f'{scope}/shortcut', f'{name}.downsample.1', planes * 4))
        in_channels = planes * 4
    for i in range(resnet_maps.NUM_DECONVS):
        mapping[f'up{i + 1}/weights'] = (f'deconv_layers.{3 * i}.weight', (4, 4, 256, in_channels))
        mapping.update(_bn(f'up{i + 1}', f'deconv_layers.{3 * i + 1}', 256))
        in_channels = 256
    mapping['out/weights'] = ('final_layer.weight', (1, 1, 256, num_joints))
    mapping['out/biases'] = ('final_layer.bias', (num_joints,))
    return mapping


def _layout(state: State) -> Tuple[int, int]:
    depth = _depth(state)
    if 'out/weights' not in state:
        raise BadValue(f"not {WHAT}: no 'out/weights' (the 1x1 heatmap conv); received {len(state)} variables "
                       f'like {sorted(state)[:4]}. Pass the unmodified checkpoint.')
    return depth, int(state['out/weights'].shape[-1])


def model_spec(state: State):
    depth, num_joints = _layout(state)
    return f'pose_resnet_{depth}', {'num_joints': num_joints}


def dropped_unused(state: State) -> Dict[str, str]:
    return {k: TRAINING_REASON for k in state if TRAINING_PATTERN.search(k)}


def convert(state: State) -> Tuple[State, Set[str]]:
    depth, num_joints = _layout(state)
    renamed, used = apply_key_map(state, key_map(depth, num_joints), f'TF-SimpleHumanPose resnet_v1_{depth}')
    target = {}
    for key, value in renamed.items():
        if value.ndim == 4:                             # HWIO / [H, W, out, in] -> OIHW / [in, out, H, W]
            value = value.transpose(3, 2, 0, 1)
        target[key] = np.ascontiguousarray(value, dtype=np.float32)
    for key in [k for k in target if k.endswith('._variance')]:
        layer = key[:-len('._variance')]
        var = target[key].astype(np.float64)
        gamma = target[f'{layer}.weight'].astype(np.float64)
        target[f'{layer}.weight'] = (gamma * np.sqrt(var + OUR_BN_EPSILON) / np.sqrt(var + TF_BN_EPSILON)
                                     ).astype(np.float32)
    target['final_layer.weight'] = (target['final_layer.weight'].astype(np.float64) / HEATMAP_SCALE).astype(np.float32)
    target['final_layer.bias'] = (target['final_layer.bias'].astype(np.float64) / HEATMAP_SCALE).astype(np.float32)
    return target, used

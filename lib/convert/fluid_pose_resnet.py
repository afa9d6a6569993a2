"""PaddlePaddle/models Fluid SimpleBaselines (PaddleCV/human_pose_estimation, `lib/pose_resnet.py`)
persistables -> our 'pose_resnet_{depth}' (lib/models/pose_resnet.py; SEED_WEIGHTS 1.2).

The published pose-resnet50-{mpii-256x256, mpii-384x384, coco-256x192, coco-384x288} tarballs hold a
directory written by `fluid.io.save_persistables(exe, dir)`: one file per variable, named by the
variable. The model code sets no `name=` in any ParamAttr, so the names are Fluid's auto-generated
unique names, numbered in the order the layers were built:

    conv_bn_layer               conv2d_k.w_0 (no bias), then batch_norm_k.{w_0 scale, b_0 bias,
                                w_1 moving mean, w_2 moving variance}: BN k pairs with conv k
    conv1 (7x7/2)               conv2d_0 / batch_norm_0                   -> conv1 / bn1
    each bottleneck             conv0 1x1, conv1 3x3 (the stride), conv2 1x1 x4, THEN the shortcut
                                1x1 (first block of a stage)              -> conv1..3 / bn1..3, downsample.0/.1
                                ResNet-50: layer1.0 = conv2d_1,2,3 + 4; layer1.1 = 5-7; ...; layer4.2 = 50-52
    3 deconvs                   conv2d_transpose_{0,1,2}.w_0 [in, out, 4, 4], no bias -> deconv_layers.{0,3,6}
                                batch_norm_{53,54,55}                     -> deconv_layers.{1,4,7}
    final 1x1 conv              conv2d_53.{w_0, b_0} [K, 256, 1, 1], [K] -> final_layer (K 16 MPII, 17 COCO)

Paddle's layouts are ours (conv [out, in, k, k], transposed conv [in, out, k, k]), so the tensors are only
renamed; every shape is checked, which catches a build-order mismatch. Variables of the optimizer
(Adam moments and beta powers, the learning rate and its decay counter) are skipped by pattern.

Each file is Paddle's LoDTensor serialisation (paddle/fluid/framework/lod_tensor.cc SerializeToStream,
tensor_util.cc TensorToStream), parsed here with numpy, so reading runs no pickle and needs no Fluid:
    uint32 version (0) | uint64 lod_level, then per level uint64 byte size + that many bytes of offsets |
    uint32 tensor version (0) | int32 desc size | VarType.TensorDesc protobuf (1: data_type, 2: dims) |
    raw little-endian data of prod(dims) elements.
"""
import os
import re
from typing import Dict, List, Set, Tuple

import numpy as np

from lib.convert import resnet_maps
from lib.convert.common import IMAGENET_MEAN, IMAGENET_STD, KeyMap, State, apply_key_map
from lib.utils.errors import BadValue, MissingFile

WHAT = 'a Fluid SimpleBaselines (PaddleCV human_pose_estimation pose_resnet) persistables directory'
OPTIMIZER_REASON = 'optimizer state (Adam moments / beta powers, learning rate): not part of the model'
OPTIMIZER_PATTERN = re.compile(r'(_moment[12]_\d+|_beta[12]_pow_acc_\d+|_velocity_\d+)$'
                               r'|^learning_rate(_\d+)?$|^@LR_DECAY_COUNTER@$')
_CONV = re.compile(r'^conv2d_(\d+)\.w_0$')

# VarType.Type (framework.proto) -> numpy dtype, the tensor types a persistable can have.
PADDLE_DTYPES = {0: np.bool_, 1: np.int16, 2: np.int32, 3: np.int64, 4: np.float16, 5: np.float32,
                 6: np.float64, 20: np.uint8, 21: np.int8}

# mpii_reader.py / coco_reader.py / val.py: BGR pixels (cv2.imread, no conversion) / 255, normalised
# with ImageNet's RGB-ordered mean/std applied to the B, G, R channels (HRNet's COLOR_RGB false),
# sigma 3, flip test with the one-column shift, get_final_preds (quarter-pixel refinement). Its
# "Mean@0.1" is HRNet's pckAll[11], the 0.11 threshold. The published input sizes are in the tarball
# names; without one, the MPII model's 384 x 384 (COCO: 288 x 384, W x H).
_SIZE_IN_NAME = re.compile(r'(\d{3})x(\d{3})')


# ----------------------------------------------------------------------------- the file format
def _varint(buf: bytes, pos: int) -> Tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise BadValue('truncated protobuf varint')
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def parse_tensor_desc(desc: bytes) -> Tuple[int, List[int]]:
    """(data_type, dims) of a VarType.TensorDesc message; dims packed or not, other fields skipped."""
    dtype, dims, pos = None, [], 0
    while pos < len(desc):
        tag, pos = _varint(desc, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(desc, pos)
            if field == 1:
                dtype = value
            elif field == 2:
                dims.append(_signed64(value))
        elif wire == 2:
            size, pos = _varint(desc, pos)
            chunk, pos = desc[pos:pos + size], pos + size
            if field == 2:                              # packed repeated int64
                inner = 0
                while inner < len(chunk):
                    value, inner = _varint(chunk, inner)
                    dims.append(_signed64(value))
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise BadValue(f'unsupported protobuf wire type {wire}')
    if dtype is None:
        raise BadValue('TensorDesc without data_type')
    return dtype, dims


def read_lod_tensor(path: str) -> np.ndarray:
    """One variable file written by Fluid's save_vars / save_persistables, as a numpy array."""
    with open(path, 'rb') as f:
        buf = f.read()

    def fail(why):
        return ValueError(f'{path} is not a Paddle LoDTensor file ({why}); expected a variable written by '
                          'fluid.io.save_persistables (uint32 version 0, LoD, TensorDesc, raw data).')

    if len(buf) < 20:
        raise fail(f'{len(buf)} bytes')
    version, lod_level = np.frombuffer(buf, '<u4', 1, 0)[0], int(np.frombuffer(buf, '<u8', 1, 4)[0])
    if version != 0 or lod_level > 16:
        raise fail(f'version {version}, lod_level {lod_level}')
    pos = 12
    for _ in range(lod_level):
        size = int(np.frombuffer(buf, '<u8', 1, pos)[0])
        pos += 8 + size
    if pos + 8 > len(buf):
        raise fail('truncated LoD')
    tensor_version, desc_size = np.frombuffer(buf, '<u4', 1, pos)[0], int(np.frombuffer(buf, '<i4', 1, pos + 4)[0])
    if tensor_version != 0 or not 0 < desc_size <= len(buf) - pos - 8:
        raise fail(f'tensor version {tensor_version}, desc size {desc_size}')
    try:
        dtype, dims = parse_tensor_desc(buf[pos + 8:pos + 8 + desc_size])
    except ValueError as error:
        raise fail(str(error)) from None
    if dtype not in PADDLE_DTYPES or any(d < 0 for d in dims):
        raise fail(f'data type {dtype}, dims {dims}')
    pos += 8 + desc_size
    count = int(np.prod(dims)) if dims else 1
    np_dtype = np.dtype(PADDLE_DTYPES[dtype]).newbyteorder('<')
    if len(buf) - pos != count * np_dtype.itemsize:
        raise fail(f'{len(buf) - pos} data bytes for dims {dims} of {np_dtype}')
    return np.frombuffer(buf, np_dtype, count, pos).reshape(dims).copy()


def is_persistables_dir(path: str) -> bool:
    """A directory holding Fluid's first conv variable file, conv2d_0.w_0."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, 'conv2d_0.w_0'))


def read_persistables(path: str) -> State:
    """{variable name: array} of every regular file in the directory (hidden files and *.pdmodel aside)."""
    if not os.path.isdir(path):
        raise MissingFile(f'{path} is not a directory; expected {WHAT} (the folder of a '
                          'pose-resnet50-*.tar.gz, holding conv2d_0.w_0, batch_norm_0.w_0, ...).')
    names = sorted(n for n in os.listdir(path) if os.path.isfile(os.path.join(path, n)) and not n.startswith('.')
                   and not n.endswith(('.pdmodel', '.json', '.txt', '.md')) and n != '__model__')
    if not names:
        raise BadValue(f'{path} holds no variable files; expected {WHAT}.')
    return {name: read_lod_tensor(os.path.join(path, name)) for name in names}


# ----------------------------------------------------------------------------- the key map
def _conv_count(state: State) -> int:
    return len([k for k in state if _CONV.match(k)])


def _depth(state: State) -> int:
    """ResNet depth from the number of conv2d_k variables: 1 + 3 per block + 4 shortcuts + the final conv."""
    count = _conv_count(state)
    for depth, (bottleneck, blocks) in resnet_maps.RESNETS.items():
        if bottleneck and count == 1 + 3 * sum(blocks) + 4 + 1:
            return depth
    raise BadValue(f'{WHAT}: {count} conv2d_k.w_0 variables, which fits no ResNet-50/101/152 pose_resnet '
                   '(55, 106 or 157 expected: the stem, 3 per bottleneck, 4 shortcuts, the final conv). Pass '
                   'the unmodified directory of the tarball.')


def key_map(depth: int, num_joints: int) -> KeyMap:
    """Fluid variable -> (our key, shape), following the build order of pose_resnet.py."""
    ours = resnet_maps.backbone_map(depth)                     # our name -> shape, via the torch-style map
    shapes = {target: shape for _, (target, shape) in ours.items()}
    _, blocks = resnet_maps.RESNETS[depth]
    order = ['conv1']                                          # our conv modules in Fluid's build order
    for stage, count in enumerate(blocks, start=1):
        for j in range(count):
            order += [f'layer{stage}.{j}.conv{k}' for k in (1, 2, 3)]
            if j == 0:
                order.append(f'layer{stage}.{j}.downsample.0')
    mapping: KeyMap = {}
    bn_tensors = {'w_0': 'weight', 'b_0': 'bias', 'w_1': '_mean', 'w_2': '_variance'}
    for k, conv in enumerate(order):
        bn = 'bn1' if conv == 'conv1' else (conv[:-len('.0')] + '.1' if conv.endswith('downsample.0')
                                            else conv[:-len('conv1')] + 'bn' + conv[-1])
        mapping[f'conv2d_{k}.w_0'] = (f'{conv}.weight', shapes[f'{conv}.weight'])
        for fluid, tensor in bn_tensors.items():
            mapping[f'batch_norm_{k}.{fluid}'] = (f'{bn}.{tensor}', shapes[f'{bn}.{tensor}'])
    in_channels = 2048
    for i in range(resnet_maps.NUM_DECONVS):
        mapping[f'conv2d_transpose_{i}.w_0'] = (f'deconv_layers.{3 * i}.weight', (in_channels, 256, 4, 4))
        for fluid, tensor in bn_tensors.items():
            mapping[f'batch_norm_{len(order) + i}.{fluid}'] = (f'deconv_layers.{3 * i + 1}.{tensor}', (256,))
        in_channels = 256
    final = len(order)
    mapping[f'conv2d_{final}.w_0'] = ('final_layer.weight', (num_joints, 256, 1, 1))
    mapping[f'conv2d_{final}.b_0'] = ('final_layer.bias', (num_joints,))
    return mapping


def _layout(state: State) -> Tuple[int, int]:
    depth = _depth(state)
    final = f'conv2d_{_conv_count(state) - 1}.w_0'
    if final not in state:
        raise BadValue(f'{WHAT}: the final conv {final} is missing (conv2d_k are not numbered 0..'
                       f'{_conv_count(state) - 1}). Pass the unmodified directory.')
    return depth, int(state[final].shape[0])


def model_spec(state: State):
    depth, num_joints = _layout(state)
    return f'pose_resnet_{depth}', {'num_joints': num_joints}


def dropped_unused(state: State) -> Dict[str, str]:
    return {k: OPTIMIZER_REASON for k in state if OPTIMIZER_PATTERN.search(k)}


def convert(state: State) -> Tuple[State, Set[str]]:
    depth, num_joints = _layout(state)
    return apply_key_map(state, key_map(depth, num_joints), f'Fluid pose_resnet_{depth} (build order of '
                         'PaddleCV human_pose_estimation lib/pose_resnet.py)')


def conventions_for(state: State, source_path: str) -> Dict[str, dict]:
    """BGR + ImageNet statistics, sigma 3, flip test with the shift; the input size of the tarball's name
    (pose-resnet50-mpii-384x384: H x W), else 384 x 384 for MPII and 288 x 384 (W x H) for COCO."""
    _, num_joints = _layout(state)
    dataset = 'coco' if num_joints == 17 else 'mpii'
    match = _SIZE_IN_NAME.search(os.path.basename(os.path.normpath(source_path or '')))
    height, width = (int(match.group(1)), int(match.group(2))) if match else ((384, 288) if dataset == 'coco'
                                                                              else (384, 384))
    return {'data': {'dataset': dataset, 'input_wh': [width, height], 'heatmap_wh': [width // 4, height // 4],
                     'sigma': 3.0, 'color_rgb': False, 'mean': IMAGENET_MEAN, 'std': IMAGENET_STD},
            'test': {'flip_test': True, 'shift_heatmap': True, 'post_process': True, 'decode_offset': 0.0}}


# What tools/convert_weights.py lists for the format; the file's own size and dataset are used when converting.
CONVENTIONS = {'data': {'dataset': 'mpii', 'input_wh': [384, 384], 'heatmap_wh': [96, 96], 'sigma': 3.0,
                        'color_rgb': False, 'mean': IMAGENET_MEAN, 'std': IMAGENET_STD},
               'test': {'flip_test': True, 'shift_heatmap': True, 'post_process': True, 'decode_offset': 0.0}}

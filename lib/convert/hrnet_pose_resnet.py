"""HRNet repository (leoxiaobin/deep-high-resolution-net.pytorch) `pose_resnet_*.pth` -> our
'pose_resnet_{depth}' (lib/models/pose_resnet.py, SPEC F.3).

The model zoo files are bare state dicts of lib/models/pose_resnet.py's PoseResNet (the trainer's
checkpoint.pth keeps DataParallel's 'module.' prefix under 'state_dict'; the loader strips both).
Keys: conv1, bn1, layer{1..4}.{j}.{conv1, bn1, conv2, bn2[, conv3, bn3], downsample.0/.1},
deconv_layers.{0,1,3,4,6,7} (ConvTranspose2d without bias since DECONV_WITH_BIAS is false, BatchNorm2d),
final_layer (1x1 Conv2d with bias, FINAL_CONV_KERNEL 1): our names, BN statistics renamed.
"""
from lib.convert import resnet_maps
from lib.convert.common import State, heatmap_conventions

WHAT = "an HRNet-repo PoseResNet (pose_resnet_*.pth) state dict"

# experiments/mpii/resnet/res*_256x256_d256x3_adam_lr1e-3.yaml: COLOR_RGB false, i.e. BGR pixels
# normalised with the RGB ImageNet statistics (SPEC J.7), SIGMA 2, FLIP_TEST and SHIFT_HEATMAP true.
CONVENTIONS = heatmap_conventions(color_rgb=False)


def _layout(state: State):
    return resnet_maps.pose_resnet_layout(state, '', '', WHAT)


SOURCE = resnet_maps.PoseResNetSource(_layout, 'an HRNet-repo pose_resnet_{depth}')
model_spec, dropped_unused, convert = SOURCE.model_spec, SOURCE.dropped_unused, SOURCE.convert

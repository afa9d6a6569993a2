"""MMPose SimpleBaseline checkpoints (td-hm_res{50,101,152}, 0.x res{50,101,152}_mpii_256x256) -> our
'pose_resnet_{depth}' (lib/models/pose_resnet.py, SPEC F.3).

MMPose saves {'state_dict': ..., 'meta': ...}; the loader takes 'state_dict'. Keys (read from
mmpose/models/backbones/resnet.py, heads/heatmap_heads/heatmap_head.py and 0.x
heads/topdown_heatmap_simple_head.py):

    backbone.conv1, backbone.bn1, backbone.layer{1..4}.{j}.*    MMPose ResNet, torchvision names -> same
    keypoint_head.deconv_layers.{0,1,3,4,6,7}.*   0.x TopdownHeatmapSimpleHead    -> deconv_layers.*
    head.deconv_layers.{0,1,3,4,6,7}.*            1.x HeatmapHead (conv_layers is nn.Identity)
    {keypoint_head, head}.final_layer.{weight, bias}   one 1x1 Conv2d (no extra conv layers) -> final_layer.*

The depth comes from the blocks per stage, num_joints from final_layer (16 MPII, 17 COCO).
"""
from lib.convert import resnet_maps
from lib.convert.common import MMPOSE_BACKBONE, State, heatmap_conventions, mmpose_head_prefix

WHAT = 'an MMPose SimpleBaseline (ResNet + HeatmapHead) state dict'

# td-hm_res50_8xb64-210e_mpii-256x256: RGB (bgr_to_rgb) with ImageNet mean/std, MSRAHeatmap sigma 2,
# flip test with shift_heatmap=True.
CONVENTIONS = heatmap_conventions(color_rgb=True)


def _layout(state: State):
    return resnet_maps.pose_resnet_layout(state, MMPOSE_BACKBONE, mmpose_head_prefix(state), WHAT)


SOURCE = resnet_maps.PoseResNetSource(_layout, 'an MMPose SimpleBaseline res{depth}')
model_spec, dropped_unused, convert = SOURCE.model_spec, SOURCE.dropped_unused, SOURCE.convert

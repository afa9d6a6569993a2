"""Which known layout a weights file's keys look like, and what to do with it.

val.py, infer.py and export.py load this repository's .pdparams, and two foreign layouts as they are
(PaddlePose's hourglass52 .pdparams, a Fluid SimpleBaselines persistables directory). Any other file
gets an answer instead of hundreds of missing keys: the project whose layout its keys match and the
exact command that converts it, or "unknown" with a few of its keys. Only key names are looked at
(no Paddle, no torch).
"""
from dataclasses import dataclass
from typing import Iterable, List, Optional

from lib.convert.paddlepose_hourglass import is_paddlepose

WRAPPER_PREFIXES = ('model.', 'module.')     # princeton-vl's Trainer.model, DataParallel's module


@dataclass(frozen=True)
class Layout:
    name: str                 # short id, e.g. 'mmpose_hourglass'
    project: str              # where such files come from
    fmt: Optional[str]        # tools/convert_weights.py --format, or None when it cannot be converted
    direct: bool = False      # val.py / infer.py / export.py read it as it is
    note: str = ''            # what else to know (e.g. why it cannot be converted)


PADDLEPOSE = Layout('paddlepose_hourglass52', 'txyugood/PaddlePose (AI Studio Hourglass-52 reproduction) '
                    'model.pdparams', 'paddlepose_hourglass52', direct=True)
FLUID = Layout('fluid_pose_resnet', 'PaddlePaddle/models Fluid SimpleBaselines persistables directory '
               '(pose-resnet50-*)', 'fluid_pose_resnet', direct=True)
TF = Layout('tf_simplehumanpose', 'mks0601/TF-SimpleHumanPose TF checkpoint', 'tf_simplehumanpose')
PRINCETON = Layout('princeton_hourglass', 'princeton-vl/pytorch_stacked_hourglass PoseNet checkpoint',
                   'princeton_hourglass')
MMPOSE_HOURGLASS = Layout('mmpose_hourglass', 'MMPose hourglass52 / hourglass104', 'mmpose_hourglass')
MMPOSE_RESNET = Layout('mmpose_pose_resnet', 'MMPose SimpleBaseline (ResNet + heatmap head)', 'mmpose_pose_resnet')
HRNET_RESNET = Layout('hrnet_pose_resnet', "HRNet repository's pose_resnet_*.pth", 'hrnet_pose_resnet')
HRNET_HRNET = Layout('hrnet_pose_hrnet', "HRNet repository's pose_hrnet (HRNet-W32/W48)", None,
                     note='HRNet itself is not an architecture this repository builds; only its pose_resnet '
                     'files convert (--format hrnet_pose_resnet).')
TORCHVISION = Layout('torchvision_resnet', 'torchvision ImageNet ResNet classifier', 'torchvision_resnet',
                     note='it is an ImageNet backbone, not a pose model: convert it and pass it to train.py '
                     '--model pose_resnet_<depth> --pretrained_backbone.')
PADDLE_IMAGENET = Layout('paddle_imagenet_resnet', 'Paddle ImageNet ResNet (paddle.vision.models.resnet*)', None,
                         note='it is an ImageNet backbone, not a pose model: pass it as it is to train.py '
                         '--model pose_resnet_<depth> --pretrained_backbone.')
STACKED_HOURGLASS_PADDLE = Layout(
    'stacked_hourglass_paddle', 'BangwenHe/stacked-hourglass.paddle', None,
    note='a different architecture (a learned 1x1 projection on every residual skip and a 1x1 conv at the '
    'hourglass bottom), so no renaming maps it onto our hourglass; that project published no weights.')
RESUMABLE = Layout('resumable_checkpoint', "this repository's resumable checkpoint (train.py checkpoint.pdparams)",
                   None)


def strip_wrappers(keys: Iterable[str]) -> List[str]:
    """Keys without the wrapper prefixes every key shares (model., module.), as convert_weights strips them."""
    keys = list(keys)
    while keys:
        prefix = next((p for p in WRAPPER_PREFIXES if all(k.startswith(p) for k in keys)), None)
        if prefix is None:
            break
        keys = [k[len(prefix):] for k in keys]
    return keys


def detect_layout(keys: Iterable[str]) -> Optional[Layout]:
    """The known layout whose names `keys` use (wrapper prefixes allowed), or None."""
    keys = strip_wrappers(keys)
    key_set = set(keys)

    def starts(*prefixes):
        return any(k.startswith(prefixes) for k in keys)

    if is_paddlepose(keys):
        return PADDLEPOSE
    if 'conv2d_0.w_0' in key_set or 'conv2d_transpose_0.w_0' in key_set:
        return FLUID
    if starts('resnet_v1_') or 'out/weights' in key_set:
        return TF
    if starts('down_sample.0.') or any('.hourglass_module.' in k for k in keys):
        return STACKED_HOURGLASS_PADDLE
    if 'pre.0.conv.weight' in key_set or starts('hgs.0.0.'):
        return PRINCETON
    if starts('backbone.hourglass_modules.'):
        return MMPOSE_HOURGLASS
    if starts('backbone.layer1.') and starts('keypoint_head.', 'head.'):
        return MMPOSE_RESNET
    if starts('stage2.', 'transition1.'):
        return HRNET_HRNET
    if 'deconv_layers.0.weight' in key_set and 'bn1.running_mean' in key_set:
        return HRNET_RESNET
    if 'fc.weight' in key_set and 'bn1.running_mean' in key_set:
        return TORCHVISION
    if 'fc.weight' in key_set and 'bn1._mean' in key_set:
        return PADDLE_IMAGENET
    return None


def convert_command(fmt: str, source: str) -> str:
    return (f'python tools/convert_weights.py --format {fmt} --source {source} '
            f'--output weights/{fmt}/model.pdparams')


def explain(keys: Iterable[str], source: str, layout: Optional[Layout] = None) -> str:
    """One paragraph for an error message: which layout the keys look like and what to run, or that the
    layout is unknown, with a few of its keys."""
    keys = list(keys)
    layout = layout or detect_layout(keys)
    if layout is None:
        shown = ', '.join(sorted(keys)[:6]) + (f' ... ({len(keys)} keys)' if len(keys) > 6 else '')
        return (f'Its keys match no layout this repository knows ({shown}). Known: this repository\'s '
                '.pdparams (train.py, tools/convert_weights.py), PaddlePose hourglass52 .pdparams and Fluid '
                'pose_resnet directories (read as they are), and the formats of tools/convert_weights.py '
                '(princeton-vl, MMPose, HRNet pose_resnet, torchvision, TF-SimpleHumanPose). Print a PyTorch '
                'file\'s keys with: python tools/convert_weights.py --format mmpose_hourglass --source FILE --list')
    text = f'Its keys are those of {layout.project}.'
    if layout.direct:
        text += (f' val.py, infer.py and export.py read it as it is (with that project\'s conventions); or '
                 f'convert it once: {convert_command(layout.fmt, source)}')
    elif layout.fmt:
        text += f' Convert it first: {convert_command(layout.fmt, source)}'
        if layout.note:
            text += f' ({layout.note})'
    elif layout.note:
        text += f' {layout.note[0].upper()}{layout.note[1:]}'
    return text

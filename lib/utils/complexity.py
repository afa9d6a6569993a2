"""Model size and cost: trainable parameters, and multiply-adds of one forward pass counted with
forward hooks, by the rules of mmcv's `get_model_complexity_info` (mmcv/cnn/utils/flops_counter.py),
which is what MMPose's model zoo reports (it calls the number "GFLOPs"; one multiply-add = one).

Per image, for each call of a layer (a layer used twice counts twice):
- Conv2D: out_h * out_w * C_out * (C_in / groups) * kh * kw, plus C_out * out_h * out_w if it has a bias.
- Conv2DTranspose: in_h * in_w * C_in * (C_out / groups) * kh * kw (each input pixel meets each kernel tap
  once; paddle.flops counts it on the output grid, 4x too many for stride 2), plus C_out * out_h * out_w
  for a bias (mmcv writes out_h * out_h there, a typo that no model here meets: our deconvs have no bias).
- Linear: rows * in_features * out_features (mmcv ignores the bias).
- BatchNorm / GroupNorm / LayerNorm / InstanceNorm: 1 per input element, 2 with an affine weight.
- ReLU-like activations: 1 per output element. Pooling: 1 per input element.
- Not counted, as in mmcv: additions, concatenations and functional ops that are not layers. One
  difference: mmcv also counts nn.Upsample's output elements, but our nearest x2 upsampling is the function
  `upsample_nearest_2x`, invisible to hooks (0.0014 G of hourglass52's 28.67 G at 256x256).

With these rules (H x W): pose_resnet_50 at 256x192 -> 5.461 G (MMPose lists 5.46), hourglass52 at
256x256 -> 28.664 G (28.67), at 384x384 -> 64.495 G (64.5). Convolutions alone give 5.426 / 28.619 / 64.393,
0.6% / 0.2% / 0.2% under the listed numbers.
`paddle.flops` is not used: it crashes with numpy 2 and overcounts transposed convolutions.
"""
from typing import Callable, Dict, Sequence

import numpy as np
import paddle
import paddle.nn as nn


def count_parameters(model: nn.Layer) -> int:
    """Number of trainable parameter elements (BN running statistics are buffers, not counted)."""
    return sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)


def _numel(tensor: paddle.Tensor) -> int:
    return int(np.prod(tensor.shape))


def _conv_macs(layer: nn.Conv2D, inputs, output) -> int:
    c_out, c_in_per_group, *kernel = layer.weight.shape             # [C_out, C_in/groups, kh, kw]
    out_pixels = _numel(output) // (output.shape[0] * c_out)
    bias = 0 if layer.bias is None else c_out * out_pixels
    return out_pixels * c_out * c_in_per_group * int(np.prod(kernel)) + bias


def _deconv_macs(layer: nn.Conv2DTranspose, inputs, output) -> int:
    c_in, c_out_per_group, *kernel = layer.weight.shape             # [C_in, C_out/groups, kh, kw]
    in_pixels = _numel(inputs[0]) // (inputs[0].shape[0] * c_in)
    bias = 0 if layer.bias is None else _numel(output) // output.shape[0]
    return in_pixels * c_in * c_out_per_group * int(np.prod(kernel)) + bias


def _linear_macs(layer: nn.Linear, inputs, output) -> int:
    out_features = layer.weight.shape[1]                            # Paddle stores [in, out]
    return _numel(inputs[0]) // inputs[0].shape[0] * out_features


def _norm_ops(layer: nn.Layer, inputs, output) -> int:
    affine = getattr(layer, 'weight', None) is not None
    return _numel(inputs[0]) // inputs[0].shape[0] * (2 if affine else 1)


def _output_elements(layer: nn.Layer, inputs, output) -> int:
    return _numel(output) // output.shape[0]


def _input_elements(layer: nn.Layer, inputs, output) -> int:
    return _numel(inputs[0]) // inputs[0].shape[0]


# Exact layer types, as mmcv's get_modules_mapping (a subclass is not counted twice or by mistake).
COUNTERS: Dict[type, Callable[..., int]] = {
    nn.Conv1D: _conv_macs, nn.Conv2D: _conv_macs, nn.Conv3D: _conv_macs,
    nn.Conv1DTranspose: _deconv_macs, nn.Conv2DTranspose: _deconv_macs, nn.Conv3DTranspose: _deconv_macs,
    nn.Linear: _linear_macs,
    nn.BatchNorm1D: _norm_ops, nn.BatchNorm2D: _norm_ops, nn.BatchNorm3D: _norm_ops, nn.BatchNorm: _norm_ops,
    nn.SyncBatchNorm: _norm_ops, nn.GroupNorm: _norm_ops, nn.LayerNorm: _norm_ops,
    nn.InstanceNorm1D: _norm_ops, nn.InstanceNorm2D: _norm_ops, nn.InstanceNorm3D: _norm_ops,
    nn.ReLU: _output_elements, nn.ReLU6: _output_elements, nn.LeakyReLU: _output_elements,
    nn.PReLU: _output_elements, nn.ELU: _output_elements,
    nn.MaxPool1D: _input_elements, nn.MaxPool2D: _input_elements, nn.MaxPool3D: _input_elements,
    nn.AvgPool1D: _input_elements, nn.AvgPool2D: _input_elements, nn.AvgPool3D: _input_elements,
    nn.AdaptiveAvgPool1D: _input_elements, nn.AdaptiveAvgPool2D: _input_elements,
    nn.AdaptiveMaxPool1D: _input_elements, nn.AdaptiveMaxPool2D: _input_elements,
}


def counted_type(layer: nn.Layer) -> type:
    """The layer's exact type, or the Paddle layer a project subclass declares it computes as (COUNTED_AS, e.g.
    lib.models.layers.BatchNorm2D, which only changes how the running variance is updated)."""
    return getattr(type(layer), 'COUNTED_AS', type(layer))


def count_macs(model: nn.Layer, input_wh: Sequence[int]) -> int:
    """Multiply-adds of one forward pass of a [1, 3, H, W] image, input_wh = (W, H), by mmcv's rules
    (module docstring). Runs the model once in eval mode under no_grad and restores its mode."""
    width, height = input_wh
    total = [0]

    def hook(layer, inputs, output):
        total[0] += COUNTERS[counted_type(layer)](layer, inputs, output)

    handles = [layer.register_forward_post_hook(hook) for layer in model.sublayers(include_self=True)
               if counted_type(layer) in COUNTERS]
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            model(paddle.zeros([1, 3, height, width]))
    finally:
        for handle in handles:
            handle.remove()
        if was_training:
            model.train()
    return total[0]

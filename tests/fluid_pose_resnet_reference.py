r"""Write a Fluid SimpleBaselines persistables directory with Paddle's own static-graph saving.

    FLAGS_enable_pir_api=0 python tests/fluid_pose_resnet_reference.py OUT_DIR NUM_JOINTS INPUT.npy OUTPUT.npy

Builds PaddleCV human_pose_estimation's lib/pose_resnet.py ResNet(layers=50) network in the old static
graph, layer by layer in its order (conv_bn_layer = conv2d without bias + batch_norm; bottleneck conv0 1x1,
conv1 3x3 with the stride, conv2 1x1, then the shortcut; three conv2d_transpose + batch_norm; the final
1x1 conv2d with bias), so that Paddle names every variable as Fluid did (conv2d_k.w_0, batch_norm_k.w_0 ...).
Adds Adam with a piecewise-decay learning rate, as its train.py, so the optimizer's persistables are
there too. Fills every parameter and BatchNorm statistic with random values, saves the persistables one
file per variable (paddle.static.save_vars, Fluid's save_persistables), and writes the test program's
heatmaps for INPUT.npy [N, 3, H, W] to OUTPUT.npy.

Paddle 3.x builds these layers only in the old IR: run with FLAGS_enable_pir_api=0 (Paddle 2.6 needs nothing).
"""
import os
import sys

import numpy as np
import paddle


def conv_bn_layer(x, num_filters, filter_size, stride=1, act=None):
    conv = paddle.static.nn.conv2d(x, num_filters, filter_size, stride=stride, padding=(filter_size - 1) // 2,
                                   bias_attr=False)
    return paddle.static.nn.batch_norm(conv, act=act, momentum=0.9)


def bottleneck_block(x, num_filters, stride):
    conv0 = conv_bn_layer(x, num_filters, 1, act='relu')
    conv1 = conv_bn_layer(conv0, num_filters, 3, stride, act='relu')
    conv2 = conv_bn_layer(conv1, num_filters * 4, 1)
    if x.shape[1] != num_filters * 4 or stride != 1:
        short = conv_bn_layer(x, num_filters * 4, 1, stride)
    else:
        short = x
    return paddle.nn.functional.relu(paddle.add(short, conv2))


def pose_resnet50(image, num_joints):
    conv = conv_bn_layer(image, 64, 7, 2, act='relu')
    conv = paddle.nn.functional.max_pool2d(conv, 3, 2, 1)
    for block, (count, filters) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
        for i in range(count):
            conv = bottleneck_block(conv, filters, 2 if i == 0 and block != 0 else 1)
    for _ in range(3):
        conv = paddle.static.nn.conv2d_transpose(conv, 256, filter_size=4, padding=1, stride=2, bias_attr=False)
        conv = paddle.static.nn.batch_norm(conv, act='relu', momentum=0.9)
    return paddle.static.nn.conv2d(conv, num_joints, 1)


def main(out_dir, num_joints, input_path, output_path):
    paddle.enable_static()
    x = np.load(input_path)
    main_prog, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main_prog, startup):
        image = paddle.static.data('image', [None, 3, x.shape[2], x.shape[3]], 'float32')
        heatmaps = pose_resnet50(image, num_joints)
        test_prog = main_prog.clone(for_test=True)
        lr = paddle.optimizer.lr.PiecewiseDecay([10, 20], [1e-3, 1e-4, 1e-5])
        paddle.optimizer.Adam(lr).minimize(paddle.mean(heatmaps))
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)

    rng = np.random.default_rng(7)
    scope = paddle.static.global_scope()
    for var in main_prog.list_vars():
        if not var.persistable or scope.find_var(var.name) is None or 'moment' in var.name or 'pow_acc' in var.name:
            continue
        tensor = scope.find_var(var.name).get_tensor()
        shape = np.array(tensor).shape
        if not var.name.startswith(('conv2d', 'batch_norm')):
            continue
        if var.name.endswith('.w_1'):       # moving mean
            value = rng.normal(0.0, 0.2, shape)
        elif var.name.endswith('.w_2'):     # moving variance
            value = rng.uniform(0.5, 2.0, shape)
        elif var.name.startswith('batch_norm') and var.name.endswith('.w_0'):
            value = rng.uniform(0.5, 1.5, shape)
        elif var.name.endswith('.b_0'):
            value = rng.normal(0.0, 0.1, shape)
        else:                               # conv [out, in, k, k] / conv2d_transpose [in, out, k, k]
            fan_in = int(np.prod(shape[1:])) if var.name.startswith('conv2d_') and 'transpose' not in var.name \
                else shape[0] * shape[2] * shape[3] // 4
            value = rng.normal(0.0, (2.0 / fan_in) ** 0.5, shape)
        tensor.set(value.astype(np.float32), paddle.CPUPlace())

    save_vars = getattr(paddle.static, 'save_vars', None) or paddle.static.io.save_vars
    save_vars(exe, out_dir, main_prog, predicate=lambda v: v.persistable and v.name not in ('feed', 'fetch'))
    (out,) = exe.run(test_prog, feed={'image': x}, fetch_list=[heatmaps])
    np.save(output_path, np.asarray(out))


if __name__ == '__main__':
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
    print('wrote', sorted(os.listdir(sys.argv[1]))[:3], len(os.listdir(sys.argv[1])), 'files')

r"""Write a TF-SimpleHumanPose checkpoint with TensorFlow, and the heatmaps its network computes.

    python tests/tf_simplehumanpose_reference.py PREFIX NUM_JOINTS INPUT.npy OUTPUT.npy

Creates the variables of mks0601/TF-SimpleHumanPose's resnet50 + head_net under their TF-slim names and
TF layouts (lib/nets/basemodel.py, resnet_v1.py, resnet_utils.py, main/model.py): resnet_v1_50/conv1,
block{1..4}/unit_{u}/bottleneck_v1/{conv1,conv2,conv3,shortcut}/weights with /BatchNorm/{gamma, beta,
moving_mean, moving_variance}, up{1,2,3}/weights [4, 4, out, in] + BatchNorm, out/{weights, biases}.
Fills them with random values (some of up3's moving variances tiny, so that the BatchNorm epsilon matters), runs
the network in NHWC as the reference does (conv2d_same, tf.pad + VALID max-pool, stride on unit_1's 3x3,
conv2d_transpose SAME, BatchNorm epsilon 1e-9, no activation on the output, which is x255 heatmaps), adds
Adam and global_step as its trainer, and saves all global variables with tf.compat.v1.train.Saver
(checkpoint V2, as lib/tfflat/saver.py). INPUT.npy is [N, H, W, 3]; OUTPUT.npy gets [N, h, w, K].
"""
import sys

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1
EPSILON = 1e-9
UNITS = (3, 4, 6, 3)


class Builder:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def weights(self, name, shape, fan_in):
        return tf1.Variable(self.rng.normal(0, (2.0 / fan_in) ** 0.5, shape).astype(np.float32), name=name)

    def bn(self, x, scope, tiny=False):
        c = int(x.shape[-1])
        variance = self.rng.uniform(0.5, 2.0, c)
        if tiny:   # every 7th variance tiny, so that epsilon 1e-9 vs 1e-5 shows in the output
            variance[:: 7] = self.rng.uniform(1e-7, 1e-6, len(variance[:: 7]))
        gamma = tf1.Variable(self.rng.uniform(0.5, 1.5, c).astype(np.float32), name=f'{scope}/BatchNorm/gamma')
        beta = tf1.Variable(self.rng.normal(0, 0.2, c).astype(np.float32), name=f'{scope}/BatchNorm/beta')
        mean = tf1.Variable(self.rng.normal(0, 0.2, c).astype(np.float32), name=f'{scope}/BatchNorm/moving_mean',
                            trainable=False)
        var = tf1.Variable(variance.astype(np.float32), name=f'{scope}/BatchNorm/moving_variance', trainable=False)
        return tf.nn.batch_normalization(x, mean, var, beta, gamma, EPSILON)

    def conv_bn(self, x, scope, out, k, stride=1, relu=True):
        """slim conv2d (SAME) or resnet_utils.conv2d_same (explicit symmetric pad + VALID for stride > 1)."""
        cin = int(x.shape[-1])
        w = self.weights(f'{scope}/weights', (k, k, cin, out), k * k * cin)
        if stride == 1 or k == 1:
            y = tf.nn.conv2d(x, w, stride, 'SAME')
        else:
            pad = (k - 1) // 2, k - 1 - (k - 1) // 2
            y = tf.nn.conv2d(tf.pad(x, [[0, 0], pad, pad, [0, 0]]), w, stride, 'VALID')
        y = self.bn(y, scope)
        return tf.nn.relu(y) if relu else y

    def bottleneck(self, x, scope, depth, planes, stride):
        if int(x.shape[-1]) == depth:
            shortcut = x if stride == 1 else tf.nn.max_pool2d(x, 1, stride, 'SAME')
        else:
            shortcut = self.conv_bn(x, f'{scope}/shortcut', depth, 1, stride, relu=False)
        y = self.conv_bn(x, f'{scope}/conv1', planes, 1)
        y = self.conv_bn(y, f'{scope}/conv2', planes, 3, stride)
        y = self.conv_bn(y, f'{scope}/conv3', depth, 1, relu=False)
        return tf.nn.relu(shortcut + y)

    def network(self, image, num_joints):
        x = self.conv_bn(image, 'resnet_v1_50/conv1', 64, 7, 2)
        x = tf.nn.max_pool2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), 3, 2, 'VALID')
        for b, units in enumerate(UNITS, start=1):
            planes = 64 * 2 ** (b - 1)
            for u in range(1, units + 1):
                stride = 2 if u == 1 and b > 1 else 1
                x = self.bottleneck(x, f'resnet_v1_50/block{b}/unit_{u}/bottleneck_v1', planes * 4, planes, stride)
        for i in (1, 2, 3):
            cin, n, h, w = int(x.shape[-1]), tf.shape(x)[0], int(x.shape[1]), int(x.shape[2])
            kernel = self.weights(f'up{i}/weights', (4, 4, 256, cin), 4 * 4 * cin // 4)
            x = tf.nn.conv2d_transpose(x, kernel, tf.stack([n, 2 * h, 2 * w, 256]), 2, 'SAME')
            x = tf.nn.relu(self.bn(x, f'up{i}', tiny=i == 3))
        kernel = self.weights('out/weights', (1, 1, 256, num_joints), 256)
        bias = tf1.Variable(self.rng.normal(0, 0.1, num_joints).astype(np.float32), name='out/biases')
        return tf.nn.conv2d(x, kernel, 1, 'SAME') + bias


def main(prefix, num_joints, input_path, output_path):
    tf1.disable_eager_execution()
    x = np.load(input_path)
    image = tf1.placeholder(tf.float32, [None, *x.shape[1:]])
    heatmaps = Builder(11).network(image, num_joints)
    step = tf1.train.get_or_create_global_step()
    train = tf1.train.AdamOptimizer(1e-3).minimize(tf.reduce_mean(heatmaps), global_step=step)
    del train
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        np.save(output_path, sess.run(heatmaps, {image: x}))
        tf1.train.Saver(tf1.global_variables()).save(sess, prefix)


if __name__ == '__main__':
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])

"""The PyTorch side of the comparisons with the references: princeton-vl's PoseNet and HRNet's JointsMSELoss, written
as those repositories write them (module names and nesting, hence the state-dict keys, and the forward), used by the
converter tests, the training-parity tests and benchmarks/learning_parity.py. Needs torch (CPU): pip install torch."""
import torch

tnn = torch.nn


# --- princeton-vl's PoseNet, re-implemented from models/layers.py and models/posenet.py: same module
# --- names and nesting (hence the same state-dict keys), same forward, nothing else.

class Conv(tnn.Module):
    def __init__(self, inp_dim, out_dim, kernel_size=3, stride=1, bn=False, relu=True):
        super().__init__()
        self.conv = tnn.Conv2d(inp_dim, out_dim, kernel_size, stride, padding=(kernel_size - 1) // 2, bias=True)
        self.bn = tnn.BatchNorm2d(out_dim) if bn else None
        self.relu = tnn.ReLU() if relu else None

    def forward(self, x):
        x = self.conv(x)
        x = x if self.bn is None else self.bn(x)
        return x if self.relu is None else self.relu(x)


class Residual(tnn.Module):
    def __init__(self, inp_dim, out_dim):
        super().__init__()
        mid = out_dim // 2
        self.relu = tnn.ReLU()
        self.bn1, self.conv1 = tnn.BatchNorm2d(inp_dim), Conv(inp_dim, mid, 1, relu=False)
        self.bn2, self.conv2 = tnn.BatchNorm2d(mid), Conv(mid, mid, 3, relu=False)
        self.bn3, self.conv3 = tnn.BatchNorm2d(mid), Conv(mid, out_dim, 1, relu=False)
        self.skip_layer = Conv(inp_dim, out_dim, 1, relu=False)   # registered even when unused (the quirk)
        self.need_skip = inp_dim != out_dim

    def forward(self, x):
        residual = self.skip_layer(x) if self.need_skip else x
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        return self.conv3(self.relu(self.bn3(out))) + residual


class Hourglass(tnn.Module):
    def __init__(self, n, f, bn=None, increase=0):
        super().__init__()
        nf = f + increase
        self.up1 = Residual(f, f)
        self.pool1 = tnn.MaxPool2d(2, 2)
        self.low1 = Residual(f, nf)
        self.low2 = Hourglass(n - 1, nf, bn=bn) if n > 1 else Residual(nf, nf)
        self.low3 = Residual(nf, f)
        self.up2 = tnn.Upsample(scale_factor=2, mode='nearest')

    def forward(self, x):
        return self.up1(x) + self.up2(self.low3(self.low2(self.low1(self.pool1(x)))))


class Merge(tnn.Module):
    def __init__(self, x_dim, y_dim):
        super().__init__()
        self.conv = Conv(x_dim, y_dim, 1, relu=False, bn=False)

    def forward(self, x):
        return self.conv(x)


class PoseNet(tnn.Module):
    def __init__(self, nstack, inp_dim, oup_dim, bn=False, increase=0, stem=128):
        super().__init__()
        self.nstack = nstack
        # stem: 128 in the reference; the learning-parity benchmark narrows it with inp_dim (inp_dim // 2, as ours)
        self.pre = tnn.Sequential(Conv(3, 64, 7, 2, bn=True, relu=True), Residual(64, stem), tnn.MaxPool2d(2, 2),
                                  Residual(stem, stem), Residual(stem, inp_dim))
        self.hgs = tnn.ModuleList([tnn.Sequential(Hourglass(4, inp_dim, bn, increase)) for _ in range(nstack)])
        self.features = tnn.ModuleList([tnn.Sequential(Residual(inp_dim, inp_dim),
                                                       Conv(inp_dim, inp_dim, 1, bn=True, relu=True))
                                        for _ in range(nstack)])
        self.outs = tnn.ModuleList([Conv(inp_dim, oup_dim, 1, relu=False, bn=False) for _ in range(nstack)])
        self.merge_features = tnn.ModuleList([Merge(inp_dim, inp_dim) for _ in range(nstack - 1)])
        self.merge_preds = tnn.ModuleList([Merge(oup_dim, inp_dim) for _ in range(nstack - 1)])
        # (the reference also holds a HeatmapLoss module here; it has no parameters or buffers)

    def forward(self, imgs):                        # imgs [N, H, W, 3], as the reference takes them
        x = self.pre(imgs.permute(0, 3, 1, 2))
        preds = []
        for i in range(self.nstack):
            feature = self.features[i](self.hgs[i](x))
            preds.append(self.outs[i](feature))
            if i < self.nstack - 1:
                x = x + self.merge_preds[i](preds[-1]) + self.merge_features[i](feature)
        return torch.stack(preds, 1)                # [N, S, K, h, w]


class JointsMSELoss(torch.nn.Module):
    """HRNet lib/core/loss.py, as written there: 0.5 x MSE per joint of the weighted heatmaps, averaged over joints."""

    def __init__(self, use_target_weight=True):
        super().__init__()
        self.criterion = torch.nn.MSELoss(reduction='mean')
        self.use_target_weight = use_target_weight

    def forward(self, output, target, target_weight):
        batch_size, num_joints = output.size(0), output.size(1)
        heatmaps_pred = output.reshape((batch_size, num_joints, -1)).split(1, 1)
        heatmaps_gt = target.reshape((batch_size, num_joints, -1)).split(1, 1)
        loss = 0
        for idx in range(num_joints):
            heatmap_pred, heatmap_gt = heatmaps_pred[idx].squeeze(), heatmaps_gt[idx].squeeze()
            if self.use_target_weight:
                loss += 0.5 * self.criterion(heatmap_pred.mul(target_weight[:, idx]),
                                             heatmap_gt.mul(target_weight[:, idx]))
            else:
                loss += 0.5 * self.criterion(heatmap_pred, heatmap_gt)
        return loss / num_joints

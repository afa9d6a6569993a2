"""The paper's RMSprop: the project's update equals torch.optim.RMSprop's at every gradient scale."""
import numpy as np
import paddle
import pytest

from lib.core.optim import TorchRMSProp, build_optimizer, build_scheduler

torch = pytest.importorskip('torch', reason='torch (CPU) is the reference of the optimizer tests: pip install torch')

SCALES = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)
STEPS = 60


def gradient_sequence(scale: float, size: int = 256, seed: int = 0) -> np.ndarray:
    """[STEPS, size] gradients of one magnitude whose size varies from step to step; each entry keeps its sign,
    so that no displacement cancels to nearly 0 and every entry's relative difference means something."""
    rng = np.random.RandomState(seed)
    sign = np.where(rng.rand(size) < 0.5, -1.0, 1.0)
    return (sign * np.abs(rng.randn(STEPS, size)) * scale).astype('float32')


def paddle_displacement(optimizer_factory, grads: np.ndarray, weight_decay: float = 0.0) -> np.ndarray:
    """w_T - w_0 after feeding `grads` to an optimizer over one parameter that starts at 0 (so the displacement
    is read without cancellation against the starting value)."""
    w = paddle.create_parameter([grads.shape[1]], 'float32', default_initializer=paddle.nn.initializer.Constant(0.0))
    optimizer = optimizer_factory([w], weight_decay)
    for g in grads:
        (w * paddle.to_tensor(g)).sum().backward()      # d/dw = g
        optimizer.step()
        optimizer.clear_grad()
    return w.numpy().astype(np.float64)


def torch_displacement(grads: np.ndarray, weight_decay: float = 0.0) -> np.ndarray:
    w = torch.zeros(grads.shape[1], requires_grad=True)
    optimizer = torch.optim.RMSprop([w], lr=2.5e-4, alpha=0.99, eps=1e-8, momentum=0, weight_decay=weight_decay)
    for g in grads:
        w.grad = torch.from_numpy(g.copy())
        optimizer.step()
    return w.detach().numpy().astype(np.float64)


def project_rmsprop(parameters, weight_decay):
    return build_optimizer('rmsprop', 2.5e-4, parameters, weight_decay)


def paddle_native_rmsprop(parameters, weight_decay):
    return paddle.optimizer.RMSProp(learning_rate=2.5e-4, rho=0.99, epsilon=1e-8, momentum=0.0,
                                    parameters=parameters, weight_decay=weight_decay or None)


def step_ratio(ours: np.ndarray, reference: np.ndarray) -> float:
    """Per-entry ratio |ours| / |reference| farthest from 1."""
    ratios = np.abs(ours) / np.abs(reference)
    return float(ratios[np.argmax(np.abs(ratios - 1))])


@pytest.mark.parametrize('scale', SCALES)
def test_rmsprop_update_equals_pytorch_at_every_gradient_scale(scale):
    grads = gradient_sequence(scale)
    ours, reference = paddle_displacement(project_rmsprop, grads), torch_displacement(grads)
    relative = np.abs(ours - reference) / np.abs(reference)
    print(f'scale {scale:g}: max relative difference {relative.max():.2e}')
    assert relative.max() < 1e-5       # measured below 9e-7 (float32 rounding); the bar is 1e-2


@pytest.mark.parametrize('scale', (1e-3, 1e-6))
def test_rmsprop_weight_decay_is_pytorch_l2(scale):
    grads = gradient_sequence(scale, seed=1)
    w0 = 0.5
    # With w starting at 0 the decay term is 0 at first; start both at w0 instead and compare the displacements.
    w = paddle.create_parameter([grads.shape[1]], 'float32', default_initializer=paddle.nn.initializer.Constant(w0))
    optimizer = project_rmsprop([w], 1e-2)
    t = torch.full((grads.shape[1],), w0, requires_grad=True)
    reference = torch.optim.RMSprop([t], lr=2.5e-4, alpha=0.99, eps=1e-8, weight_decay=1e-2)
    for g in grads:
        (w * paddle.to_tensor(g)).sum().backward()
        optimizer.step()
        optimizer.clear_grad()
        t.grad = torch.from_numpy(g.copy())
        reference.step()
    ours, theirs = w.numpy().astype(np.float64) - w0, t.detach().numpy().astype(np.float64) - w0
    assert np.abs(ours - theirs).max() / np.abs(theirs).max() < 1e-3


def test_paddle_native_rmsprop_is_not_the_paper_update():
    """The reason TorchRMSProp exists: Paddle's eps inside the root shrinks small-gradient steps (SPEC I)."""
    grads = gradient_sequence(1e-5)
    ratio = step_ratio(paddle_displacement(paddle_native_rmsprop, grads), torch_displacement(grads))
    assert ratio < 0.1


def test_rmsprop_state_round_trips_and_keeps_its_bias_corrections_off():
    w = paddle.create_parameter([8], 'float32')
    optimizer = TorchRMSProp(1e-3, parameters=[w])
    (w * 2.0).sum().backward()
    optimizer.step()
    state = optimizer.state_dict()
    pows = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in state.items() if 'pow_acc' in k}
    assert pows and all(value == 0.0 for value in pows.values()), pows


def test_scheduler_drives_the_rmsprop_learning_rate():
    w = paddle.create_parameter([4], 'float32')
    scheduler = build_scheduler(2.5e-4, [1], 0.1, iters_per_epoch=2)
    optimizer = build_optimizer('rmsprop', scheduler, [w])
    seen = []
    for _ in range(3):
        seen.append(optimizer.get_lr())
        scheduler.step()
    assert seen == pytest.approx([2.5e-4, 2.5e-4, 2.5e-5])

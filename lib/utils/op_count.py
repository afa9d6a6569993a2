"""Count the operators Paddle launches while a function runs (its profiler, CPU tracer): a device-independent
measure of launch overhead, used where GPU time cannot be measured; and the calls that synchronise the host with
the device: reads of a tensor's value, and copies of host data to the device."""
import contextlib
from collections import Counter
from typing import Callable

import paddle
from paddle.profiler import Profiler, ProfilerTarget
from paddle.profiler.profiler_statistic import TracerEventType


HOST_READS = ('numpy', '__array__', 'item', 'tolist', '__float__', '__bool__', '__int__', '__index__')
# Host data to the device: paddle.to_tensor and Tensor.set_value(ndarray) end in SetTensorFromPyArray, a
# cudaMemcpy from pageable memory on the legacy stream (paddle/fluid/pybind/tensor_py.h, GpuMemcpySync), which waits
# for everything queued on Paddle's blocking compute stream; paddle.assign of a list or ndarray copies the same way.
HOST_TO_DEVICE = ('to_tensor', 'set_value', 'assign')


def operators_launched(fn: Callable[[], object]) -> Counter:
    """Operator name -> number of calls while fn() runs (outermost operators only: an operator's inner kernels
    are not counted again)."""
    profiler = Profiler(targets=[ProfilerTarget.CPU], on_trace_ready=lambda prof: None)
    profiler.start()
    try:
        fn()
    finally:
        profiler.stop()
    counts = Counter()

    def walk(node):
        if node.type == TracerEventType.Operator:
            counts[node.name.replace(' dygraph', '')] += 1
            return
        for child in node.children_node:
            walk(child)
    for roots in profiler.profiler_result.get_data().values():
        for root in (roots if isinstance(roots, list) else [roots]):
            walk(root)
    return counts


@contextlib.contextmanager
def host_to_device():
    """Count the calls that copy host data to the device (HOST_TO_DEVICE: paddle.to_tensor, Tensor.set_value and
    paddle.assign of host data); on a GPU each one waits for the device. Yields the list of names called. A tensor
    made on the CPU place (to_tensor(..., place=CPUPlace())) involves no device and is not counted."""
    calls = []
    originals = {'to_tensor': paddle.to_tensor, 'assign': paddle.assign, 'set_value': paddle.Tensor.set_value}

    def to_tensor(data, *args, **kwargs):
        place = kwargs.get('place', args[1] if len(args) > 1 else None)
        if not (place is not None and isinstance(place, paddle.CPUPlace)):
            calls.append('to_tensor')
        return originals['to_tensor'](data, *args, **kwargs)

    def assign(x, *args, **kwargs):
        if not isinstance(x, paddle.Tensor):
            calls.append('assign')
        return originals['assign'](x, *args, **kwargs)

    def set_value(self, value):
        if not isinstance(value, paddle.Tensor):
            calls.append('set_value')
        return originals['set_value'](self, value)
    paddle.to_tensor, paddle.assign, paddle.Tensor.set_value = to_tensor, assign, set_value
    try:
        yield calls
    finally:
        paddle.to_tensor, paddle.assign = originals['to_tensor'], originals['assign']
        paddle.Tensor.set_value = originals['set_value']


@contextlib.contextmanager
def host_syncs():
    """Both kinds at once: yields {'reads': [...], 'copies': [...]}, filled as they happen."""
    with host_reads() as reads, host_to_device() as copies:
        yield {'reads': reads, 'copies': copies}


@contextlib.contextmanager
def host_reads():
    """Count the calls that bring a Tensor's value to Python (numpy, item, float, bool, ...): on a GPU each one
    waits for the device. Yields the list of method names called, filled as they happen."""
    calls = []
    originals = {name: getattr(paddle.Tensor, name) for name in HOST_READS if hasattr(paddle.Tensor, name)}

    def counting(name, original):
        def wrapped(self, *args, **kwargs):
            calls.append(name)
            return original(self, *args, **kwargs)
        return wrapped
    for name, original in originals.items():
        setattr(paddle.Tensor, name, counting(name, original))
    try:
        yield calls
    finally:
        for name, original in originals.items():
            setattr(paddle.Tensor, name, original)

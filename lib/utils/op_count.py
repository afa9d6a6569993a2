"""Count the operators Paddle launches while a function runs (its profiler, CPU tracer): a device-independent
measure of launch overhead, used where GPU time cannot be measured."""
import contextlib
from collections import Counter
from typing import Callable

import paddle
from paddle.profiler import Profiler, ProfilerTarget
from paddle.profiler.profiler_statistic import TracerEventType


HOST_READS = ('numpy', '__array__', 'item', 'tolist', '__float__', '__bool__', '__int__', '__index__')


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

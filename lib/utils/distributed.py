"""Data-parallel training on Paddle's collective engine, started by `python -m paddle.distributed.launch`.

paddle.DataParallel averages the gradients (NCCL on GPUs, gloo on CPUs: the same code). What it does
not do is done here: per-rank decisions (a stop signal, a non-finite loss) are agreed by all ranks so
none waits forever for the others, and BatchNorm statistics, which each rank gathers from its own
share of the data, are averaged so that every rank validates and saves the same model.
"""
from typing import List, Sequence, Tuple

import paddle
import paddle.distributed as dist
from paddle.nn.layer.norm import _BatchNormBase


def init_distributed() -> Tuple[int, int]:
    """(rank, world size); initialises the process group when launched with several processes."""
    if paddle.distributed.ParallelEnv().world_size > 1 and not dist.is_initialized():
        dist.init_parallel_env()
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)



def agree(values: paddle.Tensor) -> List[float]:
    """Sum a small per-rank tensor of votes and values over all ranks (one tiny all-reduce), so that every rank
    takes the same decision at the same iteration: stop on a signal, skip a step whose loss is not finite. The
    result is read to the host once: the step's only synchronisation."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(values)
    return values.numpy().tolist()


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is true on any (one tiny all-reduce), e.g. a stop signal seen by one."""
    return agree(paddle.to_tensor([float(flag)], dtype='float32'))[0] > 0


def running_statistics(model: paddle.nn.Layer) -> List[paddle.Tensor]:
    """The live tensors of the floating-point state that training changes without gradients: every BatchNorm's
    _mean and _variance (Paddle keeps them as parameters with stop_gradient set), and floating-point buffers.

    Collected from the layers, never through state_dict(): under `paddle.amp.decorate(level='O2',
    save_dtype='float32')` every layer carries a StateDictHook (python/paddle/amp/auto_cast.py, 2.6 and 3.x) that
    replaces each floating-point entry of state_dict() by a cast copy, so a snapshot, a restore or an average taken
    through it would act on copies (and copy the whole model)."""
    found, seen = [], set()
    for layer in model.sublayers(include_self=True):
        tensors = [layer._mean, layer._variance] if isinstance(layer, _BatchNormBase) else []
        tensors += [t for t in layer._buffers.values() if t is not None]
        for tensor in tensors:
            if id(tensor) not in seen and paddle.is_floating_point(tensor):
                seen.add(id(tensor))
                found.append(tensor)
    return found


def average_running_statistics(model: paddle.nn.Layer, num_ranks: int) -> None:
    """Average BatchNorm statistics over ranks, so that every rank validates and saves the same model
    (each rank's statistics come from its own share of the batches)."""
    for tensor in running_statistics(model):
        total = tensor.astype('float32')
        dist.all_reduce(total)
        paddle.assign((total / num_ranks).astype(tensor.dtype), output=tensor)


def max_difference_across_ranks(tensors: Sequence[paddle.Tensor]) -> float:
    """Largest |difference| of these tensors between rank 0 and any other rank."""
    flat = paddle.concat([t.astype('float32').flatten() for t in tensors])
    gathered: List[paddle.Tensor] = []
    dist.all_gather(gathered, flat)
    return max(float((gathered[0] - other).abs().max()) for other in gathered[1:]) if len(gathered) > 1 else 0.0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()

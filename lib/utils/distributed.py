"""Data-parallel training on Paddle's collective engine, started by `python -m paddle.distributed.launch`.

paddle.DataParallel averages the gradients (NCCL on GPUs, gloo on CPUs: the same code). What it does
not do is done here: per-rank decisions (a stop signal, a non-finite loss) are agreed by all ranks so
none waits forever for the others, and BatchNorm statistics, which each rank gathers from its own
share of the data, are averaged so that every rank validates and saves the same model.
"""
from typing import List, Sequence, Tuple

import paddle
import paddle.distributed as dist


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
    """Floating-point state that training changes without gradients: BatchNorm's _mean and _variance
    (Paddle keeps them as parameters with stop_gradient set, not as buffers)."""
    trainable = {id(p) for p in model.parameters() if not p.stop_gradient}
    return [t for t in model.state_dict().values() if id(t) not in trainable and paddle.is_floating_point(t)]


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

"""Reading a source checkpoint that is not a PyTorch file, as {name: numpy array}.

    pdparams   a Paddle state dict (PaddlePose's model.pdparams), through lib/utils/checkpoint.load_file,
               the one place that unpickles a weights file
    fluid      a Fluid persistables directory, parsed with numpy (fluid_pose_resnet.read_persistables)
    tf         a TF checkpoint prefix, with TensorFlow's own reader (imported only then)

PyTorch files are read by tools/convert_weights.py (torch.load(weights_only=True)).
"""
from typing import Dict

import numpy as np

from lib.convert import fluid_pose_resnet, tf_simplehumanpose
from lib.convert.common import State
from lib.utils.errors import BadValue

READERS = ('pdparams', 'fluid', 'tf')
# paddle.save's table of structured -> parameter names; load_file drops it as paddle.load does.
PADDLE_NAME_TABLE = 'StructuredToParameterName@@'


def as_numpy(state: Dict[str, object]) -> State:
    """Paddle tensors (or arrays) -> numpy arrays."""
    return {k: v.numpy() if hasattr(v, 'numpy') else np.asarray(v) for k, v in state.items()}


def read_pdparams(path: str) -> State:
    from lib.utils.checkpoint import load_file, model_state_from   # imports Paddle
    state = model_state_from(load_file(path), path)
    state = {k: v for k, v in state.items() if k != PADDLE_NAME_TABLE}
    bad = [k for k, v in state.items() if not hasattr(v, 'shape')]
    if bad:
        raise BadValue(f'{path}: entries {bad[:5]} are not tensors; expected a Paddle state dict '
                       '(parameter name -> tensor), as paddle.save(model.state_dict(), ...) writes.')
    return as_numpy(state)


def read_source(reader: str, path: str) -> State:
    if reader == 'pdparams':
        return read_pdparams(path)
    if reader == 'fluid':
        return fluid_pose_resnet.read_persistables(path)
    if reader == 'tf':
        return tf_simplehumanpose.read_checkpoint(path)
    raise BadValue(f'unknown source reader {reader!r}; expected one of {READERS} (torch files are read by '
                   'tools/convert_weights.py).')

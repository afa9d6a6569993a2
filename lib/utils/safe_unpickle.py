"""Reading a file paddle.save wrote without running anything it asks for: a restricted unpickler.

pickle calls any function a file names (os.system, builtins.eval, ...), so paddle.load on a file from the
internet can run code. This unpickler resolves only the globals paddle.save writes for state dicts, optimizer
states and train.py's checkpoints (Paddle 2.6 and 3.x, numpy 1.x and 2.x, pickle protocols 2-4), and then
turns what it read into Tensors exactly as paddle.load does (paddle/framework/io.py: load, _parse_load_result,
io_utils._pack_loaded_dict).
"""
import codecs
import collections
import pickle
from typing import Any, BinaryIO, Dict

import numpy as np

from lib.utils.errors import UserError

# The (module, name) globals paddle.save writes, and nothing else. Tensors are pickled as numpy arrays (state dicts)
# or as tuple((name, array)) (Paddle's reduce_varbase, for nested dicts); protocol 2 spells builtins '__builtin__'
# and pickles bytes as _codecs.encode(text, 'latin1').
ALLOWED_GLOBALS = frozenset({
    ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),   # ndarray
    ('numpy.core.multiarray', 'scalar'), ('numpy._core.multiarray', 'scalar'),   # np.float64(0.5)
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
    ('collections', 'OrderedDict'),
    *{(module, name) for module in ('builtins', '__builtin__')
       for name in ('tuple', 'list', 'dict', 'set', 'frozenset', 'complex', 'bytearray')},
})
NAME_TABLE = 'StructuredToParameterName@@'      # paddle.save's structured -> parameter names; paddle.load drops it
SPLIT_TABLE = 'UnpackBigParamInfor@@'          # protocol 2/3: arrays over 1 GiB saved in slices (io_utils)


class UnsafeWeightsError(UserError, pickle.UnpicklingError):
    """A weights file asks for a global that weights never need: refused before it is called."""


def _latin1_encoder(source: str):
    """_codecs.encode restricted to what protocol 2 uses it for: bytes written as latin-1 text."""
    def encode(text, encoding='latin1', errors='strict'):
        if not isinstance(text, str) or str(encoding).replace('-', '').lower() != 'latin1':
            raise UnsafeWeightsError(f'{source}: refusing _codecs.encode with encoding {encoding!r} in a weights '
                                     'file; paddle.save only uses it for latin1 bytes. Nothing in the file was run.')
        return codecs.encode(text, 'latin1', errors)
    return encode


class WeightsUnpickler(pickle.Unpickler):
    """pickle.Unpickler whose find_class answers only ALLOWED_GLOBALS (and _codecs.encode for latin-1)."""

    def __init__(self, file, source: str):
        super().__init__(file, encoding='latin1')      # as paddle.load, for files Python 2 wrote
        self.source = source

    def find_class(self, module: str, name: str):
        if (module, name) == ('_codecs', 'encode'):
            return _latin1_encoder(self.source)
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafeWeightsError(
                f'{self.source}: refusing to run code from a weights file: it asks for {module}.{name}, and a '
                'Paddle weights file only holds numpy arrays, dicts, lists, numbers and strings. Nothing in the '
                'file was run. Use weights from a source you trust, or re-save them with '
                'paddle.save(model.state_dict(), path) in a process where you have inspected them.')
        return super().find_class(module, name)

    def persistent_load(self, pid):
        raise UnsafeWeightsError(f'{self.source}: persistent id {pid!r} in a weights file; paddle.save writes none.')


def unpickle_weights(file: BinaryIO, source: str) -> Any:
    """The object pickled in the open binary `file`, with only ALLOWED_GLOBALS resolved (source names the
    file in errors)."""
    return WeightsUnpickler(file, source).load()


def _join_slices(obj: Dict[str, Any]) -> Dict[str, Any]:
    """io_utils._pack_loaded_dict: arrays saved in slices (protocol 2/3, over 1 GiB) joined back."""
    if isinstance(obj, dict) and SPLIT_TABLE in obj:
        for key, info in obj.pop(SPLIT_TABLE).items():
            obj[key] = np.concatenate([obj.pop(part) for part in info['slices']]).reshape(info['OriginShape'])
    return obj


def _is_named_array(obj) -> bool:
    """Paddle's reduce_varbase writes a Tensor as (name, array)."""
    return isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str) and isinstance(obj[1], np.ndarray)


def _contains(obj, test) -> bool:
    if test(obj):
        return True
    if type(obj) in (dict, collections.OrderedDict):
        return any(_contains(v, test) for v in obj.values())
    if type(obj) in (list, tuple):
        return any(_contains(v, test) for v in obj)
    return False


def _convert(obj, test, convert):
    """io._parse_every_object: every value passing `test`, inside dicts, lists, tuples and sets, converted."""
    if test(obj):
        return convert(obj)
    if type(obj) in (dict, collections.OrderedDict):
        for key in list(obj):
            obj[key] = _convert(obj[key], test, convert)
        return obj
    if type(obj) in (list, tuple, set):
        return type(obj)(_convert(v, test, convert) for v in obj)
    return obj


def as_paddle_load(obj: Any) -> Any:
    """What paddle.load returns for an unpickled `obj` (return_numpy=False, dygraph mode)."""
    import paddle

    def named_tensor(pair):
        tensor = paddle.to_tensor(pair[1])
        tensor.name = pair[0]
        return tensor

    if isinstance(obj, dict):
        obj = _join_slices(obj)
        if NAME_TABLE in obj:          # a state dict: its arrays become Tensors with their parameter names
            for key, name in obj.pop(NAME_TABLE).items():
                if isinstance(obj.get(key), np.ndarray):
                    obj[key] = paddle.to_tensor(obj[key])
                    if obj[key].name:
                        obj[key].name = name
            return obj
    # Any (name, array) pair makes those pairs the Tensors and leaves bare arrays as numpy; else arrays -> Tensors.
    if _contains(obj, _is_named_array):
        return _convert(obj, _is_named_array, named_tensor)
    return _convert(obj, lambda v: isinstance(v, np.ndarray), paddle.to_tensor)

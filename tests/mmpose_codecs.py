"""MMPose's own codec, geometry and flip-test code, loaded from the installed mmpose wheel for side-by-side tests.

`pip install --no-deps mmpose==1.3.2` (Makefile install-test). The package's __init__ imports mmcv and mmengine,
which do not install here; the files the tests need import only numpy, cv2 and torch, apart from the registry
decorators, mmengine's is_method_overridden / is_seq_of and mmcv's BaseTransform. This module loads those
files by path (importlib) under their own package names with minimal stand-ins for the missing pieces, then
takes the stand-ins out of sys.modules again, so nothing else sees a fake mmpose. load() skips the calling test
with the reason when mmpose is not installed.

    mm = load()
    mm.refine_keypoints_dark(...), mm.MSRAHeatmap(...), mm.UDPHeatmap(...), mm.get_udp_warp_matrix(...),
    mm.TopdownAffine(...), mm.flip_heatmaps(...), ...
"""
import importlib
import importlib.util
import os
import sys
import types
from functools import lru_cache

import pytest

MMPOSE_VERSION = '1.3.2'
INSTALL = f'pip install --no-deps mmpose=={MMPOSE_VERSION}'

# (module name, file inside the mmpose package) in load order
FILES = (
    ('mmpose.codecs.utils', 'codecs/utils/__init__.py'),
    ('mmpose.codecs.base', 'codecs/base.py'),
    ('mmpose.codecs.msra_heatmap', 'codecs/msra_heatmap.py'),
    ('mmpose.codecs.udp_heatmap', 'codecs/udp_heatmap.py'),
    ('mmpose.structures.bbox', 'structures/bbox/__init__.py'),
    ('mmpose.structures.keypoint', 'structures/keypoint/__init__.py'),
    ('mmpose.datasets.transforms.topdown_transforms', 'datasets/transforms/topdown_transforms.py'),
    ('mmpose.models.utils.tta', 'models/utils/tta.py'),
)
# Packages whose real __init__ would import mmcv / mmengine: empty stand-ins that still find their files.
STUB_PACKAGES = ('mmpose', 'mmpose.codecs', 'mmpose.structures', 'mmpose.datasets', 'mmpose.datasets.transforms',
                 'mmpose.models', 'mmpose.models.utils')


class _Registry:
    """Stand-in for an mmengine Registry: register_module() returns the class unchanged."""

    def register_module(self, *args, **kwargs):
        return lambda cls: cls


class _BaseTransform:
    """Stand-in for mmcv.transforms.BaseTransform: calling a transform runs its transform()."""

    def __call__(self, results):
        return self.transform(results)


def _is_seq_of(seq, expected_type, seq_type=None):
    return isinstance(seq, seq_type or (list, tuple)) and all(isinstance(item, expected_type) for item in seq)


def _is_method_overridden(method, base_class, derived_class):
    derived = derived_class if isinstance(derived_class, type) else type(derived_class)
    return getattr(derived, method) is not getattr(base_class, method)


def _stand_ins(root: str) -> dict:
    modules = {}
    for name in STUB_PACKAGES:
        package = types.ModuleType(name)
        package.__path__ = [os.path.join(root, *name.split('.')[1:])]
        modules[name] = package
    registry = types.ModuleType('mmpose.registry')
    registry.KEYPOINT_CODECS = registry.TRANSFORMS = _Registry()
    modules['mmpose.registry'] = registry
    mmengine = types.ModuleType('mmengine')
    mmengine.is_seq_of = _is_seq_of
    mmengine_utils = types.ModuleType('mmengine.utils')
    mmengine_utils.is_method_overridden = _is_method_overridden
    mmengine.utils = mmengine_utils
    mmcv = types.ModuleType('mmcv')
    mmcv_transforms = types.ModuleType('mmcv.transforms')
    mmcv_transforms.BaseTransform = _BaseTransform
    mmcv.transforms = mmcv_transforms
    modules.update({'mmengine': mmengine, 'mmengine.utils': mmengine_utils, 'mmcv': mmcv,
                    'mmcv.transforms': mmcv_transforms})
    return modules


@lru_cache(maxsize=1)
def _load():
    spec = importlib.util.find_spec('mmpose')
    if spec is None or not spec.submodule_search_locations:
        return None
    root = list(spec.submodule_search_locations)[0]
    saved = {name: sys.modules[name] for name in list(sys.modules) if name.split('.')[0] in ('mmpose', 'mmcv', 'mmengine')}
    stand_ins = _stand_ins(root)
    sys.modules.update(stand_ins)
    loaded = {}
    try:
        for name, relative in FILES:
            path = os.path.join(root, relative)
            is_package = relative.endswith('__init__.py')
            module_spec = importlib.util.spec_from_file_location(
                name, path, submodule_search_locations=[os.path.dirname(path)] if is_package else None)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
            loaded[name] = module
    finally:
        for name in [n for n in sys.modules if n.split('.')[0] in ('mmpose', 'mmcv', 'mmengine')]:
            del sys.modules[name]
        sys.modules.update(saved)
    namespace = types.SimpleNamespace(root=root)
    for module in loaded.values():
        for attr in dir(module):
            if not attr.startswith('_'):
                setattr(namespace, attr, getattr(module, attr))
    return namespace


def load():
    """MMPose's functions and classes (a namespace), or skip the test saying how to install them."""
    namespace = _load()
    if namespace is None:
        pytest.skip(f'mmpose is not installed; the side-by-side tests run MMPose {MMPOSE_VERSION}\'s own code: {INSTALL}')
    return namespace

"""lib/config.py: the presets as files under configs/, and the one resolution of a run's configuration."""
import pytest

from lib.config import DATASET_PRESETS, DEFAULT_ROOTS, load_preset, preset_config, preset_names

SIZES = {'mpii': [None, (256, 256), (384, 384), (128, 128)],
         'coco': [None, (192, 256), (288, 384), (384, 384), (256, 256)]}


@pytest.mark.parametrize('dataset', sorted(DATASET_PRESETS))
def test_every_preset_file_equals_the_python_preset(dataset):
    assert preset_names(dataset) == tuple(sorted(DATASET_PRESETS[dataset]))
    for model in preset_names(dataset):
        for size in SIZES[dataset]:
            assert load_preset(dataset, model, size) == preset_config(model, DEFAULT_ROOTS[dataset], dataset, size), \
                (dataset, model, size)

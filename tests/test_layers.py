"""The layering of the repository (tools/check_layers.py): every import points down the floors."""
from tools import check_layers


def test_every_import_points_down_the_floors():
    assert check_layers.violations() == []


def test_the_check_sees_an_import_that_points_up(tmp_path):
    (tmp_path / 'lib' / 'utils').mkdir(parents=True)
    (tmp_path / 'lib' / 'utils' / 'pictures.py').write_text('def f():\n    from lib.datasets.skeletons import MPII\n')
    (tmp_path / 'lib' / 'core').mkdir()
    (tmp_path / 'lib' / 'core' / 'validate.py').write_text('from lib.inference import predictor\nimport lib.utils\n')
    (tmp_path / 'stray.py').write_text('import os\n')
    found = check_layers.violations(str(tmp_path))
    assert len(found) == 3, found
    assert any(line.startswith('lib/core/validate.py:1 lib/core (floor 4) imports lib.inference') for line in found)
    assert any(line.startswith('lib/utils/pictures.py:2 lib/utils (floor 1) imports lib.datasets.skeletons')
               for line in found)
    assert any(line.startswith('stray.py: room stray stands on no floor') for line in found)

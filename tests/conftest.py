"""Fixtures shared by the test files."""
import pytest


@pytest.fixture(scope='module')
def pycocotools():
    return pytest.importorskip('pycocotools.cocoeval', reason='pycocotools is not installed (pip install pycocotools)')

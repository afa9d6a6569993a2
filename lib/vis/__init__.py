"""Pictures: skeletons drawn on images (drawing.py), what the model sees (debug_images.py), training curves
(curves.py) and what a run shows besides its log (monitor.py). Above lib/datasets, whose layouts they draw."""

"""What a run shows besides its log: curves.png after every epoch, VisualDL scalars (--use_vdl) and
debug pictures of training and validation batches (--save_batch_images_* / --save_heatmaps_*)."""
import os
from typing import Sequence

from lib.datasets.skeletons import KeypointLayout
from lib.utils.curves import draw_curves
from lib.utils.debug_images import save_batch_debug
from lib.utils.errors import MissingPackage


class RunMonitor:
    def __init__(self, run_dir: str, data_config, layout: KeypointLayout, debug_images: Sequence[str] = (),
                 use_vdl: bool = False, indicator: str = 'Mean'):
        self.run_dir = run_dir
        self.indicator = indicator      # the validation metric that selects the best model
        self.data_config = data_config
        self.layout = layout
        self.debug_images = tuple(debug_images)
        self.vdl = None
        if use_vdl:
            try:
                from visualdl import LogWriter
            except ImportError:
                raise MissingPackage('--use_vdl needs VisualDL: pip install visualdl (then: visualdl --logdir '
                                     f'{os.path.join(run_dir, "vdl")})') from None
            self.vdl = LogWriter(logdir=os.path.join(run_dir, 'vdl'))

    def on_train_log(self, batch, outputs, state, scalars: dict) -> None:
        """Called at every log line with the current batch and the model's outputs."""
        if self.vdl is not None:
            for name, value in scalars.items():
                self.vdl.add_scalar(f'train/{name}', value, state.global_step)
        if self.debug_images:
            numpy_batch = {k: v.numpy() for k, v in batch.items()}
            save_batch_debug(os.path.join(self.run_dir, 'debug'), f'train_e{state.epoch + 1}_i{state.iteration}',
                             numpy_batch, outputs[-1].astype('float32').numpy(), self.data_config, self.layout,
                             self.debug_images)

    def on_validation_batch(self, batch, heatmaps, epoch: int) -> None:
        """Called with the first validation batch and its flip-tested heatmaps."""
        if self.debug_images:
            numpy_batch = {k: v.numpy() for k, v in batch.items()}
            save_batch_debug(os.path.join(self.run_dir, 'debug'), f'val_e{epoch}', numpy_batch, heatmaps,
                             self.data_config, self.layout, self.debug_images)

    def on_epoch_end(self, history, state) -> None:
        draw_curves(history, os.path.join(self.run_dir, 'curves.png'), self.indicator)
        if self.vdl is not None and history and self.indicator in history[-1]:
            for name, value in history[-1].items():     # every validation metric of the epoch
                if name not in ('epoch', 'loss', 'lr', 'seconds', 'partial') and isinstance(value, float):
                    self.vdl.add_scalar(f'val/{name}', value, state.global_step)

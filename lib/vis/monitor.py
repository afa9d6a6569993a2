"""What a run shows besides its log: curves.png after every epoch (with matplotlib), VisualDL scalars
(--use_vdl) and debug pictures of training and validation batches (--save_batch_images_* / --save_heatmaps_*)."""
import os
from typing import Sequence

from lib.datasets.skeletons import KeypointLayout
from lib.utils.errors import MissingPackage
from lib.vis.curves import curves_unavailable, draw_curves
from lib.vis.debug_images import save_batch_debug


class RunMonitor:
    def __init__(self, run_dir: str, data_config, layout: KeypointLayout, debug_images: Sequence[str] = (),
                 use_vdl: bool = False, indicator: str = 'Mean', logger=None):
        self.run_dir = run_dir
        self.no_curves = curves_unavailable()
        if self.no_curves and logger is not None:
            logger.info('No curves.png for this run: %s.', self.no_curves)
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
        if not self.no_curves:
            draw_curves(history, os.path.join(self.run_dir, 'curves.png'), self.indicator)
        if self.vdl is not None and history and self.indicator in history[-1]:
            for name, value in history[-1].items():     # every validation metric of the epoch
                if name not in ('epoch', 'loss', 'lr', 'seconds', 'partial') and isinstance(value, float):
                    self.vdl.add_scalar(f'val/{name}', value, state.global_step)

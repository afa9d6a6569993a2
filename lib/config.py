"""Run configuration: frozen dataclasses built once in main() and passed down in pieces."""
import dataclasses
from dataclasses import dataclass, field
from typing import Tuple

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DataConfig:
    dataset_root: str
    train_set: str = 'train'
    valid_set: str = 'valid'
    input_wh: Tuple[int, int] = (256, 256)
    heatmap_wh: Tuple[int, int] = (64, 64)
    sigma: float = 2.0
    # HRNet's MPII augmentation (SPEC C.2): scale x clip(N*sf+1, 1-sf, 1+sf), rotation clip(N*rf, +-2rf) w.p. 0.6
    scale_factor: float = 0.25
    rotation_factor: float = 30.0
    rotation_prob: float = 0.6
    flip: bool = True
    color_rgb: bool = True
    mean: Tuple[float, float, float] = IMAGENET_MEAN   # applied to [0, 1] pixels in channel order
    std: Tuple[float, float, float] = IMAGENET_STD


@dataclass(frozen=True)
class ModelConfig:
    name: str = 'hourglass'
    num_stacks: int = 8
    num_features: int = 256
    num_joints: int = 16


@dataclass(frozen=True)
class TestConfig:
    flip_test: bool = True
    shift_heatmap: bool = True      # HRNet TEST.SHIFT_HEATMAP (SPEC D.3)
    post_process: bool = True       # quarter-pixel refinement (SPEC D.2)
    batch_size: int = 32


@dataclass(frozen=True)
class TrainConfig:
    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    test: TestConfig = field(default_factory=TestConfig)
    output_dir: str = 'output'
    epochs: int = 140
    batch_size: int = 16
    optimizer: str = 'rmsprop'
    lr: float = 2.5e-4
    lr_steps: Tuple[int, ...] = (90, 120)
    lr_gamma: float = 0.1
    weight_decay: float = 0.0
    stack_loss: str = 'sum'
    workers: int = 4
    seed: int = 0
    max_iters: int = 0              # 0 = no limit
    eval_every: int = 1
    log_every: int = 50
    device: str = 'auto'


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def from_dict(values: dict) -> TrainConfig:
    """Rebuild a TrainConfig saved with to_dict (tuples come back from JSON as lists)."""
    def build(cls, raw):
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in raw:
                continue
            value = raw[f.name]
            if isinstance(f.type, type) and dataclasses.is_dataclass(f.type):
                value = build(f.type, value)
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[f.name] = value
        return cls(**kwargs)
    return build(TrainConfig, values)

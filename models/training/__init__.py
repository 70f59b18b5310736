"""Training: a seeded torch loop driven by data (optimizer, loss, schedule, what to record).

``check_training`` checks a request on the meta device and plans it; ``Trainer`` runs it in
slices; ``training_script`` exports the same run as a plain torch script.
"""

from models.training.check import TrainPlan, check_training, log_steps
from models.training.config import (
    LossConfig,
    OptimizerConfig,
    RecordConfig,
    ScheduleConfig,
    TrainConfig,
    parse_config,
)
from models.training.options import LOSSES, OPTIMIZERS, SCHEDULES, options_public
from models.training.trainer import SliceResult, Trainer

__all__ = [
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULES",
    "LossConfig",
    "OptimizerConfig",
    "RecordConfig",
    "ScheduleConfig",
    "SliceResult",
    "TrainConfig",
    "TrainPlan",
    "Trainer",
    "check_training",
    "log_steps",
    "options_public",
    "parse_config",
]

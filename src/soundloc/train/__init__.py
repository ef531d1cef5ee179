"""Training: the paper's three learning schemes (Senocak et al., CVPR 2018, Table 1) in one loop.

Read :mod:`soundloc.train.loop` first: :class:`Trainer` takes a batch of image/sound pairs, runs
the model, computes the scheme's objective with :mod:`soundloc.losses` and steps the optimizer.
The rest are its collaborators, each a small module with explicit arguments:

- :mod:`~soundloc.train.config`      - :class:`TrainConfig`, the one source of training defaults
- :mod:`~soundloc.train.loop`        - :class:`Trainer` (batch -> losses -> step) and :func:`train`
- :mod:`~soundloc.train.batches`     - which pairs, in which seeded order, in which batches
- :mod:`~soundloc.train.distributed` - several processes: global negatives, gathering, DDP
- :mod:`~soundloc.train.speed`       - precision and speed switches (mixed precision, compile...)
- :mod:`~soundloc.train.records`     - step and epoch records, callbacks, :class:`StepRecorder`
- :mod:`~soundloc.train.checkpoint`  - checkpoints and exact resume
- :mod:`~soundloc.train.validation`  - predictions and validation in eval mode

The schemes: ``"unsupervised"`` (the triplet loss L_U on every pair, Sec. 3.2; the negative of a
pair is the sound of another pair of its batch), ``"supervised"`` (the attention loss L_S on the
labelled pairs only, Sec. 3.3) and ``"semi_supervised"`` (``L = L_U + λ L_S``, L_S where a ground
truth exists, Sec. 3.3).
"""
from soundloc.constants import SCHEMES
from soundloc.train.batches import EpochOrder, EpochTagged, ShardedEpochOrder, labelled_indices
from soundloc.train.checkpoint import (TrainingInterrupted, checkpoint_model, checkpoint_position, read_checkpoint,
                                       save_checkpoint, save_trained)
from soundloc.train.config import Optimizer, TrainConfig
from soundloc.train.distributed import distributed_world, init_distributed
from soundloc.train.loop import Trainer, make_optimizer, resume_trainer, train
from soundloc.train.records import Callback, History, StepRecorder
from soundloc.train.validation import ValFn, cached_forward, predict_attention

__all__ = ["SCHEMES", "Callback", "EpochOrder", "EpochTagged", "History", "Optimizer", "ShardedEpochOrder",
           "StepRecorder", "TrainConfig", "Trainer", "TrainingInterrupted", "ValFn", "cached_forward", "checkpoint_model",
           "checkpoint_position", "distributed_world", "init_distributed", "labelled_indices", "make_optimizer",
           "predict_attention", "read_checkpoint", "resume_trainer", "save_checkpoint", "save_trained", "train"]

"""Run folders: the files a training run writes, in an order that resumes.

`RunFolder` owns a run folder's file names and the order its files are
committed in; the callbacks that write them (`BestModelCheckpoint`,
`HistoryRecorder`, `RunBackup`, `NaNGuard`) are public, in
`keras_regkit.callbacks`, and every file goes through
`keras_regkit._atomic`.
"""

from keras_regkit.training.runs.folder import RUN_FILES
from keras_regkit.training.runs.folder import RunFolder
from keras_regkit.training.runs.folder import tensorboard_available

__all__ = ["RUN_FILES", "RunFolder", "tensorboard_available"]

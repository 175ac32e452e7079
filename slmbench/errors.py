"""Errors meant to be read by people: each names the thing at fault and what to do."""


class SlmbenchError(Exception):
    """Base class of every error slmbench raises on purpose."""


class UnknownModelError(SlmbenchError):
    """A model name that is neither registered, nor a local directory, nor a hub id."""


class ModelLoadError(SlmbenchError):
    """A model that exists by name but cannot be loaded (not cached, not a model directory...)."""


class AdapterError(SlmbenchError):
    """A directory that is not a PEFT adapter, or one trained on another base model."""


class TaskError(SlmbenchError):
    """A task name that finds nothing, a task module whose TASK is not a valid task, or a task whose
    metrics read a stat its judge does not report."""


class DatasetError(SlmbenchError):
    """A malformed data file; the message reads ``file:line: field: reason``."""


class TrainingConfigError(SlmbenchError):
    """A training setting or input that cannot work, caught before (or instead of) a wasted run."""


class SlmbenchWarning(UserWarning):
    """Something skipped or degraded (a damaged adapter, an unwritable cache); the run goes on."""


class OutputPathError(SlmbenchError):
    """A path to write results to that cannot take them (a directory, under a file, not writable)."""

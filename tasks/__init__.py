"""The task registry: a plain dict, and listing it costs one import.

Adding a task touches one new module here, one entry below, and one folder in ``fixtures/``.
"""

from slmbench.tasks import bioqa, iris, it_entities, products, recipes
from slmbench.tasks.core import Sample, SampleScore, Task

TASKS: dict[str, Task] = {module.TASK.name: module.TASK for module in (it_entities, recipes, iris, products, bioqa)}

__all__ = ["TASKS", "Sample", "SampleScore", "Task"]

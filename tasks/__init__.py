"""The task registry: the built-in tasks in a plain dict, and `resolve_task` for every other name.

Adding a built-in task touches one new module here, one entry below, and one folder in
``fixtures/``. A task of your own needs none of that: name its module or file wherever a task
is asked for, or register it from your package (see `slmbench.tasks.registry` and the README).
"""

from slmbench.tasks import bioqa, iris, it_entities, products, recipes
from slmbench.tasks.core import Sample, SampleScore, Task
from slmbench.tasks.registry import resolve_task, task_names

TASKS: dict[str, Task] = {module.TASK.name: module.TASK for module in (it_entities, recipes, iris, products, bioqa)}

__all__ = ["TASKS", "Sample", "SampleScore", "Task", "resolve_task", "task_names"]

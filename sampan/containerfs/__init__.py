"""A container's filesystem from the outside: cp (archive), export, diff, commit.

`ContainerFS(engine)` (service.py) is what the engine and the API use; `worker.spawn` forks a
child that sees the container's root as the container does (worker.py).
"""

from .service import ContainerFS

__all__ = ["ContainerFS"]

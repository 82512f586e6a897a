"""`python -m tests.support.diag_server`: a service run exactly as its own
`python -m <module>` runs it, plus one test-only route, `GET /_diag/tasks`.

`DIAG_SERVICE` names the service (`services.echo` or `services.provisioner`).
The route answers `{"tasks": n, "names": [...]}`: the asyncio tasks alive in
the server's event loop, the request's own task left out, so a test can see
from outside that every connection's tasks have ended. It exists only here:
the images and `python -m services.*` never serve it.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DIAG_PATH = "/_diag/tasks"


def task_name(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", None) or task.get_name()


async def tasks(request: Request) -> JSONResponse:
    current = asyncio.current_task()
    alive = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    return JSONResponse({"tasks": len(alive), "names": sorted(task_name(t) for t in alive)})


def with_diag(create_app: Callable[..., Starlette]) -> Callable[..., Starlette]:
    def create(*args: Any, **kwargs: Any) -> Starlette:
        app = create_app(*args, **kwargs)
        app.router.routes.insert(0, Route(DIAG_PATH, tasks))
        return app

    return create


def main() -> None:
    service = os.environ["DIAG_SERVICE"]
    app_module = importlib.import_module(f"{service}.app")
    setattr(app_module, "create_app", with_diag(app_module.create_app))  # noqa: B010
    # Imported after the patch: its `from ...app import create_app` takes the wrapped one.
    importlib.import_module(f"{service}.__main__").main()


if __name__ == "__main__":
    main()

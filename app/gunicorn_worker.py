"""The worker class gunicorn runs Roost with: uvicorn, configured as `roost serve` configures it."""

from typing import Any

from uvicorn_worker import UvicornWorker

from app.processes import server_options
from app.settings import get_settings


def config_kwargs() -> dict[str, Any]:
    return {**UvicornWorker.CONFIG_KWARGS, **server_options(get_settings().max_body_bytes)}


class RoostWorker(UvicornWorker):  # type: ignore[misc]  # uvicorn_worker ships no types
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.CONFIG_KWARGS = config_kwargs()
        super().__init__(*args, **kwargs)

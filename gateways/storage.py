"""Where uploaded files live: local files under ROOST_DATA_DIR (served at /media), or S3."""

import asyncio
from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    async def save(self, key: str, data: bytes, content_type: str) -> None: ...

    def url(self, key: str) -> str: ...


class LocalStorage:
    def __init__(self, root: Path, base_url: str) -> None:
        self.root = root.resolve()
        self.base_url = base_url.rstrip("/")

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError("a storage key must stay inside the storage root")
        return path

    async def save(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, self.path(key), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def url(self, key: str) -> str:
        return f"{self.base_url}/{key}"

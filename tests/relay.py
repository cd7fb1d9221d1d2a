"""A TCP relay to a real server that a test can cut, as if the server had stopped (every open
connection dropped, new ones refused), and then restore on the same port."""

import asyncio
import contextlib
import socket

from sqlalchemy.engine import make_url


class Relay:
    def __init__(self, *, host: str | None = None, port: int | None = None, path: str = "") -> None:
        """To ``host:port`` over TCP, or to the unix socket at ``path``."""
        self.host, self.target_port, self.path = host, port, path
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @classmethod
    def to_postgres(cls, url: str) -> "Relay":
        parsed = make_url(url)
        socket_dir = parsed.query.get("host")
        if isinstance(socket_dir, str) and socket_dir.startswith("/"):
            return cls(path=f"{socket_dir}/.s.PGSQL.{parsed.port or 5432}")
        return cls(host=parsed.host or "127.0.0.1", port=parsed.port or 5432)

    @classmethod
    def to_redis(cls, url: str) -> "Relay":
        parsed = make_url(url)
        return cls(host=parsed.host or "127.0.0.1", port=parsed.port or 6379)

    def postgres_url(self, url: str) -> str:
        """``url`` with its host and port replaced by the relay's."""
        parsed = make_url(url)
        query = {k: v for k, v in parsed.query.items() if k != "host"}
        return parsed.set(host="127.0.0.1", port=self.port, query=query).render_as_string(
            hide_password=False
        )

    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.path:
                upstream = await asyncio.open_unix_connection(self.path)
            else:
                upstream = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        up_reader, up_writer = upstream
        self._writers |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65_536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()

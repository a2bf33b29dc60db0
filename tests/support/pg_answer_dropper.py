"""A TCP proxy in front of PgBouncer that loses the answer to one chosen statement (a protocol peer for
tests): the statement reaches the server and runs to its end (the server's ReadyForQuery is read, so
an autocommit statement has committed), then the client's connection is closed without a byte of the
answer. The client sees the outcome of a committed statement as unknown, as after a network cut at
the worst moment."""
from __future__ import annotations

import asyncio
import contextlib
import struct


class AnswerDropper:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.dropped = 0
        self._armed: bytes | None = None
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def arm(self, marker: bytes) -> None:
        """Lose the answer to the next statement whose text contains `marker` (once)."""
        self._armed = marker

    async def __aenter__(self) -> AnswerDropper:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        s_reader, s_writer = await asyncio.open_connection(*self.upstream)
        lose = asyncio.Event()  # set when the client sent the armed statement
        try:
            await asyncio.gather(self._client_to_server(c_reader, s_writer, lose),
                                 self._server_to_client(s_reader, c_writer, lose))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (c_writer, s_writer):
                w.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await w.wait_closed()
            self._tasks.discard(task)

    async def _client_to_server(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                lose: asyncio.Event) -> None:
        while chunk := await reader.read(65536):
            if self._armed is not None and self._armed in chunk:
                self._armed = None
                lose.set()  # before the server can answer
            writer.write(chunk)
            await writer.drain()
        writer.close()

    async def _server_to_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                lose: asyncio.Event) -> None:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                writer.close()
                return
            if lose.is_set():
                # The client waits for this answer only: it starts at a message boundary. Read
                # messages up to the server's ReadyForQuery, then cut the client off.
                await _until_ready_for_query(chunk, reader)
                self.dropped += 1
                writer.transport.abort()
                raise ConnectionResetError("answer dropped")
            writer.write(chunk)
            await writer.drain()


async def _until_ready_for_query(buffered: bytes, reader: asyncio.StreamReader) -> None:
    buf = bytearray(buffered)
    while True:
        while len(buf) >= 5:
            kind = buf[0:1]
            (length,) = struct.unpack("!i", bytes(buf[1:5]))
            if len(buf) < 1 + length:
                break
            del buf[:1 + length]
            if kind == b"Z":
                return
        more = await reader.read(65536)
        if not more:
            return
        buf += more

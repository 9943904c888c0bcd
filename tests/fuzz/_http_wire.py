"""What the HTTP harnesses share: an in-memory transport driving aiohttp's protocol, and reading its answers.

The bytes of one client connection go into aiohttp's real protocol (the code a socket would reach); what the
server wrote comes back as bytes, and :func:`responses` splits them into HTTP responses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

__all__ = ["SETTLE_SECONDS", "ErrorRecords", "exchange", "responses"]

SETTLE_SECONDS = 0.25


# -- an in-memory transport driving aiohttp's protocol (the same code a socket would reach) --------------------
class _Transport(asyncio.Transport):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.out = bytearray()
        self.protocol: asyncio.Protocol | None = None
        self._loop = loop
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._closing:
            self.out += data

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            if self.protocol is not None:
                self._loop.call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 80)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return not self._closing

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False


async def _settle(protocol: Any, transport: _Transport, seconds: float) -> None:
    """Run the loop until the connection is closed or idle (no request in progress, none queued)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    idle = 0
    while loop.time() < deadline and not transport.is_closing():
        busy = getattr(protocol, "_request_in_progress", True) or bool(getattr(protocol, "_messages", True))
        idle = 0 if busy else idle + 1
        if idle >= 3:
            return
        await asyncio.sleep(0 if idle else 0.001)


async def exchange(factory: Any, data: bytes) -> bytes:
    """Feed ``data`` to a new connection of ``factory`` (aiohttp's protocol factory); what the server wrote."""
    loop = asyncio.get_running_loop()
    transport = _Transport(loop)
    protocol = factory()
    transport.protocol = protocol
    protocol.connection_made(transport)
    protocol.data_received(data)
    await _settle(protocol, transport, SETTLE_SECONDS)
    transport.close()  # the client goes away
    for _ in range(5):
        await asyncio.sleep(0)
    return bytes(transport.out)


def responses(out: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The HTTP responses in ``out`` (status, lower-cased headers, body); interim 1xx ones included."""
    found = []
    while out:
        head, sep, rest = out.partition(b"\r\n\r\n")
        assert sep, f"a response cut short: {out[:80]!r}"
        lines = head.decode("latin-1").split("\r\n")
        version, status = lines[0].split(" ", 2)[:2]
        assert version.startswith("HTTP/"), lines[0]  # aiohttp answers in the request's version (even 0.9)
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        found.append((int(status), headers, rest[:length]))
        out = rest[length:]
    return found


class ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

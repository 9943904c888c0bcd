"""The background event loop the HTTP servers run on (``ocppsec.pki._http.LoopThread``)."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading

import pytest

from ocppsec.pki._http import LoopThread


def test_close_cancels_and_finishes_what_still_runs_on_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    """A task still pending when the loop thread closes (a connection's handler aiohttp has not finished)
    is cancelled and runs its clean-up before the loop closes, as ``asyncio.run`` does; left pending, it
    would be found by the garbage collector later and asyncio would log "Task was destroyed but it is
    pending!" into whatever runs then."""
    thread = LoopThread("test-loop")
    waiting, cleaned_up = threading.Event(), []

    async def handler() -> None:
        waiting.set()
        try:
            await asyncio.get_running_loop().create_future()  # never resolved: a peer that went quiet
        finally:
            cleaned_up.append(threading.current_thread().name)

    async def spawn() -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(handler())

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        task = thread.call(spawn())
        assert waiting.wait(10)
        thread.close()
        assert task.cancelled() and cleaned_up == ["test-loop"] and thread.loop.is_closed()
        del task
        gc.collect()
    assert [r.getMessage() for r in caplog.records] == []
    thread.close()  # a second close is a no-op

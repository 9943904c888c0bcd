"""The gateway's own calls to stations (StationCalls): ids of its own, answers taken out of the relay,
timeouts and late or foreign answers never reaching the upstream."""

from __future__ import annotations

import asyncio
import json

from ocppsec.security_profiles.gateway.calls import CALL_PREFIX, StationCalls

from .helpers import run


class Target:
    def __init__(self, identity: str) -> None:
        self.identity = identity
        self.sent: list[str] = []
        self.got = asyncio.Event()

    async def send(self, message: str | bytes) -> None:
        assert isinstance(message, str)
        self.sent.append(message)
        self.got.set()


class Gone(Target):
    async def send(self, message: str | bytes) -> None:
        raise ConnectionError("closed")


def test_calls_answers_timeouts_and_late_answers() -> None:
    calls = StationCalls(default_timeout=5)

    async def main() -> None:
        station = Target("CS-1")
        task = asyncio.create_task(calls.call(station, "TriggerMessage", {"requestedMessage": "Heartbeat"}))
        await station.got.wait()
        frame = json.loads(station.sent[0])
        assert frame[0] == 2 and frame[1].startswith(CALL_PREFIX) and frame[2] == "TriggerMessage"
        # the upstream's answers and another station's answer are not this call's
        assert not calls.take("CS-1", '[3,"42",{"status":"Accepted"}]')
        assert calls.take("CS-2", json.dumps([3, frame[1], {"status": "Rejected"}]))  # ours, dropped
        assert calls.take("CS-1", json.dumps([3, frame[1], {"status": "Accepted"}]))
        answer = await task
        assert answer.ok and answer.payload == {"status": "Accepted"}
        # a CALLERROR, then a call that times out and whose answer comes late: taken, never relayed
        station.got.clear()
        task = asyncio.create_task(calls.call(station, "GetVariables", {}))
        await station.got.wait()
        uid = json.loads(station.sent[1])[1]
        assert calls.take("CS-1", json.dumps([4, uid, "NotImplemented", "no", {}]))
        error = await task
        assert error.error_code == "NotImplemented" and not error.ok and "CALLERROR" in error.describe()
        late = await calls.call(station, "GetVariables", {}, timeout=0.05)
        assert late.timed_out and calls.pending == {}
        uid = json.loads(station.sent[2])[1]
        assert calls.take("CS-1", json.dumps([3, uid, {}]))
        assert calls.counts["late"] == 2 and calls.counts["timed_out"] == 1
        # a station gone before the call went out: a timed-out answer, not an exception
        gone = await calls.call(Gone("CS-3"), "TriggerMessage", {})
        assert gone.timed_out and "closed" in gone.error_description
        # frames that only look like answers are not taken
        assert not calls.take("CS-1", f'[2,"{CALL_PREFIX}x","Heartbeat",{{}}]')
        assert not calls.take("CS-1", f"{CALL_PREFIX} not json")
        assert not calls.take("CS-1", b"[3]")

    run(main())

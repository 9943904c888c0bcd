"""systemd's readiness protocol (``sd_notify``): one datagram to ``$NOTIFY_SOCKET``, if systemd set it.

``Type=notify`` units wait for ``READY=1`` before they count as started; ``RELOADING=1`` and
``STOPPING=1`` tell systemd what the service is doing. Without ``$NOTIFY_SOCKET`` nothing is sent.
"""

from __future__ import annotations

import os
import socket
import time

__all__ = ["notify"]


def notify(*fields: str) -> bool:
    """Send ``fields`` (``"READY=1"``, ``"STATUS=..."``) to systemd; True if a socket was there to send to."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    message = "\n".join(fields)
    if "RELOADING=1" in fields:
        message += f"\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        return False
    return True

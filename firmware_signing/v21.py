"""OCPP 2.1: UpdateFirmwareRequest as in 2.0.1, with ``location`` <= 2000 and ``retries`` >= 0.

Statuses and events as in 2.0.1 (L01.FR.03/22, both events critical, 21APP).
"""

from __future__ import annotations

from dataclasses import replace

from ocppsec.firmware_signing import v201
from ocppsec.firmware_signing.wire import FieldLimits
from ocppsec.pki.wire import v21 as wire_v21

__all__ = [
    "LIMITS",
    "REQUEST_ACTION",
    "RULES",
    "STATUS_ACTION",
    "firmware_object",
    "firmware_status",
    "request",
    "response_status",
    "security_event",
    "security_event_notification",
    "status_notification",
]

LIMITS = FieldLimits(location=2000)

RULES = replace(v201.RULES, wire=wire_v21.NAMES, limits=LIMITS, min_retries=0)  # retries 0 means no retries

VERSION = RULES.version
REQUEST_ACTION = RULES.request_action
STATUS_ACTION = RULES.status_action

firmware_object = RULES.firmware_object
request = RULES.request
response_status = RULES.response_status
firmware_status = RULES.firmware_status
status_notification = RULES.status_notification
security_event = RULES.security_event
security_event_notification = RULES.security_event_notification

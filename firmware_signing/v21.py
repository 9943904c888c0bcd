"""OCPP 2.1: UpdateFirmwareRequest as in 2.0.1, with ``location`` <= 2000 and ``retries`` >= 0.

Statuses and events as in 2.0.1 (L01.FR.03/22, both events critical, 21APP).
"""

from __future__ import annotations

from dataclasses import replace

from ocppsec.firmware_signing import v201
from ocppsec.firmware_signing.wire import FieldLimits

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

VERSION = "2.1"
REQUEST_ACTION = v201.REQUEST_ACTION
STATUS_ACTION = v201.STATUS_ACTION
LIMITS = FieldLimits(location=2000)
TECH_INFO_LIMIT = v201.TECH_INFO_LIMIT

RULES = replace(v201.RULES, version=VERSION, limits=LIMITS, min_retries=0)  # retries 0 means no retries

firmware_object = RULES.firmware_object
request = RULES.request
response_status = RULES.response_status
firmware_status = RULES.firmware_status
status_notification = RULES.status_notification
security_event = RULES.security_event
security_event_notification = RULES.security_event_notification

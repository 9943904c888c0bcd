"""One composition point for the ``ocpp`` package's ChargePoint classes.

::

    compose   Part (one area's handlers for one version and side), Side, compose(), typed on / after
    glue      the ocpp package per version: module, schema validation, CallErrors, payload casing, calls
    classes   csms_charge_point_class / station_charge_point_class: certificate management, security
              events and certificate status in one class per version (plus any parts you pass)

The parts come from the areas: :mod:`ocppsec.pki.certmgmt.ocpp_handlers` (certificate management, both
sides), :mod:`ocppsec.pki.events.ocpp_handlers` (SecurityEventNotification into an event sink),
:mod:`ocppsec.pki.revocation.ocpp_handlers` (certificate status, both sides) and, outside the kernel,
``ocppsec.eventlog.v16`` / ``v201`` / ``v21`` (GetLog and LogStatusNotification, both sides). Two parts
that handle the same action are refused when the class is created (:class:`~ocppsec.pki.errors.UsageError`).
"""

from ocppsec.pki.chargepoint.classes import csms_charge_point_class, station_charge_point_class
from ocppsec.pki.chargepoint.compose import Part, Setup, Side, after, compose, on
from ocppsec.pki.chargepoint.glue import validate_payload

__all__ = [
    "Part",
    "Setup",
    "Side",
    "after",
    "compose",
    "csms_charge_point_class",
    "on",
    "station_charge_point_class",
    "validate_payload",
]

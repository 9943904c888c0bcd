"""The campaign routes of the gateway's admin listener (``ocppsec campaign ... --gateway URL`` talks to them).

====================================== ===================================================================
route                                  answer
====================================== ===================================================================
``GET /campaigns``                     ``{"campaigns": [...]}``: each campaign with its progress
``POST /campaigns``                    start one: ``{"kind": "renew"|"rollover"|"retire", "options": {...},
                                       "detail": {...}, "force": false}``; 201 with the campaign, or 200
                                       with the per-station report when ``options.dry_run`` is true
``GET /campaigns/{id}``                the campaign with every station's row
``POST /campaigns/{id}/stop``          stop sending (rows in flight finish); ``/resume`` goes on
====================================== ===================================================================

Errors are ``{"error": message, "hint": ..., "violations": [...]}`` with 400 (bad request, refused by
policy) or 404 (no such campaign). The POST routes change what the gateway sends to stations: with
``token`` they need ``Authorization: Bearer TOKEN`` (compared in constant time); without one, the gateway
refuses to offer them on an admin address other than loopback or a unix socket (see ``ocppsec gateway``).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ocppsec.pki.errors import NotFoundError, OcppsecError, PolicyError
from ocppsec.pki.lifecycle.campaign import CampaignKind, CampaignOptions
from ocppsec.security_profiles.gateway.admin import AdminRoutes
from ocppsec.security_profiles.gateway.campaigns.engine import CampaignEngine

__all__ = ["add_campaign_routes", "error_body"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_body(exc: OcppsecError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": exc.message}
    if exc.hint:
        body["hint"] = exc.hint
    if isinstance(exc, PolicyError):
        body["violations"] = [{"requirement": v.requirement, "message": v.message} for v in exc.violations]
    return body


def _guarded(handler: Handler, token: str | None) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        if token is not None:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return web.json_response({"error": "admin token missing or wrong"}, status=401)
        try:
            return await handler(request)
        except NotFoundError as exc:
            return web.json_response(error_body(exc), status=404)
        except OcppsecError as exc:
            return web.json_response(error_body(exc), status=400)

    return wrapped


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def add_campaign_routes(routes: AdminRoutes, engine: CampaignEngine, *, token: str | None = None) -> None:
    """Add the routes of the module docstring for ``engine`` to ``routes``."""
    from ocppsec.pki.errors import InputError

    async def listing(_request: web.Request) -> web.StreamResponse:
        return web.json_response({"campaigns": engine.summaries()}, dumps=_dumps)

    async def one(request: web.Request) -> web.StreamResponse:
        return web.json_response(engine.describe(request.match_info["cid"]), dumps=_dumps)

    async def start(request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            raise InputError("the request body is not JSON") from None
        if not isinstance(body, dict):
            raise InputError("the request body must be a JSON object")
        unknown = sorted(set(body) - {"kind", "options", "detail", "force"})
        if unknown:
            raise InputError(f"unknown field(s): {', '.join(unknown)}", hint="kind, options, detail, force")
        try:
            kind = CampaignKind(str(body.get("kind")))
        except ValueError:
            raise InputError("kind must be renew, rollover or retire") from None
        options = CampaignOptions.from_json(body.get("options") or {})
        detail = body.get("detail") or {}
        if not isinstance(detail, dict):
            raise InputError("detail must be a JSON object")
        force = body.get("force", False)
        if not isinstance(force, bool):
            raise InputError("force must be true or false")
        answer = await engine.start_campaign(kind, options, detail, force=force)
        return web.json_response(answer, status=200 if options.dry_run else 201, dumps=_dumps)

    async def stop(request: web.Request) -> web.StreamResponse:
        return web.json_response(await engine.stop(request.match_info["cid"]), dumps=_dumps)

    async def resume(request: web.Request) -> web.StreamResponse:
        return web.json_response(await engine.resume(request.match_info["cid"]), dumps=_dumps)

    routes.add("GET", "/campaigns", _guarded(listing, None))
    routes.add("GET", "/campaigns/{cid}", _guarded(one, None))
    routes.add("POST", "/campaigns", _guarded(start, token))
    routes.add("POST", "/campaigns/{cid}/stop", _guarded(stop, token))
    routes.add("POST", "/campaigns/{cid}/resume", _guarded(resume, token))

"""Fleet campaigns run by the gateway: renewals, root rollovers and retirements (:mod:`.engine`), from the
certificates the stations present at the handshake (:mod:`.presented`); the renewal-only sessions of
onboarding (:mod:`.onboarding`); the admin listener's routes (:mod:`.routes`, imported on its own: it needs
aiohttp)."""

from __future__ import annotations

from ocppsec.security_profiles.gateway.campaigns.engine import ROOT_CHECKS, CampaignEngine, rollover_detail
from ocppsec.security_profiles.gateway.campaigns.onboarding import StationOnboarding, allow_expired_client_certificates
from ocppsec.security_profiles.gateway.campaigns.presented import PresentedCertificate, PresentedCertificates

__all__ = ["ROOT_CHECKS", "CampaignEngine", "PresentedCertificate", "PresentedCertificates", "StationOnboarding",
           "allow_expired_client_certificates", "rollover_detail"]

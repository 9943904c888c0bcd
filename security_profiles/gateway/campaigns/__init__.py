"""Fleet campaigns run by the gateway: renewals, root rollovers and retirements (:mod:`.engine`), from the
certificates the stations present at the handshake (:mod:`.presented`)."""

from __future__ import annotations

from ocppsec.security_profiles.gateway.campaigns.engine import ROOT_CHECKS, CampaignEngine, rollover_detail
from ocppsec.security_profiles.gateway.campaigns.presented import PresentedCertificate, PresentedCertificates

__all__ = ["ROOT_CHECKS", "CampaignEngine", "PresentedCertificate", "PresentedCertificates", "rollover_detail"]

"""Hierarchy configuration files: ``HierarchyConfig.from_bytes(...).plan()`` and the subjects it makes.

Input: the bytes of a ``hierarchy.toml`` (as ``ocppsec pki init --config FILE`` reads it). Anything
wrong with it is a UsageError naming the key (or an InputError for a subject value pyca refuses).
"""

from __future__ import annotations

from ocppsec.pki.errors import InputError, UsageError
from ocppsec.pki.hierarchy import HierarchyConfig, default_config_text
from ocppsec.pki.names import make_name

from ._harness import harness

ALLOWED = (UsageError, InputError)


@harness(ALLOWED)
def TestOneInput(data: bytes) -> None:
    config = HierarchyConfig.from_bytes(data, cso_name="Fuzz CSO" if data[:1] == b"#" else None)
    plan = config.plan()
    config.to_toml()
    for entity in plan:
        make_name(entity.subject)
        _ = entity.ocsp_url, entity.crl_url, entity.key, entity.validity_days


def seeds() -> dict[str, bytes]:
    default = default_config_text()
    return {
        "default": default.encode(),
        "iso20": default.replace("[iso15118_20]\nenabled = false", "[iso15118_20]\nenabled = true").encode(),
        "sub-ca": default.replace("# [[ca]]\n# name = \"cso-sub-ca\"", "[[ca]]\nname = \"cso-sub-ca\"")
                         .replace("# profile = \"cso-sub-ca\"\n# issuer", "profile = \"cso-sub-ca\"\nissuer")
                         .replace("# subject = { CN = \"{cso_name} Station", "subject = { CN = \"{cso_name} Station").encode(),
        "minimal": b'[network]\ncso_name = "X"\n[[ca]]\nname = "csms-root"\nsubject = { CN = "{cso_name} Root", O = "{cso_name}" }\n',
    }

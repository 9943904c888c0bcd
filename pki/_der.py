"""Minimal DER reading: enough to find the subjectPublicKey bits in a certificate (CertificateHashData)."""

from __future__ import annotations

__all__ = ["read_tlv", "split_sequence"]


def read_tlv(data: bytes, offset: int = 0) -> tuple[int, int, int]:
    """``(tag, value_start, value_end)`` of the DER element at ``offset``."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER element")
    tag = data[offset]
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    end = pos + length
    if end > len(data):
        raise ValueError("DER element runs past the end of the data")
    return tag, pos, end


def split_sequence(data: bytes) -> list[bytes]:
    """The complete encodings of the elements of the outer SEQUENCE in ``data``."""
    tag, start, end = read_tlv(data)
    if tag != 0x30:
        raise ValueError("not a DER SEQUENCE")
    out: list[bytes] = []
    pos = start
    while pos < end:
        _, _, elem_end = read_tlv(data, pos)
        out.append(data[pos:elem_end])
        pos = elem_end
    return out

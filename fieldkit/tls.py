"""How a laptop trusts the central store's certificate: a certificate authority, or a pinned fingerprint.

A regional office has no certificate authority, so ``fieldkit serve`` makes a
self-signed certificate and prints its fingerprint. On the first sync the
laptop trusts that certificate (trust on first use), remembers its fingerprint,
and from then on talks only to a store holding exactly that certificate; a
different one stops the sync before the token is sent. Standard library only:
the laptop needs no cryptography package for this.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit


class CertificateChanged(Exception):
    """The store presents another certificate than the one this laptop pinned."""


def is_loopback(host: str) -> bool:
    """Whether an address stays on this machine (plain HTTP is harmless there)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def fingerprint(der: bytes) -> str:
    """A certificate's SHA-256 fingerprint as people compare it: ``SHA256:AB:CD:...``."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return "SHA256:" + ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def peer_certificate(host: str, port: int, timeout: float = 10.0) -> bytes:
    """The certificate a server presents, unverified (only to compare with a pin or to pin it)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True) or b""


def trusted_by_system(host: str, port: int, timeout: float = 10.0) -> bool:
    """Whether the server's certificate is signed by an authority this machine trusts."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with ssl.create_default_context().wrap_socket(raw, server_hostname=host):
                return True
    except ssl.SSLCertVerificationError:
        return False


def pinned_context(der: bytes) -> ssl.SSLContext:
    """A TLS context that accepts exactly this certificate and nothing else."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the pin names the server, not its address
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=ssl.DER_cert_to_PEM_cert(der))
    return context


@dataclass(frozen=True, slots=True)
class Trust:
    """How to reach one store: ``verify`` for httpx, and the pin to remember (None: an authority vouches)."""

    verify: bool | ssl.SSLContext
    pin: str | None
    new_pin: bool = False


def trust_for(url: str, pin: str | None, timeout: float = 10.0) -> Trust:
    """How this laptop trusts the store at an https URL, pinning its certificate on first use.

    Raises ``CertificateChanged`` when a pinned store shows another certificate,
    and ``OSError`` when it cannot be reached.
    """
    host, port = host_and_port(url)
    if pin is None and trusted_by_system(host, port, timeout):
        return Trust(True, None)
    der = peer_certificate(host, port, timeout)
    seen = fingerprint(der)
    if pin is not None and seen != pin:
        raise CertificateChanged(seen)
    return Trust(pinned_context(der), seen, new_pin=pin is None)

"""Fetch an image by URL without becoming an SSRF proxy.

Only http/https; every address the host resolves to must be public (not loopback,
private, link-local, multicast, reserved or unspecified) unless settings allow private
ones; the connection goes to the address that was checked (so a second DNS answer cannot
swap in a private one); redirects are followed by hand (at most 3) and each target is
checked the same way; time and size are limited.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import httpx

from lookalike.errors import ImageNotFoundError, ImageTooLargeError

MAX_REDIRECTS = 3


class UnsafeURLError(ImageNotFoundError):
    code = "unsafe_url"


def check_url(url: str, allow_private: bool) -> str:
    """The address to connect to for ``url``; UnsafeURLError unless it is http(s) to an
    allowed address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURLError(url, "only http and https URLs are allowed")
    if not parts.hostname:
        raise UnsafeURLError(url, "URL has no host")
    if parts.username or parts.password:
        raise UnsafeURLError(url, "URLs with credentials are not allowed")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 0, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURLError(url, f"cannot resolve host: {exc}") from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not allow_private:
        for address in addresses:
            if not address.is_global or address.is_multicast:
                raise UnsafeURLError(url, f"host resolves to a non-public address ({address})")
    return str(addresses[0])


def _pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """``url`` rewritten to connect to ``address``, with the Host header (and TLS server
    name) of the original host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = literal + (f":{parts.port}" if parts.port else "")
    host_header = host + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl(), {"Host": host_header}, {"sni_hostname": host}


def fetch_image(url: str, *, max_bytes: int, timeout: float, allow_private: bool) -> bytes:
    """Download ``url`` (following safe redirects) and return at most ``max_bytes``."""
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            target, headers, extensions = _pinned(url, check_url(url, allow_private))
            try:
                with client.stream(
                    "GET", target, headers={"Accept": "image/*", **headers}, extensions=extensions
                ) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers.get("location", ""))
                        continue
                    if response.status_code != 200:
                        raise ImageNotFoundError(url, f"server answered {response.status_code}")
                    declared = int(response.headers.get("content-length") or 0)
                    if declared > max_bytes:
                        raise ImageTooLargeError(url, f"{declared} bytes, limit is {max_bytes}")
                    data = bytearray()
                    for chunk in response.iter_bytes():
                        data += chunk
                        if len(data) > max_bytes:
                            raise ImageTooLargeError(url, f"more than {max_bytes} bytes")
                    return bytes(data)
            except httpx.HTTPError as exc:
                raise ImageNotFoundError(url, f"download failed: {exc}") from None
    raise ImageNotFoundError(url, f"more than {MAX_REDIRECTS} redirects")

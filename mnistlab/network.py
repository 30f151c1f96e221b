"""The address students can reach this server at, found from the machine's own network interfaces.

A teacher starts the app and opens it at http://localhost:8501; a join link built from
that address sends every phone in the room to its own "localhost". Streamlit listens on
all interfaces, so the app is also reachable at this machine's address on the school's
network: `lan_address` finds it from the interfaces (the one that carries the default
route, from /proc/net/route, and its IPv4 address, read with an ioctl), sending nothing.
`student_url` builds the address for a join link: a configured public address
(MNISTLAB_PUBLIC_URL, for a server behind a name) wins; an address that is not a
loopback one is kept as the browser used it; a loopback one is replaced by the LAN
address, or, when there is none, kept and flagged so the page can say what to do.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SIOCGIFADDR = 0x8915


def _interface_address(name: str) -> str | None:
    try:
        import fcntl
    except ImportError:  # not a Unix system
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            packed = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


def _default_route_interfaces(route_table: str = "/proc/net/route") -> list[str]:
    try:
        lines = Path(route_table).read_text().splitlines()[1:]
    except OSError:
        return []
    return [fields[0] for fields in (line.split() for line in lines) if len(fields) > 1 and fields[1] == "00000000"]


def usable(address: str | None) -> bool:
    """An IPv4 address other machines could use: not loopback, not link-local, not unspecified."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return parsed.version == 4 and not (parsed.is_loopback or parsed.is_link_local or parsed.is_unspecified or parsed.is_multicast)


def lan_address() -> str | None:
    """This machine's address on its network (the default route's interface first), or None."""
    names = _default_route_interfaces()
    names += [name for _index, name in socket.if_nameindex() if name not in names] if hasattr(socket, "if_nameindex") else []
    for name in names:
        address = _interface_address(name)
        if usable(address):
            return address
    try:
        for *_rest, (address, _port) in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            if usable(address):
                return address
    except OSError:
        pass
    return None


def is_loopback_host(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class StudentUrl:
    """The app's address for students, and whether only a loopback address was found (the page then says so)."""

    url: str
    loopback_only: bool = False
    source: str = "browser"  # "public" (MNISTLAB_PUBLIC_URL), "lan" (this machine's network address) or "browser"


def student_url(browser_url: str, public_url: str | None = None, lan: str | None = None) -> StudentUrl:
    """Where students open the app, from the address this browser used (scheme, host, port and base path)."""
    if public_url:
        return StudentUrl(public_url.rstrip("/"), source="public")
    parts = urlsplit(browser_url)
    host = parts.hostname or ""
    if host and not is_loopback_host(host):
        return StudentUrl(browser_url.rstrip("/"))
    lan = lan if lan is not None else lan_address()
    if not lan:
        return StudentUrl(browser_url.rstrip("/"), loopback_only=True)
    netloc = lan + (f":{parts.port}" if parts.port else "")
    return StudentUrl(urlunsplit((parts.scheme or "http", netloc, parts.path, "", "")).rstrip("/"), source="lan")

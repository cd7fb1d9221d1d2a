"""Other sites' iCalendar feeds, fetched over HTTP with the care a URL typed by a user needs:
it is a server-side request forgery surface.

Every host is resolved first and every address it has is checked (no private, loopback,
link-local, multicast or reserved ones unless ``allow_private``, which is for tests); the
connection then goes to the address checked, not to a second lookup, so a name cannot
resolve to a public address for the check and a private one for the request. Redirects are
followed by hand, at most ``max_redirects``, each checked the same way. The body is read in
pieces and cut off past ``max_bytes``; the whole fetch has ``timeout_seconds``, so a feed that
trickles is cut off too.
"""

import asyncio
import ipaddress
import logging
import socket
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

USER_AGENT = "Roost-Calendar-Sync/1.0"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# A feed's URL is a bearer secret of the other site (Airbnb's carry a token): httpx logs each
# request's URL, so while a feed is fetched its line names no URL.
_fetching: ContextVar[bool] = ContextVar("calendar_feed_fetching", default=False)


class _FeedUrlsHidden(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _fetching.get() and isinstance(record.args, tuple) and len(record.args) >= 2:
            record.args = (record.args[0], "<a calendar feed>", *record.args[2:])
        return True


logging.getLogger("httpx").addFilter(_FeedUrlsHidden())


class FeedUnavailable(Exception):
    """The feed could not be read; the message is safe to show its host."""


class AddressRefused(FeedUnavailable):
    """The URL is not http(s), or its host is (or resolves to) an address we do not call."""


def _public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Feed:
    body: bytes
    etag: str | None
    last_modified: str | None
    not_modified: bool = False


@dataclass(frozen=True)
class FeedFetcher:
    allow_private: bool = False
    max_bytes: int = 1024 * 1024
    timeout_seconds: float = 20.0
    max_redirects: int = 3

    async def address_for(self, url: str) -> tuple[str, IpAddress]:
        """The URL's host and the address to call it at; AddressRefused when it may not be."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AddressRefused("The URL must be an http or https address.")
        if parts.username is not None or parts.password is not None:
            raise AddressRefused("The URL must not carry a user name or password.")
        host = parts.hostname
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise AddressRefused("The URL's port is not a number.") from None
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                found = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except (OSError, UnicodeError):
                raise FeedUnavailable(f"The host {host} could not be found.") from None
            addresses = [ipaddress.ip_address(entry[4][0]) for entry in found]
        if not addresses:
            raise FeedUnavailable(f"The host {host} could not be found.")
        if not self.allow_private and not all(_public(address) for address in addresses):
            raise AddressRefused("The URL points at a private or reserved address.")
        return host, addresses[0]

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> Feed:
        hidden = _fetching.set(True)
        try:
            async with asyncio.timeout(self.timeout_seconds):
                return await self._fetch(url, etag=etag, last_modified=last_modified)
        except TimeoutError:
            raise FeedUnavailable(
                f"The feed did not arrive within {self.timeout_seconds:g} seconds."
            ) from None
        finally:
            _fetching.reset(hidden)

    async def _fetch(self, url: str, *, etag: str | None, last_modified: str | None) -> Feed:
        headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        timeout = httpx.Timeout(self.timeout_seconds)
        async with httpx.AsyncClient(
            trust_env=False, follow_redirects=False, timeout=timeout
        ) as client:
            for _ in range(self.max_redirects + 1):
                host, address = await self.address_for(url)
                parts = urlsplit(url)
                pinned = parts._replace(
                    netloc=(f"[{address}]" if address.version == 6 else str(address))
                    + (f":{parts.port}" if parts.port else "")
                ).geturl()
                request = client.build_request(
                    "GET",
                    pinned,
                    headers={**headers, "Host": parts.netloc.rpartition("@")[2]},
                    extensions={"sni_hostname": host} if parts.scheme == "https" else {},
                )
                try:
                    response = await client.send(request, stream=True)
                except httpx.HTTPError as error:
                    raise FeedUnavailable(f"The feed could not be reached ({error}).") from None
                try:
                    if response.status_code == 304:
                        return Feed(b"", etag, last_modified, not_modified=True)
                    if response.status_code in _REDIRECTS:
                        location = response.headers.get("location")
                        if not location:
                            raise FeedUnavailable("The feed redirected nowhere.")
                        url = urljoin(url, location)
                        continue
                    if response.status_code != 200:
                        raise FeedUnavailable(f"The feed answered HTTP {response.status_code}.")
                    body = await self._read(response)
                    return Feed(
                        body, response.headers.get("etag"), response.headers.get("last-modified")
                    )
                finally:
                    await response.aclose()
        raise FeedUnavailable(f"The feed redirected more than {self.max_redirects} times.")

    async def _read(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise FeedUnavailable(self._too_large())
        body = bytearray()
        try:
            async for piece in response.aiter_bytes():
                body += piece
                if len(body) > self.max_bytes:
                    raise FeedUnavailable(self._too_large())
        except httpx.HTTPError as error:
            raise FeedUnavailable(f"The feed broke off ({error}).") from None
        return bytes(body)

    def _too_large(self) -> str:
        return f"The feed is larger than {self.max_bytes // 1024} KiB."

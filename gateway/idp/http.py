"""One small HTTP client per provider: short timeouts, optional extra CA, JSON or a clear ProviderError."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp

from gateway.idp.base import ProviderError

TIMEOUT = aiohttp.ClientTimeout(total=10)


def provider_session(ca_file: Path | None) -> aiohttp.ClientSession:
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context),
        timeout=TIMEOUT,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": "mcp-auth-gateway"},
    )


async def fetch_json(http: aiohttp.ClientSession, method: str, url: str, what: str, **kwargs: Any) -> Any:
    """The JSON body of a 2xx answer.

    Raises:
        ProviderError: unreachable, non-2xx, or not JSON (names `what`, never tokens).
    """
    try:
        async with http.request(method, url, allow_redirects=False, **kwargs) as response:
            if response.status // 100 != 2:
                raise ProviderError(f"the identity provider answered {response.status} to the {what} request")
            return await response.json(content_type=None)
    except aiohttp.ClientError as exc:
        raise ProviderError(
            f"the identity provider could not be reached for the {what} ({type(exc).__name__})"
        ) from None
    except (ValueError, TimeoutError):
        raise ProviderError(f"the identity provider's {what} answer was not usable") from None

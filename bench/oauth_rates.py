"""OAuth rates against a running gateway: sign-in flows, returning-user authorization-code flows, refreshes.

    python bench/oauth_rates.py http://127.0.0.1:8080 --user bench --password … [--duration 5] [--concurrency 16]

Called by bench/compare.py with the gateway it started. The gateway's per-IP limits must be off for the rates
(compare.py's config does that); sign-ins are few because logins are limited to 10 per minute per address and
cost an argon2id verification each.

- sign-in flow: a fresh browser (no session): /authorize, the login form, consent (first time only), the code
  back at the redirect URI, then /token. Reported as mean latency over a handful.
- returning-user flow: signed in, consent remembered: /authorize answers the code at once, then /token.
- refresh: grant_type=refresh_token with rotation, each worker following its own chain.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from gateway.oauth.pkce import s256  # noqa: E402
from tests.support.headless_oauth import Browser  # noqa: E402

REDIRECT = "http://127.0.0.1:1/callback"  # never contacted: the code is read from the Location header


class Client:
    def __init__(self, base: str, client_id: str, resource: str) -> None:
        self.base, self.client_id, self.resource = base, client_id, resource

    def authorize_url(self, verifier: str) -> str:
        return (
            self.base
            + "/authorize?"
            + urlencode(
                {
                    "response_type": "code",
                    "client_id": self.client_id,
                    "redirect_uri": REDIRECT,
                    "state": "s",
                    "code_challenge": s256(verifier),
                    "code_challenge_method": "S256",
                    "resource": self.resource,
                }
            )
        )

    async def token(self, http: aiohttp.ClientSession, **form: str) -> dict[str, str]:
        async with http.post(self.base + "/token", data={"client_id": self.client_id, **form}) as response:
            body = await response.json()
            if response.status != 200:
                raise SystemExit(f"/token answered {response.status}: {body}")
            return dict(body)

    async def redeem(self, http: aiohttp.ClientSession, code: str, verifier: str) -> dict[str, str]:
        return await self.token(
            http,
            grant_type="authorization_code",
            code=code,
            code_verifier=verifier,
            redirect_uri=REDIRECT,
            resource=self.resource,
        )


async def register(base: str) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            base + "/register",
            json={
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none",
                "client_name": "bench",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            },
        ) as response,
    ):
        if response.status != 201:
            raise SystemExit(f"/register answered {response.status}: {await response.text()}")
        return str((await response.json())["client_id"])


async def sign_in_flows(client: Client, user: str, password: str, count: int) -> tuple[float, Browser]:
    """Mean seconds per complete first-time flow; returns the last (signed-in) browser."""
    browser = Browser(username=user, password=password)
    started = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        for _ in range(count):
            browser = Browser(username=user, password=password)
            verifier = secrets.token_urlsafe(48)
            result = await browser.authorize(client.authorize_url(verifier))
            if "code" not in result:
                raise SystemExit(f"sign-in flow failed: {result}")
            await client.redeem(http, result["code"], verifier)
    return (time.perf_counter() - started) / count, browser


async def returning_flows(
    client: Client, browser: Browser, duration: float, concurrency: int
) -> tuple[float, list[str]]:
    """Flows per second with a signed-in session and remembered consent; one refresh token per worker."""
    done = 0
    refresh_tokens: list[str] = []
    end = time.perf_counter() + duration

    async with aiohttp.ClientSession(cookie_jar=browser.jar) as http:

        async def worker() -> None:
            nonlocal done
            while True:
                verifier = secrets.token_urlsafe(48)
                async with http.get(client.authorize_url(verifier), allow_redirects=False) as response:
                    location = response.headers.get("Location", "")
                    code = parse_qs(urlsplit(location).query).get("code", [""])[0]
                    if response.status not in (302, 303) or not code:
                        raise SystemExit(f"returning-user /authorize did not answer a code: {response.status}")
                tokens = await client.redeem(http, code, verifier)
                done += 1
                if time.perf_counter() >= end:
                    refresh_tokens.append(tokens["refresh_token"])
                    return

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started), refresh_tokens


async def refreshes(client: Client, refresh_tokens: list[str], duration: float) -> float:
    done = 0
    end = time.perf_counter() + duration

    async with aiohttp.ClientSession() as http:

        async def chain(token: str) -> None:
            nonlocal done
            while time.perf_counter() < end:
                token = (await client.token(http, grant_type="refresh_token", refresh_token=token))["refresh_token"]
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(chain(t) for t in refresh_tokens))
        return done / (time.perf_counter() - started)


async def measure(
    base: str, resource: str, user: str, password: str, duration: float = 5.0, concurrency: int = 16, sign_ins: int = 5
) -> dict[str, float]:
    client = Client(base, await register(base), resource)
    sign_in, browser = await sign_in_flows(client, user, password, sign_ins)
    flows, tokens = await returning_flows(client, browser, duration, concurrency)
    return {
        "sign_in_seconds": sign_in,
        "flows_per_second": flows,
        "refreshes_per_second": await refreshes(client, tokens, duration),
    }


def report(rates: dict[str, float], concurrency: int) -> str:
    sign_in_ms = rates["sign_in_seconds"] * 1000
    return (
        f"OAuth: sign-in flow (login form, argon2id, consent, code, token) {sign_in_ms:.0f} ms each; "
        f"returning-user flows (authorize + token) {rates['flows_per_second']:.0f}/s and refreshes (rotation) "
        f"{rates['refreshes_per_second']:.0f}/s at concurrency {concurrency}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="the gateway's public_url")
    parser.add_argument("--resource", help="default: <base>/mcp")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    rates = asyncio.run(
        measure(
            args.base, args.resource or args.base + "/mcp", args.user, args.password, args.duration, args.concurrency
        )
    )
    print(report(rates, args.concurrency))


if __name__ == "__main__":
    main()

"""Enterprise-Managed Authorization (MCP extension io.modelcontextprotocol/enterprise-managed-authorization,
SEP-990): a client presents the enterprise IdP's Identity Assertion JWT Authorization Grant (ID-JAG) at /token with
the RFC 7523 jwt-bearer grant and its own client authentication (profile §5, §6, §7.4, §7.6). The IdP is a real
server on loopback (tests/support/enterprise_idp.py) with its own keys; the gateway and the upstream MCP server are
real too; nothing is mocked."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import pytest
from aiohttp.test_utils import TestClient, TestServer
from joserfc import jwt
from mcp.client.auth.extensions.identity_assertion import IdentityAssertionOAuthProvider

from gateway.app_state import SETTINGS_KEY
from gateway.config import ConfigError, Settings
from gateway.oauth.grant_types import CLIENT_ASSERTION_JWT, ID_JAG_PROFILE, JWT_BEARER
from tests.conftest import route
from tests.support.enterprise_idp import (
    DISCOVERY_PATH,
    RFC8414_PATH,
    EnterpriseIdp,
    enterprise_idp,
    new_key,
    tampered,
)
from tests.support.headless_oauth import MemoryStorage
from tests.support.token_flow import Reply, mcp_status, token_request
from tests.upstream.flows import call_echo

CLIENT_ID, SECRET = "ent", "ent-secret-ent-secret"
OUTSIDER_ID = "outsider"  # confidential, but not in enterprise.issuers[].clients
PUBLIC_ID = "pub"  # a public client listed as trusted: still refused (authenticated clients only)
CODE_ID = "coder"  # confidential and listed as trusted, but registered for the code flow, not jwt-bearer
SIGNER_ID, SIGNER_KEY = "signer", new_key()  # authenticates with private_key_jwt (RFC 7523 §2.2)
PROVIDER = "corp"
EMAIL = "pat@corp.example"
KeySource = Literal["discovery", "jwks_uri", "inline"]
USER, MAIL, NAME, GROUPS = (f"x-forwarded-{h}" for h in ("user", "email", "preferred-username", "groups"))


def confidential(client_id: str) -> dict[str, Any]:
    auth = {"client_secret": SECRET, "token_endpoint_auth_method": "client_secret_post"}
    return {"client_id": client_id, **auth, "grant_types": [JWT_BEARER]}


PUBLIC = {"client_id": PUBLIC_ID, "token_endpoint_auth_method": "none", "redirect_uris": ["http://127.0.0.1:33418/cb"]}
SIGNER = {"client_id": SIGNER_ID, "token_endpoint_auth_method": "private_key_jwt", "grant_types": [JWT_BEARER],
          "jwks": {"keys": [SIGNER_KEY.public()]}}  # fmt: skip
CODE = {**confidential(CODE_ID), "grant_types": ["authorization_code"], "redirect_uris": PUBLIC["redirect_uris"]}
CLIENTS = [confidential(CLIENT_ID), confidential(OUTSIDER_ID), PUBLIC, SIGNER, CODE]


def trusted(idp: EnterpriseIdp, keys: KeySource = "discovery", **extra: Any) -> dict[str, Any]:
    """An `enterprise.issuers[]` entry for `idp`, its keys found by discovery, at its jwks_uri, or inline."""
    sources = {"discovery": {}, "jwks_uri": {"jwks_uri": idp.jwks_uri}, "inline": {"jwks": idp.jwks()}}
    return {
        "issuer": idp.issuer,
        "provider": PROVIDER,
        "clients": [CLIENT_ID, PUBLIC_ID, SIGNER_ID, CODE_ID],
        **sources[keys],
        **extra,
    }


@dataclass
class Enterprise:
    """A gateway trusting the IdP, and a raw HTTP client of it."""

    server: TestServer
    http: TestClient
    idp: EnterpriseIdp

    @property
    def issuer(self) -> str:
        return self.server.app[SETTINGS_KEY].public_url

    @property
    def now(self) -> int:
        return int(self.idp.clock())

    def resource(self, name: str = "alpha") -> str:
        return f"{self.issuer}/{name}/mcp"

    def mint(self, route_name: str = "alpha", **options: Any) -> str:
        """An ID-JAG for this gateway (`aud` its issuer) and one of its routes (`resource`)."""
        return self.idp.mint(self.issuer, self.resource(route_name), **options)

    async def exchange(
        self, assertion: str | None, *, client_id: str = CLIENT_ID, secret: str | None = SECRET, **form: str
    ) -> Reply:
        """The jwt-bearer grant (RFC 7523 §2.1), the client authenticated with client_secret_post (`secret`), or
        by whatever `form` carries (a public client's id alone, a client assertion)."""
        fields = {"grant_type": JWT_BEARER, "client_id": client_id, **form}
        fields |= {"assertion": assertion} if assertion is not None else {}
        fields |= {"client_secret": secret} if secret is not None else {}
        return await token_request(self.http, **fields)

    def sdk_provider(self, **claims: Any) -> IdentityAssertionOAuthProvider:
        """The SDK's SEP-990 client, unmodified: the AS is configuration (our issuer); the IdP mints each ID-JAG."""
        return IdentityAssertionOAuthProvider(
            self.resource(), MemoryStorage(), CLIENT_ID, SECRET, self.issuer, self.idp.assertion_provider(**claims)
        )

    async def echo(self, mode: str = "auto", **claims: Any) -> dict[str, str]:
        """The headers the upstream received on a tool call made through the SDK with an ID-JAG."""
        return await call_echo(self.resource(), self.sdk_provider(**claims), mode=mode)


StartEnterprise = Callable[..., Awaitable[Enterprise]]


@pytest.fixture
async def idp(clock):
    """The IdP stamps its ID-JAGs with the gateway's clock (expiry is tested by choosing times, never sleeping), set
    to a whole second: JWT times are integers, so the leeway's edges are exact."""
    clock.now = float(int(clock.now))
    async with enterprise_idp(client_id=CLIENT_ID, clock=clock) as provider:
        yield provider


@pytest.fixture
def enterprise(start_gateway, upstream, idp, aiohttp_client) -> StartEnterprise:
    """`await enterprise(issuers=[...], routes=[...], access_token_ttl=..., **settings)`; by default the IdP is
    trusted through discovery, in front of `alpha` (scopes alpha:read, alpha:write) and `beta` (beta:read)."""

    async def start(
        *,
        issuers: list[dict[str, Any]] | None = None,
        routes: list[dict[str, Any]] | None = None,
        access_token_ttl: int | None = None,
        **settings: Any,
    ) -> Enterprise:
        routes = routes or [
            route("alpha", upstream.url, scopes=["alpha:read", "alpha:write"]),
            route("beta", upstream.url),
        ]
        section: dict[str, Any] = {"issuers": [trusted(idp)] if issuers is None else issuers}
        section |= {"access_token_ttl": access_token_ttl} if access_token_ttl else {}
        server = await start_gateway(routes, clients=CLIENTS, enterprise=section, **settings)
        return Enterprise(server, await aiohttp_client(server), idp)

    return start


def assert_refused(reply: Reply, error: str, fragment: str) -> None:
    """RFC 6749 §5.2: 400 JSON with the error code; the description says which check refused it (`fragment`, or
    nothing in particular when the code alone says it)."""
    assert reply.status == 400, reply.body
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.error == error, reply.body
    assert fragment in reply.body.get("error_description", ""), reply.body


def assert_issued(reply: Reply, *, scope: str, expires_in: int = 3600) -> str:
    """RFC 6749 §5.1 without a refresh token (the client asks its IdP for a new ID-JAG); the access token."""
    assert reply.status == 200, reply.body
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.body["token_type"] == "Bearer"
    assert reply.body["scope"] == scope
    assert reply.body["expires_in"] == expires_in
    assert set(reply.body) == {"access_token", "token_type", "expires_in", "scope"}  # no refresh_token
    return str(reply.body["access_token"])


# -- the SDK client end to end -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize("keys", ["discovery", "jwks_uri", "inline"])
async def test_sdk_client_reaches_the_tool_as_the_person_the_id_jag_names(enterprise, idp, keys, mode):
    """Profile §5 and §7.4: the SDK's IdentityAssertionOAuthProvider, unmodified, exchanges an ID-JAG signed with
    the IdP's key (found by discovery, at the configured jwks_uri, or inline) for an access token and calls a tool;
    upstream sees `<provider>:<sub>`, the verified email and the groups of the claim, never the IdP's subject alone."""
    gw = await enterprise(issuers=[trusted(idp, keys)])
    seen = await gw.echo(mode, email=EMAIL, email_verified=True, groups=["eng", "ops"])
    assert (seen[USER], seen[MAIL], seen[GROUPS]) == (f"{PROVIDER}:u123", EMAIL, "eng,ops")
    assert seen["x-mcp-client-id"] == CLIENT_ID
    assert "authorization" not in seen
    expected = {"discovery": (1, 1), "jwks_uri": (0, 1), "inline": (0, 0)}[keys]
    assert (idp.fetches[DISCOVERY_PATH], idp.jwks_fetches) == expected


@pytest.mark.parametrize(
    ("settings", "claims", "expected"),
    [
        pytest.param({}, {"email": EMAIL, "email_verified": True}, {MAIL: EMAIL, NAME: "pat"}, id="verified-email"),
        pytest.param({}, {"email": EMAIL, "email_verified": "true"}, {MAIL: EMAIL}, id="verified-as-string"),
        pytest.param({}, {"email": EMAIL}, {MAIL: None, NAME: None}, id="unverified-email-dropped"),
        pytest.param({}, {"email": EMAIL, "email_verified": False}, {MAIL: None}, id="email-verified-false"),
        pytest.param({"trust_email": True}, {"email": EMAIL}, {MAIL: EMAIL}, id="trust-email"),
        pytest.param({"email_claim": "upn", "trust_email": True}, {"upn": EMAIL, "email": "x@y.z"}, {MAIL: EMAIL},
                     id="email-claim"),
        pytest.param({}, {"preferred_username": "pat.l", "email": EMAIL}, {NAME: "pat.l"}, id="username"),
        pytest.param({"username_claim": "login"}, {"login": "plee"}, {NAME: "plee"}, id="username-claim"),
        pytest.param({}, {"groups": "eng"}, {GROUPS: "eng"}, id="one-group-as-string"),
        pytest.param({"groups_claim": "roles"}, {"roles": ["admin"], "groups": ["eng"]}, {GROUPS: "admin"},
                     id="groups-claim"),
        pytest.param({"groups_claim": None}, {"groups": ["eng"]}, {GROUPS: None}, id="no-groups-claim"),
    ],
)  # fmt: skip
async def test_identity_headers_follow_the_issuers_claim_rules(enterprise, idp, settings, claims, expected):
    """Profile §4.3 and §5.1 (the ID-JAG's claims) as `enterprise.issuers[]` reads them: the email only when the IdP
    marks it verified or is trusted to (`trust_email`), taken from `email_claim`; the username from
    `username_claim` (else the verified email's local part); the groups from `groups_claim`."""
    gw = await enterprise(issuers=[trusted(idp, **settings)])
    seen = await gw.echo(**claims)
    assert seen[USER] == f"{PROVIDER}:u123"
    assert {name: seen.get(name) for name in expected} == expected


async def test_each_trusted_issuer_has_its_own_keys_namespace_and_jtis(enterprise, idp, clock):
    """Profile §4.3 (multi-issuer subjects, draft §6) and §7.4: two trusted IdPs each name people in their own
    namespace, an ID-JAG naming one issuer but signed with the other's key is refused, and replay detection is
    scoped by issuer (§7.4.2), so the same `jti` from each is one use each."""
    async with enterprise_idp(client_id=CLIENT_ID, clock=clock) as other:
        gw = await enterprise(issuers=[trusted(idp), trusted(other, provider="partner")])
        partner = replace(gw, idp=other)
        assert (await gw.echo())[USER] == f"{PROVIDER}:u123"
        assert (await partner.echo())[USER] == "partner:u123"
        assert_refused(await partner.exchange(partner.mint(key=idp.signing)), "invalid_grant", "does not publish")
        for issuer in (gw, partner):
            assert_issued(await issuer.exchange(issuer.mint(jti="shared-jti")), scope="alpha:read alpha:write")


SIGN_IN, NO_SIGN_IN = True, False  # a login provider named like the issuer's namespace, or ID-JAGs only


@pytest.mark.parametrize(
    ("sign_in", "allow", "issuer", "claims", "admitted"),
    [
        pytest.param(SIGN_IN, {"groups": ["corp:eng"]}, {}, {"groups": ["eng"]}, True, id="group"),
        pytest.param(SIGN_IN, {"groups": ["corp:eng"]}, {}, {"groups": ["ops"]}, False, id="other-group"),
        pytest.param(SIGN_IN, {"groups": ["corp:eng"]}, {}, {}, False, id="no-groups"),
        pytest.param(SIGN_IN, {"groups": ["corp:eng"]}, {"provider": "partner"}, {"groups": ["eng"]}, False,
                     id="same-group-name-other-namespace"),
        pytest.param(SIGN_IN, {"users": ["corp:u123"]}, {}, {}, True, id="user"),
        pytest.param(SIGN_IN, {"users": ["corp:u123"]}, {"provider": "partner"}, {}, False,
                     id="user-other-namespace"),
        pytest.param(SIGN_IN, {"providers": ["corp"]}, {}, {}, True, id="provider"),
        pytest.param(SIGN_IN, {"email_domains": ["corp.example"]}, {}, {"email": EMAIL, "email_verified": True},
                     True, id="verified-email-domain"),
        pytest.param(SIGN_IN, {"email_domains": ["corp.example"]}, {}, {"email": EMAIL}, False,
                     id="unverified-email-domain"),
        pytest.param(NO_SIGN_IN, {"groups": ["corp:eng"]}, {}, {"groups": ["eng"]}, True, id="group-id-jag-only"),
        pytest.param(NO_SIGN_IN, {"groups": ["corp:eng"]}, {}, {"groups": ["ops"]}, False,
                     id="other-group-id-jag-only"),
    ],
)  # fmt: skip
async def test_route_access_rules_apply_in_the_sign_in_namespace(enterprise, idp, upstream, sign_in, allow, issuer,
                                                                 claims, admitted):  # fmt: skip
    """Profile §7.2 (the AS applies its own policy too before issuing; refusals are invalid_grant, §7.6): the
    issuer's subjects live in the namespace of the sign-in provider of that name (or its own, without one), so
    `allow: {groups: [corp:eng]}` admits an ID-JAG with groups ["eng"] from the `corp` issuer and no one else
    (another issuer's "eng" is another group); an email counts only when verified."""
    login = {"name": PROVIDER, "type": "oidc", "issuer": idp.issuer, "client_id": "gateway", "client_secret": "s"}
    routes = [route("alpha", upstream.url, allow=allow)]
    sign_in_settings = {"login": {"providers": [login]}} if sign_in else {}
    gw = await enterprise(issuers=[trusted(idp, **issuer)], routes=routes, **sign_in_settings)
    reply = await gw.exchange(gw.mint(**claims))
    if not admitted:
        assert_refused(reply, "invalid_grant", "not allowed for this user")
        return
    assert await mcp_status(gw.http, "/alpha/mcp", assert_issued(reply, scope="alpha:read")) == 200


# -- refusals -------------------------------------------------------------------------------------------------

Exchange = Callable[[Enterprise], Awaitable[Reply]]


def refusal(make: Exchange, error: str, fragment: str, case: str) -> Any:
    return pytest.param(make, error, fragment, id=case)


def presented(**options: Any) -> Exchange:
    """Present an ID-JAG for `alpha` minted with `options` (claims, `key`, `header`) as the trusted client."""
    return lambda e: e.exchange(e.mint(**options))


def timed(**offsets: int | None) -> Exchange:
    """Present an ID-JAG whose time claims are these many seconds from now (None: left out)."""
    return lambda e: e.exchange(e.mint(**{k: None if v is None else e.now + v for k, v in offsets.items()}))


@pytest.mark.parametrize(
    ("make", "error", "fragment"),
    [
        refusal(presented(aud="https://other-as.example"), "invalid_grant", "aud must be", "wrong-aud"),
        refusal(lambda e: e.exchange(e.mint(aud=e.issuer + "/token")), "invalid_grant", "aud must be",
                "aud-token-endpoint"),
        refusal(presented(iss="https://idp.elsewhere.example"), "invalid_grant",
                "issuer is not trusted", "foreign-issuer"),
        refusal(presented(iss=None), "invalid_grant", "issuer is not trusted", "no-iss"),
        refusal(presented(key=new_key()), "invalid_grant", "does not publish", "unknown-kid"),
        refusal(presented(key=new_key(), header={"kid": None}), "invalid_grant",
                "does not verify", "no-kid-unpublished-key"),
        refusal(lambda e: e.exchange(tampered(e.mint(), sub="admin")), "invalid_grant", "does not verify",
                "tampered-claims"),
        refusal(lambda e: e.exchange(e.idp.forge("none", e.issuer, e.resource())), "invalid_grant",
                "algorithm 'none'", "alg-none"),
        refusal(lambda e: e.exchange(e.idp.forge("HS256", e.issuer, e.resource())), "invalid_grant",
                "algorithm 'HS256'", "hs256-forged-with-public-key"),
        refusal(presented(header={"typ": "JWT"}), "invalid_grant", "typ must be", "typ-jwt"),
        refusal(presented(header={"typ": None}), "invalid_grant", "typ must be", "no-typ"),
        refusal(presented(sub=None), "invalid_grant", "names no subject", "no-sub"),
        refusal(lambda e: e.exchange("not-a-jwt"), "invalid_grant", "not a compact JWS", "not-a-jwt"),
    ],
)  # fmt: skip
async def test_id_jag_not_signed_by_the_trusted_issuer_for_us_is_invalid_grant(enterprise, make, error, fragment):
    """Profile §7.4: the AS verifies the signature with the trusted IdP's keys under an explicit algorithm
    allow-list (never `none`, never HMAC keyed with a public key), the `typ` oauth-id-jag+jwt, `iss` a configured
    issuer, `aud` its own issuer identifier, a `sub`; any failure is invalid_grant (§7.6)."""
    gw = await enterprise()
    assert_refused(await make(gw), error, fragment)


@pytest.mark.parametrize(
    ("make", "error", "fragment"),
    [
        refusal(timed(iat=-400, exp=-61), "invalid_grant", "has expired", "expired"),
        refusal(timed(iat=61, exp=300), "invalid_grant", "issued in the future", "iat-future"),
        refusal(timed(nbf=61), "invalid_grant", "not valid yet", "nbf-future"),
        refusal(timed(exp=601), "invalid_grant", "longer than 600", "exp-iat-601"),
        refusal(timed(iat=None, exp=601), "invalid_grant", "longer than 600", "no-iat-exp-far"),
        refusal(presented(exp=None), "invalid_grant", "exp", "no-exp"),
        refusal(presented(jti=None), "invalid_grant", "needs a jti", "no-jti"),
        refusal(presented(jti=""), "invalid_grant", "needs a jti", "empty-jti"),
    ],
)  # fmt: skip
async def test_id_jag_outside_its_lifetime_or_without_jti_is_invalid_grant(enterprise, make, error, fragment):
    """Profile §7.4: `iat`/`exp` (and `nbf`) checked with 60 s of clock skew, `exp - iat` within the issuer's
    `max_lifetime` (600 s by default), a `jti` so the grant can be single use; failures are invalid_grant."""
    gw = await enterprise()
    assert_refused(await make(gw), error, fragment)


@pytest.mark.parametrize(
    "offsets",
    [
        pytest.param({"exp": -60}, id="expired-within-leeway"),
        pytest.param({"iat": 60, "exp": 300}, id="iat-ahead-within-leeway"),
        pytest.param({"nbf": 60}, id="nbf-ahead-within-leeway"),
        pytest.param({"exp": 600}, id="exp-iat-600"),
    ],
)
async def test_clock_skew_and_lifetime_bounds_are_inclusive(enterprise, offsets):
    """Profile §7.4 (iat/exp validity) with the 60 s leeway at its edge and `exp - iat` equal to max_lifetime: the
    grant is accepted (the refusal cases above are one second beyond)."""
    gw = await enterprise()
    assert_issued(await timed(**offsets)(gw), scope="alpha:read alpha:write")


@pytest.mark.parametrize(("lifetime", "accepted"), [(60, True), (61, False)])
async def test_issuer_max_lifetime_is_configurable(enterprise, idp, lifetime, accepted):
    """Profile §7.4 (a short-lived grant): `enterprise.issuers[].max_lifetime` bounds `exp - iat`."""
    gw = await enterprise(issuers=[trusted(idp, max_lifetime=60)])
    reply = await gw.exchange(gw.mint(exp=gw.now + lifetime))
    if accepted:
        assert_issued(reply, scope="alpha:read alpha:write")
    else:
        assert_refused(reply, "invalid_grant", "longer than 60 seconds")


@pytest.mark.parametrize(
    ("make", "error", "fragment"),
    [
        refusal(presented(client_id="someone-else"), "invalid_grant", "issued to another client",
                "client-id-claim-of-another"),
        refusal(presented(client_id=None), "invalid_grant", "issued to another client", "no-client-id-claim"),
        refusal(lambda e: e.exchange(e.mint(client_id=OUTSIDER_ID), client_id=OUTSIDER_ID), "invalid_grant",
                "may not present this issuer's grants", "client-not-in-issuer-clients"),
        refusal(lambda e: e.exchange(e.mint(client_id=PUBLIC_ID), client_id=PUBLIC_ID, secret=None),
                "unauthorized_client", "", "public-client"),
        refusal(lambda e: e.exchange(e.mint(client_id=CODE_ID), client_id=CODE_ID), "unauthorized_client", "",
                "client-without-the-jwt-bearer-grant"),
        refusal(lambda e: e.exchange(None), "invalid_request", "assertion is required", "no-assertion"),
        refusal(lambda e: e.exchange(""), "invalid_request", "assertion is required", "empty-assertion"),
    ],
)  # fmt: skip
async def test_id_jag_only_from_the_client_it_was_issued_to(enterprise, make, error, fragment):
    """Profile §5 and §7.4: the client authenticates itself (a public client, or one not registered for the
    jwt-bearer grant, is unauthorized_client), the ID-JAG's `client_id` claim names it and the issuer lists it in
    `clients`; RFC 7523 §2.1: `assertion` is required."""
    gw = await enterprise()
    assert_refused(await make(gw), error, fragment)


@pytest.mark.parametrize(
    ("make", "error", "fragment"),
    [
        refusal(lambda e: e.exchange(e.mint(resource=e.issuer + "/nowhere/mcp")), "invalid_grant",
                "names no MCP server", "resource-of-no-route"),
        refusal(presented(resource="https://mcp.elsewhere.example/alpha/mcp"), "invalid_grant",
                "names no MCP server", "resource-on-another-origin"),
        refusal(presented(resource=None), "invalid_grant", "names no MCP server", "no-resource"),
        refusal(lambda e: e.exchange(e.mint(), resource=e.resource("beta")), "invalid_target",
                "differs from the ID-JAG's resource", "resource-param-differs"),
        refusal(presented(scope="alpha:read alpha:admin"), "invalid_grant",
                "scope claim names scopes", "scope-the-route-lacks"),
        refusal(presented(scope="beta:read"), "invalid_grant", "scope claim names scopes", "scope-of-another-route"),
        refusal(presented(scope=["alpha:read"]), "invalid_grant", "scope", "scope-claim-not-a-string"),
    ],
)  # fmt: skip
async def test_id_jag_resource_and_scope_must_name_this_gateways_route(enterprise, make, error, fragment):
    """Profile §5.1 and §7.6.2: `aud` (this AS) and `resource` (one of its MCP servers) are a bound pair, a
    `resource` parameter must be that one (invalid_target), and the scope claim may only name the route's scopes."""
    gw = await enterprise()
    assert_refused(await make(gw), error, fragment)


async def test_scope_claim_on_a_route_without_scopes_is_invalid_grant(enterprise, upstream):
    """Profile §7.6.2: a `scope` claim must match the scopes registered for the resource; a route that registers
    none has no scope an ID-JAG could name (else the IdP's strings would reach the token and X-MCP-Scopes)."""
    gw = await enterprise(routes=[route("alpha", upstream.url, scopes=[])])
    assert_issued(await gw.exchange(gw.mint()), scope="")
    assert_refused(await gw.exchange(gw.mint(scope="alpha:admin")), "invalid_grant", "scope")


async def test_without_trusted_issuers_the_grant_is_unsupported(enterprise):
    """Profile §6 (the grant exists only where an IdP is trusted): with no `enterprise.issuers` the jwt-bearer grant
    is unsupported_grant_type (RFC 6749 §5.2), even for a well-formed ID-JAG from a confidential client."""
    gw = await enterprise(issuers=[])
    assert_refused(await gw.exchange(gw.mint()), "unsupported_grant_type", "enterprise.issuers")


# -- single use ------------------------------------------------------------------------------------------------


async def test_replayed_id_jag_is_invalid_grant(enterprise):
    """Profile §7.4: the AS rejects a `jti` it has seen until the grant expires; the first use is honoured."""
    gw = await enterprise()
    assertion = gw.mint()
    assert_issued(await gw.exchange(assertion), scope="alpha:read alpha:write")
    assert_refused(await gw.exchange(assertion), "invalid_grant", "jti was already used")
    assert_refused(await gw.exchange(assertion, scope="alpha:read"), "invalid_grant", "jti was already used")


async def test_unauthenticated_presentation_does_not_use_up_the_id_jag(enterprise):
    """Profile §5 (the client authenticates with its own credentials) and §7.4.2: a wrong client secret is
    invalid_client (401) before the ID-JAG is looked at, so whoever holds a stolen ID-JAG without the client's
    credentials can neither use it nor use it up."""
    gw = await enterprise()
    assertion = gw.mint()
    reply = await gw.exchange(assertion, secret="wrong-secret-wrong-secret")
    assert (reply.status, reply.error) == (401, "invalid_client"), reply.body
    assert_issued(await gw.exchange(assertion), scope="alpha:read alpha:write")


async def test_replay_is_refused_across_gateway_instances_sharing_the_store(enterprise):
    """Profile §7.4 (jti single use) for a deployment of several instances: the jti is recorded in the shared store,
    so the ID-JAG one instance honoured is refused by the other."""
    first = await enterprise()
    second = await enterprise(public_url=first.issuer)  # the same deployment: same issuer, same store
    assert second.server.port != first.server.port
    assertion = first.mint()
    assert_issued(await first.exchange(assertion), scope="alpha:read alpha:write")
    assert_refused(await second.exchange(assertion), "invalid_grant", "jti was already used")
    assert_issued(await second.exchange(first.mint()), scope="alpha:read alpha:write")  # (the second one works)


# -- key rotation ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("keys", ["discovery", "jwks_uri"])
async def test_rotated_issuer_key_is_fetched_once_and_accepted(enterprise, idp, keys):
    """Profile §7.4 (the IdP's current keys): an ID-JAG signed with a key the IdP published after the gateway
    cached its JWK set makes the gateway refetch the set once and accept it; the retired key is refused after."""
    gw = await enterprise(issuers=[trusted(idp, keys)])
    assert_issued(await gw.exchange(gw.mint()), scope="alpha:read alpha:write")
    assert idp.jwks_fetches == 1
    retired = idp.signing
    idp.rotate("RSA")
    assert_issued(await gw.exchange(gw.mint()), scope="alpha:read alpha:write")
    assert idp.jwks_fetches == 2
    assert_refused(await gw.exchange(gw.mint(key=retired)), "invalid_grant", "does not publish")
    assert_issued(await gw.exchange(gw.mint()), scope="alpha:read alpha:write")
    assert idp.jwks_fetches == 2
    assert idp.fetches[DISCOVERY_PATH] == (keys == "discovery")


async def test_unknown_kids_refetch_the_key_set_at_most_once_per_window(enterprise, idp):
    """Profile §7.4 with bounded work: a flood of ID-JAGs naming random `kid`s (or none, signed by unpublished
    keys) is refused with invalid_grant and makes the gateway refetch the IdP's JWK set once in the 30 s window,
    not once per request; the published key keeps working from the cache."""
    gw = await enterprise(issuers=[trusted(idp, "jwks_uri")])
    assert_issued(await gw.exchange(gw.mint()), scope="alpha:read alpha:write")
    assert idp.jwks_fetches == 1
    flood = [gw.mint(key=new_key()) for _ in range(20)] + [
        gw.mint(key=new_key(), header={"kid": None}) for _ in range(5)
    ]
    for reply in await asyncio.gather(*(gw.exchange(assertion) for assertion in flood)):
        assert reply.status == 400 and reply.error == "invalid_grant", reply.body
    assert idp.jwks_fetches == 2
    for assertion in [gw.mint(key=new_key()) for _ in range(5)]:
        assert_refused(await gw.exchange(assertion), "invalid_grant", "does not publish")
    assert_issued(await gw.exchange(gw.mint()), scope="alpha:read alpha:write")
    assert idp.jwks_fetches == 2


def client_assertion(gw: Enterprise) -> str:
    """The signer client's own RFC 7523 §3 assertion for this authorization server."""
    claims = {"iss": SIGNER_ID, "sub": SIGNER_ID, "aud": gw.issuer, "jti": uuid.uuid4().hex, "iat": gw.now,
              "exp": gw.now + 60}  # fmt: skip
    return jwt.encode({"alg": SIGNER_KEY.alg, "kid": SIGNER_KEY.kid}, claims, SIGNER_KEY.jwk)


async def test_private_key_jwt_client_presents_an_id_jag(enterprise):
    """Profile §5 and §7.5.1 (strong client authentication such as private_key_jwt): the client proves itself with
    a signed client assertion and is issued a token for the ID-JAG; its assertion is single use like the grant."""
    gw = await enterprise()
    signed = {"client_assertion_type": CLIENT_ASSERTION_JWT, "client_assertion": client_assertion(gw)}
    reply = await gw.exchange(gw.mint(client_id=SIGNER_ID), client_id=SIGNER_ID, secret=None, **signed)
    assert_issued(reply, scope="alpha:read alpha:write")
    again = await gw.exchange(gw.mint(client_id=SIGNER_ID), client_id=SIGNER_ID, secret=None, **signed)
    assert (again.status, again.error) == (401, "invalid_client"), again.body


async def test_issuer_keys_found_through_rfc8414_metadata(enterprise, idp):
    """Profile §7.4.1 (a trusted key for the issuing IdP): without an OpenID discovery document the issuer's
    RFC 8414 metadata names its jwks_uri."""
    idp.metadata_path = RFC8414_PATH
    gw = await enterprise()
    assert_issued(await gw.exchange(gw.mint()), scope="alpha:read alpha:write")
    assert (idp.fetches[DISCOVERY_PATH], idp.fetches[RFC8414_PATH], idp.jwks_fetches) == (1, 1, 1)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"issuer": "https://idp.elsewhere.example"}, id="names-another-issuer"),
        pytest.param({"jwks_uri": "http://idp.elsewhere.example/jwks"}, id="plain-http-jwks-uri"),
        pytest.param({"jwks_uri": None}, id="no-jwks-uri"),
    ],
)
async def test_metadata_that_does_not_vouch_for_the_issuer_gives_no_keys(enterprise, idp, overrides):
    """Profile §7.4.1 (keys over authenticated TLS, from the issuer itself): keys come only from metadata naming the
    issuer byte for byte (RFC 8414 §3.3) with an https jwks_uri (loopback aside); without keys nothing is issued
    (503 temporarily_unavailable) and the ID-JAG is not used up: once the metadata is right, an instance that has
    not cached the failure honours it."""
    idp.metadata_overrides = overrides
    gw = await enterprise()
    assertion = gw.mint()
    reply = await gw.exchange(assertion)
    assert (reply.status, reply.error) == (503, "temporarily_unavailable"), reply.body
    assert idp.jwks_fetches == 0
    idp.metadata_overrides = {}
    fixed = await enterprise(public_url=gw.issuer)
    assert_issued(await fixed.exchange(assertion), scope="alpha:read alpha:write")


# -- what is issued --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "requested", "issued"),
    [
        pytest.param("alpha:read alpha:write", "alpha:read", "alpha:read", id="intersection"),
        pytest.param("alpha:read alpha:write", None, "alpha:read alpha:write", id="claim-scopes"),
        pytest.param("alpha:read", "alpha:read alpha:write", "alpha:read", id="request-beyond-claim-narrowed"),
        pytest.param(None, "alpha:write", "alpha:write", id="no-claim-route-scopes-requested"),
        pytest.param(None, None, "alpha:read alpha:write", id="no-claim-no-request"),
    ],
)
async def test_issued_scopes_are_the_claims_and_the_requests_in_common(enterprise, claim, requested, issued):
    """Profile §7.2.1 and §7.6: the access token carries the scopes the ID-JAG grants and the request asks for (all
    of the claim's, or the route's when the ID-JAG names none); no refresh token (the client asks its IdP anew)."""
    gw = await enterprise()
    form = {"scope": requested} if requested else {}
    assert_issued(await gw.exchange(gw.mint(scope=claim), **form), scope=issued)


@pytest.mark.parametrize(("ttl", "expires_in"), [(None, 3600), (120, 120)])
async def test_token_is_bound_to_the_route_and_lives_access_token_ttl(enterprise, ttl, expires_in):
    """Profile §5.1 (the token is for the MCP server the `resource` claim names: RFC 8707 audience restriction) and
    `enterprise.access_token_ttl` (default: oauth.access_token_ttl) as `expires_in`."""
    gw = await enterprise(access_token_ttl=ttl)
    token = assert_issued(await gw.exchange(gw.mint(), resource=gw.resource()), scope="alpha:read alpha:write",
                          expires_in=expires_in)  # fmt: skip
    assert await mcp_status(gw.http, "/alpha/mcp", token) == 200
    assert await mcp_status(gw.http, "/beta/mcp", token) == 401


# -- metadata and configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize("trusts", [True, False])
async def test_metadata_advertises_the_grant_and_the_id_jag_profile_when_an_issuer_is_trusted(enterprise, idp, trusts):
    """Profile §6: the AS metadata (RFC 8414) lists the jwt-bearer grant type and the id-jag grant profile in
    `authorization_grant_profiles_supported`, only when an enterprise IdP is trusted."""
    gw = await enterprise(issuers=[trusted(idp)] if trusts else [])
    response = await gw.http.get("/.well-known/oauth-authorization-server")
    assert response.status == 200
    metadata = await response.json()
    assert (JWT_BEARER in metadata["grant_types_supported"]) is trusts
    assert metadata.get("authorization_grant_profiles_supported") == ([ID_JAG_PROFILE] if trusts else None)
    assert "client_secret_post" in metadata["token_endpoint_auth_methods_supported"]


CONFIG_ISSUER = {"issuer": "https://idp.example.com", "provider": PROVIDER, "clients": [CLIENT_ID]}
PUBLIC_JWKS, PRIVATE_JWKS = {"keys": [new_key().public()]}, {"keys": [new_key().jwk.as_dict(private=True)]}


def config_problems(*issuers: dict[str, Any]) -> list[str]:
    routes = [{"name": "alpha", "path": "/alpha/mcp", "upstream": "http://127.0.0.1:9001/mcp"}]
    try:
        Settings(
            public_url="https://gw.example.com", routes=routes, clients=CLIENTS, enterprise={"issuers": list(issuers)}
        )
    except ConfigError as exc:
        return exc.problems
    return []


def test_config_accepts_each_source_of_issuer_keys():
    """Profile §7.4 (the AS is configured with the IdPs it trusts): discovery, an https jwks_uri, or inline keys."""
    assert config_problems(CONFIG_ISSUER) == []
    assert config_problems({**CONFIG_ISSUER, "jwks_uri": "https://idp.example.com/keys"}) == []
    assert config_problems({**CONFIG_ISSUER, "jwks": PUBLIC_JWKS}) == []
    assert config_problems({**CONFIG_ISSUER, "jwks_uri": "http://127.0.0.1:8080/jwks"}) == []


@pytest.mark.parametrize(
    ("issuers", "where", "fragment"),
    [
        pytest.param([{**CONFIG_ISSUER, "provider": "local"}], "enterprise.issuers[0].provider", "reserved",
                     id="provider-local"),
        pytest.param([{**CONFIG_ISSUER, "provider": "client"}], "enterprise.issuers[0].provider", "reserved",
                     id="provider-client"),
        pytest.param([{**CONFIG_ISSUER, "jwks_uri": "https://idp.example.com/keys", "jwks": PUBLIC_JWKS}],
                     "enterprise.issuers[0]", "not both", id="jwks-and-jwks-uri"),
        pytest.param([{**CONFIG_ISSUER, "jwks": PRIVATE_JWKS}], "enterprise.issuers[0].jwks",
                     "private key material", id="jwks-with-private-key"),
        pytest.param([CONFIG_ISSUER, {**CONFIG_ISSUER, "provider": "corp2"}], "enterprise.issuers[1].issuer",
                     "appears twice", id="duplicate-issuer"),
        pytest.param([{**CONFIG_ISSUER, "jwks_uri": "http://idp.example.com/jwks"}], "enterprise.issuers[0].jwks_uri",
                     "https is required", id="plain-http-jwks-uri"),
        pytest.param([{**CONFIG_ISSUER, "issuer": "http://idp.example.com"}], "enterprise.issuers[0].issuer",
                     "https is required", id="plain-http-issuer-discovery"),
    ],
)  # fmt: skip
def test_config_refuses_issuers_that_do_not_say_what_they_mean(issuers, where, fragment):
    """Profile §7.4 (keys of a trusted IdP, fetched securely): reserved identity namespaces, two sources of keys,
    private key material in a published set, an issuer twice, plain http to a non-loopback host: ConfigError."""
    found = config_problems(*issuers)
    assert [p for p in found if p.startswith(where + ": ") and fragment in p], found

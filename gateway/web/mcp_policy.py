"""Apply the route's MCP policy to one request: the body read strictly (gateway.mcp.jsonrpc), header/body
consistency (RS-14), per-tool/resource/prompt decisions (step-up 403 or a JSON-RPC error; a name or URI read
differently by different servers is a 400), and the list filter every response then passes through. The upstream
never sees a refused call. Policy denials answer HTTP 403 with a JSON-RPC error echoing the id."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from gateway.access import qualified_groups
from gateway.config import RateLimit, Settings
from gateway.identity import RequestContext
from gateway.limiter import RateLimiter
from gateway.mcp import jsonrpc
from gateway.mcp.filtering import ListFilter
from gateway.mcp.policy import Decision, Judge, active, per_caller_kinds
from gateway.oauth.errors import InsufficientScopeError
from gateway.routing import RouteInfo
from gateway.web.errors import Refusal, bearer_challenge, jsonrpc_error


@dataclass(frozen=True)
class Inspection:
    messages: list[jsonrpc.Message]
    list_filter: ListFilter | None
    judge: Judge | None = None  # the route's policy for this caller (None: no policy applies)


def tool_limit(settings: Settings, info: RouteInfo) -> RateLimit | None:
    return info.route.rate_limits.tool_calls_per_user or settings.rate_limits.tool_calls_per_user


def user_limit(settings: Settings, info: RouteInfo) -> RateLimit | None:
    return info.route.rate_limits.mcp_per_user or settings.rate_limits.mcp_per_user


async def check_rate_limits(
    limiter: RateLimiter,
    settings: Settings,
    info: RouteInfo,
    context: RequestContext,
    messages: list[jsonrpc.Message],
    body: bytes,
) -> None:
    """Per user per route, and per user per tool for each tools/call: one atomic check for all of them (at most
    1 + MAX_DISTINCT_TOOLS buckets, each key of bounded length: jsonrpc.read_messages). Over a limit: `Refusal`
    with a 429 and Retry-After."""
    user = context.record.user_id
    buckets: list[tuple[str, int, float]] = []
    if (limit := user_limit(settings, info)) is not None:
        buckets.append((f"mcp:{info.route.name}", limit.limit, limit.period))
    if (limit := tool_limit(settings, info)) is not None:
        for message in messages:
            if message.method == "tools/call" and message.target is not None:
                buckets.append((f"tool:{info.route.name}:{_bucket_name(message.target[1])}", limit.limit, limit.period))
    wait = await limiter.take(user, buckets)
    if wait > 0:
        retry = {"Retry-After": str(max(1, math.ceil(wait)))}
        message = "Rate limit exceeded; retry later"
        raise Refusal(jsonrpc_error(429, jsonrpc.RATE_LIMITED, message, jsonrpc.peek_id(body), retry))


def _bucket_name(tool: str) -> str:
    """The tool's name in its Redis key; a long one by digest (a key is never larger than a short name)."""
    return tool if len(tool) <= 128 else "sha256:" + hashlib.sha256(tool.encode("utf-8", "surrogatepass")).hexdigest()


def inspect(
    settings: Settings,
    headers: Mapping[str, str],
    info: RouteInfo,
    context: RequestContext,
    body: bytes | None,
    now: float,
) -> Inspection:
    """The parsed messages and the list filter to apply (else `Refusal`: a 400 that ends the request). Cheap (one
    strict JSON read, bounded by jsonrpc.read_messages): the rate limit is checked next, and only then what the
    policy says of each name (`refusal`), so a rate-limited flood costs no policy decision. Whenever the route's
    policy is active every response is filtered (POST, GET and DELETE alike: a GET stream may replay earlier
    answers after `Last-Event-ID`); a list that varies by caller is marked private, fresh no longer than the token
    (gateway.mcp.filtering)."""
    method_header, name_header = headers.get("Mcp-Method"), headers.get("Mcp-Name")
    policy = info.route.policy
    body = body or b""
    if (
        not active(policy)
        and method_header is None
        and name_header is None
        and not tool_limit(settings, info)
        and body.lstrip()[:1] != b"["
    ):  # (a batch is always read: at most MAX_BATCH_MESSAGES per POST)
        return Inspection([], None)
    try:
        messages = jsonrpc.read_messages(body)
    except jsonrpc.BodyError as error:
        # fail closed: what the gateway cannot read it cannot authorize (another parser might read it differently)
        raise Refusal(jsonrpc_error(400, error.code, error.message, error.request_id), "mcp_policy") from None
    batch = body.lstrip()[:1] == b"["
    mismatch = jsonrpc.header_mismatch(
        messages, method_header, name_header, headers.get("MCP-Protocol-Version"), batch=batch
    )
    if mismatch:
        raise Refusal(jsonrpc_error(400, jsonrpc.HEADER_MISMATCH, mismatch, jsonrpc.peek_id(body)), "mcp_policy")
    if not active(policy):
        return Inspection(messages, None)
    record = context.record
    groups = tuple(qualified_groups(record.user_id, record.groups))  # rules name groups as provider:group
    judge = Judge(policy, scopes=record.scopes, groups=groups)
    ttl_ms = max(0, int((record.expires_at - now) * 1000))
    list_filter = ListFilter(
        lambda kind, name: judge(kind, name).outcome == "allow", private=per_caller_kinds(policy), ttl_ms=ttl_ms
    )
    return Inspection(messages, list_filter, judge)


def check_policy(
    info: RouteInfo, context: RequestContext, inspection: Inspection, challenged: RouteInfo | None = None
) -> None:
    """Raise `Refusal` with the answer to the first message naming something the policy refuses (a batch is
    refused whole). A step-up challenge names `challenged`'s resource (a virtual server's, for its members)."""
    if inspection.judge is None:
        return
    for message in inspection.messages:
        for kind, name in message.targets:
            verdict = inspection.judge(kind, name)  # type: ignore[arg-type]
            refused = _refusal(challenged or info, context.record.scopes, message, name, verdict)
            if refused is not None:
                raise Refusal(refused, "mcp_policy")


def _refusal(
    info: RouteInfo, scopes: tuple[str, ...], message: jsonrpc.Message, name: str, verdict: Decision
) -> web.Response | None:
    if verdict.outcome == "invalid":
        return jsonrpc_error(
            400, jsonrpc.INVALID_PARAMS, f"Invalid params: {name[:200]!r} is refused ({verdict.reason})", message.id
        )
    if verdict.outcome == "step_up":
        needed = tuple(dict.fromkeys((*scopes, *info.route.required_scopes, *verdict.needed_scopes)))
        error = InsufficientScopeError(verdict.reason)
        return jsonrpc_error(
            403,
            jsonrpc.FORBIDDEN,
            f"Insufficient scope: {verdict.reason}",
            message.id,
            headers={"WWW-Authenticate": bearer_challenge(info.metadata_url, needed, error)},
        )
    if verdict.outcome == "forbid":
        return jsonrpc_error(403, jsonrpc.FORBIDDEN, f"Not allowed: {name[:200]} ({verdict.reason})", message.id)
    return None

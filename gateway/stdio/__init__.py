"""stdio MCP servers behind the gateway (`routes[].command`, MCP basic/transports stdio): the gateway runs them with
the SDK's stdio client and serves each route's processes as a Streamable HTTP upstream on a Unix socket only the
gateway's user can reach, so a stdio route takes the same request path as an HTTP one (bearer, policy, filtering,
limits, audit, credentials)."""

"""Identity headers that other auth proxies and platforms set, and that an app moved from behind one trusts
(Cloudflare Access, Google IAP, AWS ALB, Azure App Service, Grafana-style auth proxies, oauth2-proxy, Pomerium,
Tailscale, authentik, Vouch, Kong, APISIX…): none is named anywhere in the gateway (issue 10 #9)."""

OTHER_PROXIES_IDENTITY = [
    "Cf-Access-Authenticated-User-Email", "Cf-Access-Jwt-Assertion", "X-Goog-Authenticated-User-Email",
    "X-Goog-Authenticated-User-Id", "X-Goog-Iap-Jwt-Assertion", "X-Amzn-Oidc-Identity", "X-Amzn-Oidc-Data",
    "X-Amzn-Oidc-Accesstoken", "X-Ms-Client-Principal-Name", "X-Ms-Client-Principal-Id", "X-Ms-Client-Principal",
    "X-WEBAUTH-USER", "X-Authenticated-User", "X-Auth-Request-Email", "X-Auth-Request-Access-Token",
    "X-Forwarded-Access-Token", "Remote-User", "X-Remote-User", "X-Pomerium-Jwt-Assertion", "X-Pomerium-Claim-Email",
    "Tailscale-User-Login", "X-Authentik-Username", "X-Vouch-User", "X-Consumer-Username", "X-Userinfo",
    "Baggage", "X-Anything-Else",
]

"""The admin API (issue 15): users, clients, grants and tokens, sessions, upstream credentials, routes and signing
keys, as JSON on a listener of its own (`admin.listen`), described by an OpenAPI 3.1 document.

The service modules (`users`, `clients`, `grants`, `credentials`, `routes`, `keys`) are pure async functions over
the settings, the store and the time, returning the dataclasses of `views` or raising `AdminError`; the CLI's
commands and the HTTP handlers (`api`) both call them, so the two cannot disagree. `listener` builds the
application (`create_admin_app`) that the server runs next to the public one.
"""

"""Version 1 of the REST API: one NinjaAPI instance with every domain's router mounted."""

from __future__ import annotations

from ninja import NinjaAPI, Router

from patron.api.auth import api_auth, apply_access
from patron.api.errors import install_error_handlers
from patron.api.routers import analytics, coupons, customers, ingest, loyalty, privacy, recommend
from patron.api.validation import document_unreadable_bodies, forbid_unknown_fields

#: (URL prefix, router) of every domain; a new app adds its router here.
ROUTERS: list[tuple[str, Router]] = [
    ("/customers", customers.router),
    ("/ingest", ingest.router),
    ("/analytics", analytics.router),
    ("/loyalty", loyalty.router),
    ("/coupons", coupons.router),
    # Paths under /customers, /products and /recommendations: mounted at the root.
    ("", recommend.router),
    # /customers/{external_id}/consents: mounted at the root as well.
    ("", privacy.router),
]

api = NinjaAPI(
    title="Patron API",
    version="1",
    description=(
        "Patron's REST API. Authenticate with `Authorization: Bearer TOKEN` "
        "(`patron token create --user NAME --scope read ...`), or with a staff session from "
        "the dashboard. Each endpoint needs one token scope (`x-token-scope`): `read` for "
        "every GET, `ingest`, `loyalty` or `admin` for writes. Each endpoint also needs a "
        "permission (`x-permission`) that the caller's role has (`x-roles`): a token acts "
        "with its user's role, and a caller without it gets 403 `forbidden`."
    ),
    urls_namespace="api-v1",
    # Each router's operations get their scope's callbacks below; this is the fallback.
    auth=api_auth(),
    # The docs page is served at /api/docs by patron.api.urls, outside the versioned prefix.
    docs_url=None,
)
install_error_handlers(api)
for prefix, router in ROUTERS:
    apply_access(router)
    forbid_unknown_fields(router)
    document_unreadable_bodies(router)
    api.add_router(prefix, router)

"""Django settings for Patron, read from ``PATRON_*`` environment variables.

``PATRON_HOME``          folder of the embedded store (default ``./var``)
``PATRON_DATABASE_URL``  database URL (default: SQLite file ``PATRON_HOME/patron.sqlite3``)
``PATRON_SECRET_KEY``    secret key (default: generated once into ``PATRON_HOME/secret_key``)
``PATRON_PII_KEYS``      personal-data keys ``id:base64,...``, newest first (default: one key
                         generated once into ``PATRON_HOME/pii_keys``; see docs/privacy.md)
``PATRON_TIME_ZONE``     the shop's time zone (default ``Asia/Shanghai``)
``PATRON_CURRENCY``      the shop's currency (default ``CNY``)
``PATRON_DEBUG``         ``1`` turns on Django's debug mode (development only)
``PATRON_ALLOWED_HOSTS`` comma-separated host names (default: localhost names)
``PATRON_PRODUCTION``    ``1`` turns on HTTPS-only settings (redirect, HSTS, secure cookies)
``PATRON_CACHE_URL``     cache (rate limits): ``redis://...``; ``PATRON_REDIS_URL`` too
``PATRON_API_RATE_LIMIT`` requests per token, ``6000/min`` (see docs/operations.md)
``PATRON_LOGIN_MAX_FAILURES`` failed logins before a lockout (default 5; docs/operations.md)
``PATRON_RECOMMEND_REPEAT_CATEGORIES`` category paths recommended again after a purchase
``PATRON_RECOMMEND_DIVERSITY`` MMR diversity weight of served lists (default 0.2)
``PATRON_CONSENT_DEFAULTS`` consent of undecided customers per purpose (docs/privacy.md)
``PATRON_DSR_DEADLINE_DAYS`` days to answer a data subject request (default 15)
``PATRON_RETENTION_DAYS`` anonymise customers inactive this many days (default: never)
``PATRON_IDEMPOTENCY_KEEP`` how long an ``Idempotency-Key``'s answer is kept (default ``24h``)
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from patron.core.envparse import parse_duration, parse_flag, parse_rate

PACKAGE_DIR = Path(__file__).resolve().parent
PATRON_HOME = Path(os.environ.get("PATRON_HOME", "var")).resolve()
PATRON_CURRENCY = os.environ.get("PATRON_CURRENCY", "CNY").upper()


def _generated_once(name: str, make: Callable[[], str]) -> str:
    """The content of ``PATRON_HOME/<name>``, made by ``make`` and written there on first use."""
    key_file = PATRON_HOME / name
    if key_file.exists():
        return key_file.read_text().strip()
    PATRON_HOME.mkdir(parents=True, exist_ok=True)
    value = make()
    # Written whole under a private name, then linked into place: of two processes starting
    # at once, one value wins and the other reads it, never a half-written file.
    draft = PATRON_HOME / f".{name}.{os.getpid()}"
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value)
    try:
        os.link(draft, key_file)
    except FileExistsError:
        return key_file.read_text().strip()
    finally:
        draft.unlink()
    return value


def _secret_key() -> str:
    """Return the configured secret key, or one generated into PATRON_HOME on first use."""
    return os.environ.get("PATRON_SECRET_KEY") or _generated_once(
        "secret_key", lambda: secrets.token_urlsafe(50)
    )


def _pii_keys() -> str:
    """Return ``PATRON_PII_KEYS``, or one key generated into ``PATRON_HOME/pii_keys`` on first
    use (losing that file loses the personal data it encrypts: back it up)."""
    return os.environ.get("PATRON_PII_KEYS") or _generated_once(
        "pii_keys", lambda: f"k1:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}"
    )


def _database_config() -> dict[str, object]:
    url = os.environ.get("PATRON_DATABASE_URL")
    if not url:
        PATRON_HOME.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{PATRON_HOME / 'patron.sqlite3'}"
    config: dict[str, object] = dict(dj_database_url.parse(url, conn_max_age=60))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            # WAL lets the dashboard read while an import writes; IMMEDIATE avoids
            # upgrade deadlocks between two writers.
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                "PRAGMA cache_size=-131072; PRAGMA temp_store=MEMORY;"
            ),
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    else:
        # Test databases get a per-process name so parallel runs on one server never collide.
        config["TEST"] = {"NAME": f"test_patron_{os.getpid()}"}
    return config


SECRET_KEY = _secret_key()
PATRON_PII_KEYS = _pii_keys()
DEBUG = os.environ.get("PATRON_DEBUG", "") == "1"
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("PATRON_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "patron.privacy",
    "patron.customers",
    "patron.catalog",
    "patron.orders",
    "patron.ingest",
    "patron.analytics",
    "patron.loyalty",
    "patron.recommend",
    "patron.api",
    "ninja",  # serves Swagger UI's JS and CSS from its own static files, no CDN
    "patron.web",
    "patron.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "patron.core.security.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "patron.api.ratelimit.AddressRateLimitMiddleware",
    "patron.api.validation.RequestBodyLimitMiddleware",
    "patron.api.middleware.JsonApiErrorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "patron.privacy.audit.AuditRequestMiddleware",
    "patron.api.idempotency.IdempotencyKeyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "patron.urls"
WSGI_APPLICATION = "patron.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": _database_config()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
TIME_ZONE = os.environ.get("PATRON_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = PATRON_HOME / "static"
# WhiteNoise expects the folder even before the first collectstatic (`patron serve` fills it).
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # Plotly's JavaScript, served from the installed plotly package (no CDN).
    "patron.web.staticfiles.PlotlyFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:overview"
LOGOUT_REDIRECT_URL = "web:login"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"


# Hardening (docs/operations.md, "Production settings"). Every value comes from the
# environment; PATRON_PRODUCTION=1 turns the HTTPS-only ones on together, and the embedded
# default (`make demo`, `patron serve` on localhost) keeps working over plain http.
def _env_flag(name: str, default: bool) -> bool:
    try:
        return parse_flag(name, os.environ.get(name), default)
    except ValueError as error:
        raise ImproperlyConfigured(str(error)) from error


def _env_seconds(name: str, default: str) -> int:
    try:
        return parse_duration(name, os.environ.get(name, default))
    except ValueError as error:
        raise ImproperlyConfigured(str(error)) from error


def _env_rate(name: str, default: str) -> tuple[int, int] | None:
    try:
        return parse_rate(name, os.environ.get(name, default))
    except ValueError as error:
        raise ImproperlyConfigured(str(error)) from error


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    if not value.strip().isdigit():
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}")
    return int(value)


PRODUCTION = _env_flag("PATRON_PRODUCTION", False)
SECURE_SSL_REDIRECT = _env_flag("PATRON_SSL_REDIRECT", PRODUCTION)
SECURE_HSTS_SECONDS = _env_int("PATRON_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_flag("PATRON_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = _env_flag("PATRON_HSTS_PRELOAD", PRODUCTION)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _env_flag("PATRON_SECURE_COOKIES", PRODUCTION)
#: Reverse proxies in front of Patron (nginx: 1). They are trusted to set X-Forwarded-Proto
#: (so a TLS-terminating proxy's requests count as https) and X-Forwarded-For (the client's
#: address for rate limits and login lockout).
PROXY_COUNT = _env_int("PATRON_PROXY_COUNT", 0)
if PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = [
    origin.strip()
    for origin in os.environ.get("PATRON_CSRF_TRUSTED_ORIGINS", "").split(",")
    if origin.strip()
]
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
#: Request bodies (an ingest batch is the largest) and form fields: a larger one is refused
#: with 413 before it is read.
DATA_UPLOAD_MAX_MEMORY_SIZE = _env_int("PATRON_MAX_BODY_BYTES", 10 * 1024 * 1024)

#: The API token hashes' HMAC key (default: derived from SECRET_KEY, so changing that one
#: invalidates every token; set PATRON_TOKEN_KEY to rotate SECRET_KEY on its own).
API_TOKEN_KEY = os.environ.get("PATRON_TOKEN_KEY", "")
#: (requests, window seconds) per token or staff user, and per client address for calls
#: that are not authenticated (or fail to be); None switches a limit off.
API_RATE_LIMIT = _env_rate("PATRON_API_RATE_LIMIT", "6000/min")
API_ANONYMOUS_RATE_LIMIT = _env_rate("PATRON_API_ANONYMOUS_RATE_LIMIT", "120/min")
_cache_url = os.environ.get("PATRON_CACHE_URL") or os.environ.get("PATRON_REDIS_URL")
if _cache_url and not _cache_url.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(
        f"PATRON_CACHE_URL must be a Redis URL (redis://, rediss:// or unix://), got {_cache_url!r}"
    )
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
        if _cache_url
        # Per process: with several server workers each keeps its own counts (docs).
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "patron"}
    )
}

#: Dashboard and admin sign-in: this many failures for one username (or from one address)
#: within the window lock it out for LOGIN_LOCKOUT_SECONDS (patron.api.lockout).
AUTHENTICATION_BACKENDS = ["patron.api.lockout.LockoutModelBackend"]
LOGIN_MAX_FAILURES = _env_int("PATRON_LOGIN_MAX_FAILURES", 5)
LOGIN_MAX_FAILURES_PER_ADDRESS = _env_int("PATRON_LOGIN_MAX_FAILURES_PER_ADDRESS", 20)
LOGIN_FAILURE_WINDOW_SECONDS = _env_seconds("PATRON_LOGIN_FAILURE_WINDOW", "15m")
LOGIN_LOCKOUT_SECONDS = _env_seconds("PATRON_LOGIN_LOCKOUT", "15m")

#: Category paths whose products may be recommended again after a purchase (a path covers its
#: sub-categories), comma-separated: PATRON_RECOMMEND_REPEAT_CATEGORIES="食品,个护 > 口腔护理".
RECOMMEND_REPEAT_PURCHASE_CATEGORIES = [
    path.strip()
    for path in os.environ.get("PATRON_RECOMMEND_REPEAT_CATEGORIES", "").split(",")
    if path.strip()
]
#: Weight of the diversity re-ranking (maximal marginal relevance) of recommendation lists.
RECOMMEND_DIVERSITY = float(os.environ.get("PATRON_RECOMMEND_DIVERSITY", "0.2"))
#: Consent of customers who have not decided, per purpose; marketing is never granted by
#: default. PATRON_CONSENT_DEFAULTS="personalisation=withdrawn" asks for explicit consent.
CONSENT_DEFAULTS = os.environ.get(
    "PATRON_CONSENT_DEFAULTS", "personalisation=granted,analytics=granted"
)
#: Days to answer a data subject request (access, export, correction, erasure): PIPL practice
#: is 15 days, GDPR allows one month (docs/privacy.md).
DSR_DEADLINE_DAYS = _env_int("PATRON_DSR_DEADLINE_DAYS", 15)
#: Customers inactive for longer than this many days are anonymised by
#: `patron privacy retention` (unset: never).
RETENTION_DAYS = (
    _env_int("PATRON_RETENTION_DAYS", 0) if os.environ.get("PATRON_RETENTION_DAYS") else None
)

#: How long the answer to an API write sent with an Idempotency-Key is kept for a retry
#: (docs/api.md): kept answers may name customers, so they are not kept for ever.
IDEMPOTENCY_KEEP_SECONDS = _env_seconds("PATRON_IDEMPOTENCY_KEEP", "24h")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("PATRON_LOG_LEVEL", "WARNING")},
}

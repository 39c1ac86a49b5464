"""Django settings, all from environment variables.

With nothing set the product runs on the *embedded default*: SQLite and a filesystem Celery broker under
``var/`` (real worker processes, no server needed) and the local HER-SYS sandbox. ``DATABASE_URL`` and
``REDIS_URL`` switch to PostgreSQL and Redis (docker-compose, CI, production).
"""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("HERSYS_VAR_DIR", BASE_DIR / "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _local_secret(name: str, nbytes: int = 48) -> str:
    """A per-installation secret kept under var/ when the environment gives none (embedded default only)."""
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(nbytes))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _local_secret("secret_key")
# Fernet key(s) for patient data at rest, comma-separated; the first encrypts, all decrypt (key rotation).
PATIENT_DATA_KEYS = [
    k.strip() for k in (os.environ.get("PATIENT_DATA_KEYS") or "").split(",") if k.strip()
]
if not PATIENT_DATA_KEYS:
    from cryptography.fernet import Fernet

    key_path = VAR_DIR / "patient_data_key"
    if not key_path.exists():
        key_path.write_text(Fernet.generate_key().decode())
        key_path.chmod(0o600)
    PATIENT_DATA_KEYS = [key_path.read_text().strip()]

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
DEMO_MODE = env_bool("HERSYS_DEMO_MODE", False)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp_webauthn",
    "rest_framework",
    "drf_spectacular",
    "assist_portal.accounts",
    "assist_portal.audit",
    "assist_portal.formdefs",
    "assist_portal.central",
    "assist_portal.hospitaladmin",
    "assist_portal.notifications",
    "assist_portal.delivery",
    "assist_portal.api",
    "assist_portal.health",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "assist_portal.accounts.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "assist_portal.accounts.middleware.PortalOTPMiddleware",  # django-otp's, device read compiled once
    "assist_portal.accounts.middleware.IdleSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "assist_portal.urls"
WSGI_APPLICATION = "assist_portal.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
# ModelBackend that loads the user's hospital with the user (one query less per request). One backend only, so that
# login() never has to be told which one; sessions signed in under Django's own ModelBackend sign in again once.
AUTHENTICATION_BACKENDS = ["assist_portal.accounts.backends.PortalBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "notifications:list"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "assist_portal.accounts.context_processors.portal",
                "assist_portal.notifications.context_processors.worklist",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
    )
}
if "postgresql" in DATABASES["default"]["ENGINE"] and os.environ.get(
        "DATABASE_SERVER_SIDE_BINDING", "1").strip().lower() not in ("0", "false", "no", "off"):
    # Parameters bound by the server, so that psycopg prepares a statement run again on a connection (the 2nd
    # time) and PostgreSQL stops planning it again on every request (issue 13, ADR 0019). Off (0) behind a
    # transaction-pooling proxy that cannot keep prepared statements.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": 2})
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web server and worker processes share the file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE",
                                       "init_command": "PRAGMA journal_mode=WAL;"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "ja"
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True

# Database sessions with their per-request read compiled once per process (assist_portal/accounts/sessions.py).
SESSION_ENGINE = "assist_portal.accounts.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(8 * 3600)))
# A session with no activity for this long ends (the form page warns two minutes before; typing is activity).
SESSION_IDLE_SECONDS = int(os.environ.get("SESSION_IDLE_SECONDS", str(30 * 60)))
# HTTPS only, from the environment (README): redirect plain HTTP, HSTS, and — behind the data centre's
# TLS-terminating proxy — trust its X-Forwarded-Proto. The load balancer's probes stay reachable over HTTP.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER") else None
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", SECURE_SSL_REDIRECT)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Behind the data centre's reverse proxy: take the client address from X-Forwarded-For (for the audit log).
TRUST_X_FORWARDED_FOR = env_bool("DJANGO_TRUST_X_FORWARDED_FOR", False)
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("MAX_UPLOAD_BYTES", str(20 * 1024 * 1024)))

# E-mail (account notices: second factor enrolled or reset). Printed to the console unless an SMTP host is set.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", not EMAIL_USE_SSL)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "HER-SYS登録補助 <no-reply@localhost>")

# Authentication policy
# Brute force (accounts.throttle): failures per user name AND client address, and per client address; a lock
# doubles with each further lock of the same source up to the maximum, and always ends when it says.
LOGIN_MAX_FAILURES = int(os.environ.get("LOGIN_MAX_FAILURES", "5"))
LOGIN_IP_MAX_FAILURES = int(os.environ.get("LOGIN_IP_MAX_FAILURES", "30"))
LOGIN_LOCKOUT_SECONDS = int(os.environ.get("LOGIN_LOCKOUT_SECONDS", "300"))
LOGIN_LOCKOUT_MAX_SECONDS = int(os.environ.get("LOGIN_LOCKOUT_MAX_SECONDS", "3600"))
LOGIN_FAILURE_WINDOW_SECONDS = int(os.environ.get("LOGIN_FAILURE_WINDOW_SECONDS", "900"))
LOGIN_BACKOFF_RESET_SECONDS = int(os.environ.get("LOGIN_BACKOFF_RESET_SECONDS", "86400"))
OTP_TOTP_ISSUER = "HER-SYS登録補助"
# Security keys and passkeys (WebAuthn, django-otp-webauthn) as a second factor beside TOTP, never instead of the
# password (accounts.keys). The relying party is the host people open: PUBLIC_BASE_URL's, unless WEBAUTHN_RP_ID says
# otherwise. Browsers refuse an IP address as relying party, so a local installation on 127.0.0.1 uses localhost.
_public = urlsplit(PUBLIC_BASE_URL)
_public_is_ip = bool(re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", _public.hostname or ""))
OTP_WEBAUTHN_RP_ID = os.environ.get("WEBAUTHN_RP_ID") or ("localhost" if _public_is_ip else _public.hostname or "localhost")
OTP_WEBAUTHN_RP_NAME = "HER-SYS登録補助"
OTP_WEBAUTHN_ALLOWED_ORIGINS = [o.strip().rstrip("/") for o in os.environ.get("WEBAUTHN_ALLOWED_ORIGINS", "").split(",")
                                if o.strip()] or [
    f"{_public.scheme}://localhost{':' + str(_public.port) if _public.port else ''}" if _public_is_ip
    else PUBLIC_BASE_URL]
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False  # always after the password (two factors, ADR 0006)
OTP_WEBAUTHN_EXCEPTION_LOGGER_NAME = "django_otp_webauthn"
# A launch for a patient whose case was notified less than this many days ago reopens that notification.
CASE_REOPEN_DAYS = int(os.environ.get("CASE_REOPEN_DAYS", "90"))
# Rotating a connector key: how long the old key keeps working beside the new one.
CONNECTOR_KEY_OVERLAP_HOURS = float(os.environ.get("CONNECTOR_KEY_OVERLAP_HOURS", "24"))
LAUNCH_TOKEN_TTL_SECONDS = int(os.environ.get("LAUNCH_TOKEN_TTL_SECONDS", "600"))
# Worklist search over values encrypted at rest: a keyed HMAC index (notifications.search). Its own key, never the
# Fernet keys above: the index alone (without this key) reveals nothing about names, kana or birth dates.
SEARCH_INDEX_KEY = os.environ.get("SEARCH_INDEX_KEY") or _local_secret("search_index_key")
WORKLIST_PAGE_SIZE = int(os.environ.get("WORKLIST_PAGE_SIZE", "50"))
# A confirmed revision not accepted by HER-SYS within this many minutes puts its case into 要対応.
ACCEPTANCE_ALERT_MINUTES = float(os.environ.get("ACCEPTANCE_ALERT_MINUTES", "60"))
# The final click of a confirmation needs a second factor verified within this many minutes (else asked again).
OTP_RECHECK_MINUTES = float(os.environ.get("OTP_RECHECK_MINUTES", "10"))
# Delivery problems (rejection, dead letter, no acceptance in time) are e-mailed to the confirming physician and,
# when set, to this hospital-independent contact address as well (besides each hospital's own contact address).
DELIVERY_ALERT_EMAIL = os.environ.get("DELIVERY_ALERT_EMAIL", "")
# The Japanese TrueType font embedded in PDFs (Debian: fonts-ipaexfont-gothic).
PDF_FONT_PATH = os.environ.get("PDF_FONT_PATH", "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["assist_portal.api.auth.HospitalApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["assist_portal.api.auth.IsHospitalConnector"],
    "DEFAULT_SCHEMA_CLASS": "assist_portal.api.schema.ConnectorAutoSchema",
    "DEFAULT_PARSER_CLASSES": ["assist_portal.api.auth.SafeJSONParser"],
    "EXCEPTION_HANDLER": "assist_portal.api.auth.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {"TITLE": "HER-SYS 登録補助 API", "VERSION": "1.0.0", "SERVE_INCLUDE_SCHEMA": False}

# Celery: a broker that needs no server by default (filesystem transport under var/broker).
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    _broker = VAR_DIR / "broker"
    for sub in ("out", "processed", "control"):
        (_broker / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker / "out"),
        "data_folder_out": str(_broker / "out"),
        "processed_folder": str(_broker / "processed"),
        "control_folder": str(_broker / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task here waits on HTTPS and PostgreSQL, not on the CPU: threads run it without the prefork pool's hand-off
# of every task between processes (pickled over a pipe, the result sent back), more than a quarter of the
# worker's CPU per delivery. `prefork` brings pool processes back (ADR 0021). Celery lets this setting win over
# `-P prefork` (also the command line's default); another `-P` (solo, gevent) still wins over it.
CELERY_WORKER_POOL = os.environ.get("CELERY_WORKER_POOL", "threads")
CELERY_TASK_IGNORE_RESULT = True
# Celery's Django fix-up otherwise closes every DB connection before and after each task: a new PostgreSQL session
# per delivery (backend fork, authentication) cost more CPU than the delivery itself. Connections are now kept
# like a web server keeps them (CONN_MAX_AGE, health check; closed after a task that hit an error — see
# assist_portal/celery.py) and recycled after this many tasks.
CELERY_DB_REUSE_MAX = int(os.environ.get("CELERY_DB_REUSE_MAX", "1000"))
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"assist_portal.delivery.tasks.*": {"queue": "hersys"}}
CELERY_BEAT_SCHEDULE = {
    "sweep-deliveries": {
        "task": "assist_portal.delivery.tasks.sweep_deliveries",
        "schedule": float(os.environ.get("DELIVERY_SWEEP_SECONDS", "30")),
    },
}
CELERY_BEAT_SCHEDULE["alert-overdue"] = {  # cases not accepted within ACCEPTANCE_ALERT_MINUTES: e-mail once
    "task": "assist_portal.notifications.tasks.alert_overdue",
    "schedule": float(os.environ.get("ACCEPTANCE_ALERT_CHECK_SECONDS", "300")),
}
CELERY_BEAT_SCHEDULE["purge-delivered"] = {
    "task": "assist_portal.notifications.tasks.purge_delivered",
    "schedule": 24 * 3600.0,
}
# Readiness (/readyz, docs/operations.md): every worker writes a heartbeat row every HEARTBEAT_SECONDS and beat
# schedules the scheduler's; a row older than three periods counts as dead. A pending delivery due more than
# READYZ_MAX_DELIVERY_LAG_SECONDS ago without being sent makes the product "not ready".
HEARTBEAT_SECONDS = float(os.environ.get("HEARTBEAT_SECONDS", "15"))
HEARTBEAT_STALE_SECONDS = 3 * HEARTBEAT_SECONDS
READYZ_MAX_DELIVERY_LAG_SECONDS = float(os.environ.get("READYZ_MAX_DELIVERY_LAG_SECONDS", "600"))
READYZ_QUEUES = sorted({CELERY_TASK_DEFAULT_QUEUE, *(r["queue"] for r in CELERY_TASK_ROUTES.values())})
READYZ_SCHEDULER = True
CELERY_BEAT_SCHEDULE["scheduler-heartbeat"] = {
    "task": "assist_portal.health.tasks.scheduler_heartbeat",
    "schedule": HEARTBEAT_SECONDS,
    "options": {"expires": 2 * HEARTBEAT_SECONDS},  # a backlog of stale beats is dropped, not replayed
}
PATIENT_DATA_RETENTION_DAYS = int(os.environ.get("PATIENT_DATA_RETENTION_DAYS", "90"))
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# HER-SYS WebAPI (the sandbox by default)
HERSYS_API_URL = os.environ.get("HERSYS_API_URL", "https://127.0.0.1:8443")
HERSYS_CLIENT_ID = os.environ.get("HERSYS_CLIENT_ID", "hersys-assist")
HERSYS_CLIENT_SECRET = os.environ.get("HERSYS_CLIENT_SECRET", "sandbox-secret")
HERSYS_PKI_DIR = Path(os.environ.get("HERSYS_PKI_DIR", VAR_DIR / "pki"))
HERSYS_TIMEOUT_SECONDS = float(os.environ.get("HERSYS_TIMEOUT_SECONDS", "10"))
# Retry for a day at most (backoff capped at DELIVERY_BACKOFF_CAP), then dead-letter for people to act on.
DELIVERY_RETRY_WINDOW_SECONDS = int(os.environ.get("DELIVERY_RETRY_WINDOW_SECONDS", str(24 * 3600)))
DELIVERY_MAX_ATTEMPTS = int(os.environ.get("DELIVERY_MAX_ATTEMPTS", "0"))  # 0: only the time window limits
DELIVERY_LEASE_SECONDS = int(os.environ.get("DELIVERY_LEASE_SECONDS", "120"))
DELIVERY_SWEEP_GRACE_SECONDS = float(os.environ.get("DELIVERY_SWEEP_GRACE_SECONDS", "30"))
DELIVERY_BACKOFF_BASE = float(os.environ.get("DELIVERY_BACKOFF_BASE", "2"))
DELIVERY_BACKOFF_CAP = float(os.environ.get("DELIVERY_BACKOFF_CAP", "300"))
# A delivery pending this long is shown as delayed (not 送信中 / 送信待ち) and people are offered the fax; before that
# advice, HER-SYS is asked once whether it already holds the revision (issue 12).
DELIVERY_DELAYED_SECONDS = float(os.environ.get("DELIVERY_DELAYED_SECONDS", "600"))
QUESTIONNAIRE_CANONICAL = "http://hersys-assist.jp/fhir/Questionnaire/hersys-covid19"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}

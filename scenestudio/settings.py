"""One settings module; every deployment difference comes from the environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _env_value(name: str) -> str | None:
    # An empty variable (`FOO=` in an env file) means "not set", not a value to parse.
    value = os.environ.get(name, "").strip()
    return value or None


def env_bool(name: str, default: bool) -> bool:
    value = _env_value(name)
    if value is None:
        return default
    if value.lower() not in _TRUE | _FALSE:
        # A typo ("ture") must not silently turn a setting off.
        raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (true/false, yes/no, on/off, 1/0)")
    return value.lower() in _TRUE


def env_int(name: str, default: int) -> int:
    value = _env_value(name)
    try:
        return default if value is None else int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number") from None


def env_float(name: str, default: float) -> float:
    value = _env_value(name)
    try:
        return default if value is None else float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
TESTING = "pytest" in sys.modules

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
# What projects' own provider keys are sealed with (generation/credentials/vault.py): comma-separated, the
# first seals and every one unseals, so a rotation puts the new secret first. Empty: derived from SECRET_KEY.
PROVIDER_KEYS_SECRETS = env_list("PROVIDER_KEYS_SECRETS", "")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Before channels, so generation's runworker (which also scans for orphan runs) wins over channels' own.
    "projects",
    "generation",
    "channels",
    # Automation and operations (issue 16): the JSON API, webhooks, health checks and metrics.
    "ninja",
    "api",
    "webhooks",
    "ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "scenestudio.csp.StudioCSPMiddleware",
]

# Pages load only the studio's own scripts, styles, images and sockets: no inline script or style, so
# markup that slipped past escaping still cannot run. Images and downloads get a stricter policy of their
# own (projects.images.FILE_CSP), which this middleware leaves in place.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": ["'self'"],  # plus this host's ws:/wss: origin, added per request
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

ROOT_URLCONF = "scenestudio.urls"
ASGI_APPLICATION = "scenestudio.asgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        # Persistent by default: every database_sync_to_async call closes connections past their age, so
        # with 0 the generation worker reopened a connection for nearly every write (3 per scene).
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the generation worker write while pages read.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not shared-cache memory (which locks whole tables), so tests see real SQLite concurrency.
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}

REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "generation.live.layers.RetryingPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]
# Failed logins allowed per username and address before that pair is locked out for the window.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60)
if REDIS_URL:
    # Shared by every process, so the login limit holds across several Daphnes.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "scenestudio",
        }
    }

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "static")))
# Daphne serves no files itself; WhiteNoise serves static files (from the finders while developing).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
# Project images are private: they are served by a view that checks membership, never from MEDIA_URL.
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media-not-served/"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "login"
# Invitations are mailed only when an email backend is configured; the link is always shown to copy.
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "studio@localhost")
INVITATION_EMAIL = bool(env("EMAIL_BACKEND") or env("EMAIL_HOST"))
LOGIN_REDIRECT_URL = "project_list"
LOGOUT_REDIRECT_URL = "login"

# Upload limits for character reference images.
REFERENCE_MAX_BYTES = env_int("REFERENCE_MAX_BYTES", 8 * 1024 * 1024)
REFERENCE_MAX_PIXELS = env_int("REFERENCE_MAX_PIXELS", 4096)
STORY_MAX_BYTES = env_int("STORY_MAX_BYTES", 2 * 1024 * 1024)
# A Scene Studio ZIP brought back in (Import story page): its size, unpacked too, and each image's side.
STUDIO_ZIP_MAX_BYTES = env_int("STUDIO_ZIP_MAX_BYTES", 200 * 1024 * 1024)
STUDIO_ZIP_MAX_PIXELS = env_int("STUDIO_ZIP_MAX_PIXELS", 8192)
# Caps that keep one import from locking the studio: scenes a project may hold, characters an import creates.
PROJECT_MAX_SCENES = env_int("PROJECT_MAX_SCENES", 1000)
IMPORT_MAX_NEW_CHARACTERS = env_int("IMPORT_MAX_NEW_CHARACTERS", 200)
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    # The console handler sits on the root logger, not on "generation": Daphne's CLI (runstudio) calls
    # logging.basicConfig(), which adds a second root handler unless the root has one already, and then
    # every generation line was printed twice (once by each handler).
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "generation": {"level": env("GENERATION_LOG_LEVEL", "INFO")},
        # Django's records reach the console through the root too, instead of its own debug-only handler.
        "django": {"handlers": [], "level": "INFO"},
    },
}

if TESTING:
    # Password hashing dominates test time; the hasher itself is Django's concern, not ours.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- Generation -----------------------------------------------------------------------------------
# The provider a project uses unless it picks its own; "sketch" works offline.
GENERATION_PROVIDER = env("PROVIDER", "sketch")
# Provider credentials and endpoints come only from the environment, never from a committed file.
GENERATION_PROVIDERS = {
    "openai": {
        "api_key": env("OPENAI_API_KEY"),
        "base_url": env("OPENAI_BASE_URL", "https://api.openai.com"),
    },
    "gemini": {
        "api_key": env("GEMINI_API_KEY"),
        "base_url": env("GEMINI_BASE_URL", "https://generativelanguage.googleapis.com/v1beta"),
    },
    "comfyui": {
        "base_url": env("COMFYUI_URL", "http://127.0.0.1:8188"),
        "workflow_path": env("COMFYUI_WORKFLOW"),
    },
    "a1111": {
        "base_url": env("A1111_URL", "http://127.0.0.1:7860"),
        "username": env("A1111_USERNAME"),
        "password": env("A1111_PASSWORD"),
    },
    # Unset FAKE_PROVIDER_URL: the studio starts its own fake server (20 requests/minute) in-process.
    "fake": {"base_url": env("FAKE_PROVIDER_URL"), "flavor": env("FAKE_PROVIDER_FLAVOR", "openai")},
    # Knobs for browser tests and benchmarks against a live server; unset ones keep SimSettings' defaults
    # (the factory drops empty and None values).
    "simulated": {
        "latency": env_float("SIMULATED_LATENCY", 1.0),
        "requests_per_minute": env_int("SIMULATED_RPM", 0) or None,
        "max_concurrent": env_int("SIMULATED_MAX_CONCURRENT", 0) or None,
        "transient_rate": env_float("SIMULATED_TRANSIENT_RATE", 0.0),
        "safety_word": env("SIMULATED_SAFETY_WORD") or None,
        "send_retry_after": env_bool("SIMULATED_SEND_RETRY_AFTER", True),
    },
    "sketch": {},
}
# The quota window the shared (Redis) limiter mirrors; providers count requests per minute.
GENERATION_RATE_WINDOW_SECONDS = env_float("GEN_RATE_WINDOW_SECONDS", 60.0)
# Engine tunables (a run may override any of them); see generation/engine/config.py for their meaning.
GENERATION_ENGINE = {
    "start_concurrency": env_int("GEN_START_CONCURRENCY", 5),
    "min_concurrency": env_int("GEN_MIN_CONCURRENCY", 1),
    # A safety ceiling: the working point comes from the quota and the observed latency (r x L).
    "max_concurrency": env_int("GEN_MAX_CONCURRENCY", 128),
    "small_batch": env_int("GEN_SMALL_BATCH", 20),
    "requests_per_minute": env_float("GEN_REQUESTS_PER_MINUTE", 0) or None,
    "limiter": env("GEN_LIMITER", "window"),
    "max_attempts": env_int("GEN_MAX_ATTEMPTS", 3),
    "backoff_base": env_float("GEN_BACKOFF_BASE", 2.0),
    "quota_wait_default": env_float("GEN_QUOTA_WAIT_DEFAULT", 15.0),
    "quota_wait_max_total": env_float("GEN_QUOTA_WAIT_MAX_TOTAL", 600.0),
    "grace_timeout": env_float("GEN_GRACE_TIMEOUT", 30.0),
    "request_timeout": env_float("GEN_REQUEST_TIMEOUT", 90.0),
    "rate_window_seconds": GENERATION_RATE_WINDOW_SECONDS,
}
# A spent per-day quota parks a run until the provider's reset (Gemini: midnight Pacific), else midnight
# in this zone; GEN_DAILY_RESET_SECONDS shortens the wait (tests, demos on the fake server).
GENERATION_DAILY_RESET_SECONDS = env_float("GEN_DAILY_RESET_SECONDS", 0) or None
GENERATION_DAILY_RESET_TZ = env("GEN_DAILY_RESET_TZ", "UTC")
# How often a batch-mode run asks the provider whether its batch is done.
GENERATION_BATCH_POLL_SECONDS = env_float("GEN_BATCH_POLL_SECONDS", 30.0)

# --- Automation and operations: the JSON API, webhooks, health checks, metrics ---------------------
# Requests a minute one API token (or one browser session) may make; the excess gets 429.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 600)
# Webhook URLs on loopback or private networks are refused unless this is on (tests, a private network).
WEBHOOKS_ALLOW_PRIVATE = env_bool("WEBHOOKS_ALLOW_PRIVATE", False)
WEBHOOKS_MAX_ATTEMPTS = env_int("WEBHOOKS_MAX_ATTEMPTS", 8)
# The first retry waits this long, then it doubles (10 s, 20 s, 40 s, ... about 21 minutes in all).
WEBHOOKS_BACKOFF_SECONDS = env_float("WEBHOOKS_BACKOFF_SECONDS", 10.0)
WEBHOOKS_TIMEOUT_SECONDS = env_float("WEBHOOKS_TIMEOUT_SECONDS", 10.0)
WEBHOOKS_POLL_SECONDS = env_float("WEBHOOKS_POLL_SECONDS", 1.0)
# /metrics answers a request with `Authorization: Bearer <METRICS_TOKEN>`, or one from these networks.
METRICS_TOKEN = env("METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,::1/128")
# /readyz, when scaled (REDIS_URL set): at least one worker must have scanned within this many seconds.
WORKER_FRESH_SECONDS = env_float("WORKER_FRESH_SECONDS", 30.0)
# The event loop `studioworker` runs on: "uvloop" (its loop, sockets and callbacks in C: a run's own
# hand-offs cost the worker less CPU) or "asyncio", the standard library's.
WORKER_EVENT_LOOP = env("WORKER_EVENT_LOOP", "uvloop")
# "json": one JSON object a line on the console (with run, project and scene ids in generation lines).
LOG_FORMAT = env("LOG_FORMAT", "plain")
LOGGING["filters"] = {"run_context": {"()": "ops.logs.RunContext"}}
LOGGING["handlers"]["console"]["filters"] = ["run_context"]
LOGGING["loggers"]["webhooks"] = {"handlers": ["console"], "level": env("WEBHOOKS_LOG_LEVEL", "INFO")}
if LOG_FORMAT == "json":
    LOGGING["formatters"]["json"] = {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
    }
    LOGGING["handlers"]["console"]["formatter"] = "json"

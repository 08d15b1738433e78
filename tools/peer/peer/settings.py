"""The SimpleJWT peer that scripts/peer-bench measures refreshd beside: a Django project with nothing
but djangorestframework-simplejwt's token views, rotation and blacklist on, on PostgreSQL.

Configured as a production deployment would be where that changes the cost of a refresh (DEBUG off,
persistent database connections), and otherwise left at the defaults. It reads the database
(libpq's PG* variables) and the key (PEER_SECRET_KEY) from the environment the script sets; it is a
benchmark fixture, not a deployment.
"""
import os

SECRET_KEY = os.environ["PEER_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    # The blacklist: every rotation records the new token and blacklists the old one here.
    "rest_framework_simplejwt.token_blacklist",
    # This project's own management command (bench_users).
    "peer",
]
# CommonMiddleware sets Content-Length; nothing else a token endpoint needs.
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "peer.urls"
WSGI_APPLICATION = "peer.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        # libpq's own variables, which the script's psql reads too.
        "NAME": os.environ["PGDATABASE"],
        "USER": os.environ.get("PGUSER", "postgres"),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        # Django's default (0) opens a PostgreSQL connection per request, which no tuned deployment
        # does: each worker keeps its connection, as refreshd keeps its Redis connections.
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": True,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

SIMPLE_JWT = {
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}

# Errors only: a log line per request would be part of what is measured.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "ERROR"},
}

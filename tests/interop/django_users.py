"""Makes what a real Django project holds, for refreshd's import interop tests.

Reads a JSON object on standard input and prints one JSON object:

  {"password": "<text>",                          # hashed by each hasher below
   "users": [{"username": "alice", "password": "pw" or null, "is_active": true}, ...]}

Answers {"hashes": {"pbkdf2_sha256": "<Django's make_password>", ...},
         "dumpdata": [<manage.py dumpdata auth.user, parsed>]}

Django runs in this process on a SQLite database in a temporary directory, with every hasher
refreshd verifies listed in PASSWORD_HASHERS; users are made with create_user (a null password is
Django's unusable one) and written out by the real dumpdata command.
"""

import io
import json
import sys
import tempfile

import django
from django.conf import settings

request = json.load(sys.stdin)
db_dir = tempfile.mkdtemp(prefix="refreshd-django-")

settings.configure(
    SECRET_KEY="refreshd-interop",
    USE_TZ=True,
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": f"{db_dir}/db.sqlite3"}},
    PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.BCryptPasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ],
)
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.core.management import call_command  # noqa: E402

hashes = {
    name: make_password(request["password"], hasher=name)
    for name in ["pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "bcrypt", "scrypt"]
}

call_command("migrate", verbosity=0)
for u in request.get("users", []):
    get_user_model().objects.create_user(
        username=u["username"], password=u["password"], is_active=u.get("is_active", True)
    )
out = io.StringIO()
call_command("dumpdata", "auth.user", stdout=out)

json.dump({"hashes": hashes, "dumpdata": json.loads(out.getvalue())}, sys.stdout)

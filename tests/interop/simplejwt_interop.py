"""Drives the real djangorestframework-simplejwt for refreshd's interop tests.

Reads a JSON object on standard input and prints one JSON object:

  {"key": "<SECRET_KEY>", "alg": "HS256", "user_id": 42, "username": "alice",
   "signing_key": "<PEM>", "verifying_key": "<PEM>",   # for RS256/ES256 only
   "mint": ["str", "int", "int-2"],             # refresh tokens to mint with SimpleJWT
   "claims": {"name": "...", "roles": [...]},    # custom claims put in each minted token
   "sliding": true,                              # also mint a SlidingToken
   "check": {"name": "<token>", ...}}           # tokens minted elsewhere, to validate here

Answers {"minted": {"str": {"refresh", "access"}, "int": {...}, "sliding": "<token>"},
         "checked": {"name": {"ok": true, "type": "access", "claims": {...},
                              "authenticated_user_id": 42} or {"ok": false, "error": "..."}}}

Django runs in this process with an in-memory SQLite database holding one user with the given id,
so SimpleJWT's JWTAuthentication can look the user up as it would in a real project.
"""

import json
import sys
from datetime import timedelta

import django
from django.conf import settings

request = json.load(sys.stdin)

settings.configure(
    SECRET_KEY=request["key"],
    USE_TZ=True,
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "rest_framework",
        "rest_framework_simplejwt",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    SIMPLE_JWT={
        "ALGORITHM": request["alg"],
        # SimpleJWT's default SIGNING_KEY is settings.SECRET_KEY; asymmetric algorithms take a
        # PEM private key here and the public key in VERIFYING_KEY.
        "SIGNING_KEY": request.get("signing_key") or request["key"],
        "VERIFYING_KEY": request.get("verifying_key"),
        "USER_ID_CLAIM": "user_id",
        "USER_ID_FIELD": "id",
        "ACCESS_TOKEN_LIFETIME": timedelta(minutes=5),
        "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    },
)
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from rest_framework.test import APIRequestFactory  # noqa: E402
from rest_framework_simplejwt.authentication import JWTAuthentication  # noqa: E402
from rest_framework_simplejwt.tokens import (  # noqa: E402
    AccessToken,
    RefreshToken,
    SlidingToken,
    UntypedToken,
)

call_command("migrate", verbosity=0)
user = get_user_model().objects.create_user(
    id=request["user_id"], username=request["username"], password="unused"
)

minted = {}
for form in request.get("mint", []):
    refresh = RefreshToken.for_user(user)  # writes user_id as a string (5.5)
    if form.split("-")[0] == "int":  # "int", or "int-<anything>" for another one
        refresh["user_id"] = user.id  # as 5.4 and earlier wrote it
    for claim, value in request.get("claims", {}).items():  # a custom TokenObtainPairSerializer
        refresh[claim] = value
    minted[form] = {"refresh": str(refresh), "access": str(refresh.access_token)}

if request.get("sliding"):
    minted["sliding"] = str(SlidingToken.for_user(user))

checked = {}
for name, token in request.get("check", {}).items():
    try:
        token_type = UntypedToken(token)["token_type"]
        validated = (AccessToken if token_type == "access" else RefreshToken)(token)
        result = {"ok": True, "type": token_type, "claims": dict(validated.payload)}
        if token_type == "access":
            http = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}")
            authenticated, _ = JWTAuthentication().authenticate(http)
            result["authenticated_user_id"] = authenticated.id
        checked[name] = result
    except Exception as e:  # the test reads the refusal
        checked[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"}

json.dump({"minted": minted, "checked": checked}, sys.stdout)

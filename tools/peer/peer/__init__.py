"""The SimpleJWT peer project that scripts/peer-bench serves with gunicorn."""

"""`manage.py bench_users N PREFIX PASSWORD`: creates the users the benchmark logs in,
PREFIX0 to PREFIX{N-1}, all with one password hashed once (hashing is not what is measured)."""
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the benchmark's users, all with one password."

    def add_arguments(self, parser):
        parser.add_argument("count", type=int)
        parser.add_argument("prefix")
        parser.add_argument("password")

    def handle(self, count, prefix, password, **options):
        User = get_user_model()
        hashed = make_password(password)
        User.objects.bulk_create(
            User(username=f"{prefix}{i}", password=hashed) for i in range(count)
        )
        self.stdout.write(f"created {count} users")

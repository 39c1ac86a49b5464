"""`make test` without local servers: with_services starts throw-away PostgreSQL and Redis, and stops them."""
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

PROBE = """
import os, psycopg, redis
db = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
with psycopg.connect(db) as c:
    print("pg", c.execute("select 1").fetchone()[0])
print("redis", redis.Redis.from_url(os.environ["REDIS_URL"]).ping())
print("urls", os.environ["DATABASE_URL"], os.environ["REDIS_URL"])
"""


def test_throwaway_servers_start_and_stop():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["WITH_SERVICES_OWN"] = "1"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "with_services.py"), "--", sys.executable, "-c", PROBE],
                       env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "pg 1" in r.stdout and "redis True" in r.stdout
    urls = r.stdout.split("urls", 1)[1]
    assert ":5432/" not in urls and ":6379/" not in urls
    port = int(urls.split("redis://127.0.0.1:", 1)[1].split("/", 1)[0])
    import socket

    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # stopped afterwards

"""docker-compose.yml (no Docker engine here: the YAML is checked as compose reads it, merge keys included):
every service comes back when it exits, web and the workers have healthchecks that match what they run."""
import re

import pytest
import yaml

from tests.conftest import ROOT

LONG_RUNNING_POLICIES = {"unless-stopped", "always"}


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]


def test_every_service_has_a_restart_policy(services):
    assert services, "no services"
    missing = [name for name, svc in services.items() if not svc.get("restart")]
    assert not missing, f"services without a restart policy: {missing}"
    for name, svc in services.items():
        if name == "migrate":  # a one-shot job: restarted until it succeeds, never re-run after success
            assert svc["restart"] == "on-failure"
        else:
            assert svc["restart"] in LONG_RUNNING_POLICIES, (name, svc["restart"])


def test_web_healthcheck_probes_healthz(services):
    test = " ".join(services["web"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/healthz" in test


@pytest.mark.parametrize("service", ["worker", "worker-hersys"])
def test_worker_healthcheck_checks_its_own_heartbeat(services, service):
    svc = services[service]
    node = re.search(r"-n (\S+)@%h", svc["command"]).group(1)  # the Celery node name the worker beats under
    test = svc["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    assert f"manage.py heartbeat_check --worker {node}@$$HOSTNAME" in test[1]
    assert svc["healthcheck"]["interval"] and svc["healthcheck"]["start_period"]


def test_app_services_wait_for_a_healthy_redis(services):
    assert services["redis"]["healthcheck"]["test"][-1] == "ping"
    assert services["migrate"]["depends_on"]["redis"] == {"condition": "service_healthy"}

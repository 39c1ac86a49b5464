"""`make run`'s embedded default: the filesystem broker (no server) and the default thread pool (ADR 0021) carry a
confirmation to HER-SYS through a real `celery worker` process."""
import pytest

from assist_portal.delivery.models import Delivery
from tests.portal.conftest import confirm_demo_patient, wait_for

pytestmark = [pytest.mark.integration]


@pytest.fixture
def filesystem_broker(tmp_path):
    """This process publishes onto the folders a worker started with REDIS_URL unset and this var dir reads."""
    from kombu import pools

    from assist_portal.celery import app

    var = tmp_path / "var"
    folders = {sub: var / "broker" / sub for sub in ("out", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    original = (app.conf.broker_url, app.conf.broker_transport_options)

    def point(url, options):
        pools.reset()
        app.conf.broker_url, app.conf.broker_transport_options = url, options
        app._pool = None
        app.amqp._producer_pool = None

    point("filesystem://", {"data_folder_in": str(folders["out"]), "data_folder_out": str(folders["out"]),
                            "processed_folder": str(folders["processed"]), "control_folder": str(folders["control"]),
                            "store_processed": False})
    yield var
    point(*original)


def test_the_embedded_broker_and_the_thread_pool_deliver(filesystem_broker, celery_worker_factory, sandbox,
                                                         hospital, physician, published):
    worker = celery_worker_factory(env={"REDIS_URL": "", "HERSYS_VAR_DIR": str(filesystem_broker)}, concurrency=2)
    published("2021-03")
    _, delivery = confirm_demo_patient(hospital, physician)  # enqueued on commit (autocommit here)

    accepted = wait_for(lambda: Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.ACCEPTED).first(),
                        timeout=60)
    assert accepted.receipt_id.startswith("HS-")
    assert len(sandbox.received()["notifications"]) == 1
    assert worker.proc.poll() is None
    with open(worker.log.name, encoding="utf-8", errors="replace") as log:
        banner = log.read()
    assert "filesystem" in banner and "(thread)" in banner  # the embedded broker, the thread pool

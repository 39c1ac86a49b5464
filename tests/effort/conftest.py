"""The effort measurement uses the portal's fixtures (hospital, users with TOTP, the sandbox, Celery workers)."""
from tests.portal.conftest import (  # noqa: F401
    celery_worker_factory,
    clerk,
    hospital,
    make_user,
    physician,
    published,
    sandbox,
    sandbox_server,
)

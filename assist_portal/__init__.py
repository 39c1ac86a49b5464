"""The Django project. The Celery app is loaded with it (the usual Django + Celery layout), so shared tasks bind
to it in every process — web, workers, beat — without any app importing the Celery module."""
from .celery import app as celery_app

__all__ = ("celery_app",)

"""URLconf used only while benchmarking: the product's URLs plus the baseline view."""
from django.urls import include, path

from .baseline import plain_form

urlpatterns = [
    path("__bench__/plain-form/", plain_form, name="bench-plain-form"),
    path("", include("assist_portal.urls")),
]

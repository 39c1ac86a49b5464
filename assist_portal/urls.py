from django.shortcuts import redirect
from django.urls import include, path

urlpatterns = [
    path("", lambda request: redirect("notifications:list")),
    path("accounts/", include("assist_portal.accounts.urls")),
    path("api/", include("assist_portal.api.urls")),
    path("central/", include("assist_portal.forms.urls")),
    path("", include("assist_portal.notifications.urls")),
]

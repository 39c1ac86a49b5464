from django.urls import path

from . import views

app_name = "hospitaladmin"
urlpatterns = [
    path("staff/", views.staff, name="staff"),
    path("settings/", views.settings_page, name="settings"),
    path("keys/", views.keys, name="keys"),
    path("raw-push/", views.raw_push, name="raw-push"),
    path("effort/", views.effort, name="effort"),
]

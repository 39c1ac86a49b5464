from django.urls import path

from . import views

app_name = "hospitaladmin"
urlpatterns = [
    path("staff/", views.staff, name="staff"),
]

from django.urls import path

from . import views

app_name = "formdefs"
urlpatterns = [
    path("definitions/", views.definition_list, name="list"),
    path("deliveries/", views.delivery_monitor, name="deliveries"),
    path("deliveries/<int:pk>/redrive/", views.delivery_redrive_view, name="redrive"),
]

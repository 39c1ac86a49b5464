from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from . import views

app_name = "api"
urlpatterns = [
    path("v1/extracts", views.extract_push, name="extract-push"),
    path("v1/notifications", views.notification_feed, name="notification-feed"),
    path("v1/mapping", views.mapping_tables, name="mapping-tables"),
    path("v1/notifications/<uuid:uuid>/document", views.notification_document, name="notification-document"),
    path("v1/notifications/<uuid:uuid>/document.pdf", views.notification_pdf, name="notification-pdf"),
    path("schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
]

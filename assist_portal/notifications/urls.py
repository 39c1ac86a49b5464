from django.urls import path

from . import views

app_name = "notifications"
urlpatterns = [
    path("notifications/", views.notification_list, name="list"),
    path("notifications/new/", views.notification_start, name="start"),
    path("notifications/<uuid:uuid>/", views.notification_form, name="form"),
    path("notifications/<uuid:uuid>/check", views.notification_check, name="check"),
    path("notifications/<uuid:uuid>/review/", views.notification_review, name="review"),
    path("notifications/<uuid:uuid>/autosave", views.notification_autosave, name="autosave"),
    path("notifications/<uuid:uuid>/status/", views.notification_status_page, name="status"),
    path("notifications/<uuid:uuid>/status.json", views.notification_status_json, name="status-json"),
    path("notifications/<uuid:uuid>/fax/", views.notification_fax, name="fax"),
    path("notifications/<uuid:uuid>/print/", views.notification_print, name="print"),
    path("notifications/<uuid:uuid>/pdf/", views.notification_pdf, name="pdf"),
    path("launch/<str:token>/", views.launch, name="launch"),
    path("demo/", views.demo_launcher, name="demo"),
    path("demo/launch/", views.demo_launch, name="demo-launch"),
]

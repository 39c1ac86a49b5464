from django.urls import path

from . import audit_views, effort_views, hospital_views, views

app_name = "central"
urlpatterns = [
    path("definitions/", views.definition_list, name="list"),
    path("definitions/new/", views.definition_new, name="new"),
    path("definitions/<int:pk>/", views.definition_detail, name="detail"),
    path("definitions/<int:pk>/rename/", views.definition_rename, name="rename"),
    path("definitions/<int:pk>/items/add/", views.item_edit, name="item-add"),
    path("definitions/<int:pk>/items/<str:item_id>/", views.item_edit, name="item-edit"),
    path("definitions/<int:pk>/rules/", views.rules_edit, name="rules"),
    path("definitions/<int:pk>/preview/", views.definition_preview, name="preview"),
    path("definitions/<int:pk>/publish/", views.definition_publish_view, name="publish"),
    path("definitions/<int:pk>/questionnaire.json", views.definition_questionnaire, name="questionnaire"),
    path("users/", views.user_admin, name="users"),
    path("hospitals/", views.hospital_list, name="hospitals"),
    path("hospitals/<int:pk>/default-form/", views.hospital_default_form, name="hospital-default-form"),
    path("hospitals/<int:pk>/mapping/", views.hospital_mapping, name="hospital-mapping"),
    path("hospitals/new/", hospital_views.hospital_new, name="hospital-new"),
    path("hospitals/<int:pk>/", hospital_views.hospital_detail, name="hospital-detail"),
    path("hospitals/<int:pk>/active/", hospital_views.hospital_active, name="hospital-active"),
    path("hospitals/<int:pk>/assign/", hospital_views.hospital_assign, name="hospital-assign"),
    path("hospitals/<int:pk>/keys/", hospital_views.hospital_keys, name="hospital-keys"),
    path("deliveries/", views.delivery_monitor, name="deliveries"),
    path("deliveries/<int:pk>/redrive/", views.delivery_redrive_view, name="redrive"),
    path("deliveries/<int:pk>/resume/", views.delivery_resume_view, name="resume"),
    path("audit.csv", audit_views.audit_export, name="audit-export"),
    path("effort/", effort_views.effort, name="effort"),
]

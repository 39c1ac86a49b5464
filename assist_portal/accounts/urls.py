from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("home/", views.home, name="home"),
    path("login/", views.login_view, name="login"),
    path("enrol/", views.enrol_view, name="enrol"),
    path("login/key/", views.login_key_view, name="login_key"),
    path("login/key/begin/", views.login_key_begin, name="login_key_begin"),
    path("login/key/complete/", views.login_key_complete, name="login_key_complete"),
    path("keys/", views.keys_view, name="keys"),
    path("keys/register/begin/", views.key_register_begin, name="key_register_begin"),
    path("keys/register/complete/", views.key_register_complete, name="key_register_complete"),
    path("password/", views.password_change_view, name="password_change"),
    path("logout/", views.logout_view, name="logout"),
]

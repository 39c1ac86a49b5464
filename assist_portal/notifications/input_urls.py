"""/input/…: the as-you-type endpoints of ``input_views`` (namespace ``input``)."""
from django.urls import path

from . import input_views

app_name = "input"
urlpatterns = [
    path("date", input_views.input_date, name="date"),
    path("kana", input_views.input_kana, name="kana"),
    path("postal", input_views.input_postal, name="postal"),
]

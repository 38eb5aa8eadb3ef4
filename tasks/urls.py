from django.urls import path

from tasks import views

urlpatterns = [
    path("", views.home, name="home"),
    path("tasks/start/", views.start, name="start-task"),
]

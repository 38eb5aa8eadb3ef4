from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from notifications.health import healthz
from notifications.views import metrics

urlpatterns = [
    path("", include("tasks.urls")),
    path("api/notifications/", include("notifications.urls")),
    path("api/tasks/", include("notifications.celery.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # Where load balancers and Prometheus look; also under api/notifications/.
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
]

from django.urls import path

from notifications.consumers import NotificationConsumer

# Also read by {% notifications_widget %}, which tells the browser where to connect.
WEBSOCKET_PATH = "ws/notifications/"

websocket_urlpatterns = [
    path(WEBSOCKET_PATH, NotificationConsumer.as_asgi()),
]

"""The reference: a notification consumer written the way the common tutorials do.

One group per user joined in connect(), a handler per event type, no
persistence, and its own channel layer with the tutorial's settings. The
benchmark measures it beside ours so that every figure is also a ratio.
"""

import json

from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

ALIAS = "tutorial"


def group_name(user_id: int) -> str:
    return f"user_{user_id}"


class TutorialConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = ALIAS

    async def connect(self):
        user = self.scope["user"]
        if user.is_anonymous:
            await self.close()
            return
        self.group_name = group_name(user.id)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group_name"):
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def send_notification(self, event):
        await self.send(text_data=json.dumps(event["message"]))


def send_notification(user_id: int, message: dict) -> None:
    """The tutorial's publisher: one async_to_sync(group_send) per message."""
    layer = get_channel_layer(ALIAS)
    async_to_sync(layer.group_send)(
        group_name(user_id), {"type": "send_notification", "message": message}
    )

"""Sockets on the project's real ASGI stack (origin check, auth, consumer), and
bare channel-layer listeners joined to a user's group."""

import asyncio

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from config.asgi import application
from notifications.groups import user_group

ORIGIN = (b"origin", b"http://127.0.0.1")
# The Host a browser sends with that Origin: a cookie socket must come from the
# very origin it was served on (notifications/auth.py).
HOST = (b"host", b"127.0.0.1")


@sync_to_async
def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_socket(
    user=None, path="/ws/notifications/", origin=ORIGIN, cookie=None, host=HOST, app=application
):
    """(communicator, connected, close code); `user` signs in by session cookie,
    or `cookie` is sent as the Cookie header."""
    headers = [host, origin] if origin else [host]
    if user is not None:
        cookie = await session_cookie(user)
    if cookie is not None:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(app, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


class Listener:
    """A channel joined to a user's group, as a consumer would be."""

    def __init__(self, user_id: int) -> None:
        self.layer = get_channel_layer()
        self.channel = async_to_sync(self.layer.new_channel)()
        async_to_sync(self.layer.group_add)(user_group(user_id), self.channel)

    def receive(self, timeout: float = 5) -> dict:
        return self.receive_event(timeout)["message"]

    def receive_event(self, timeout: float = 5) -> dict:
        """The whole channel-layer event, with the recipient's `previous` id."""

        async def one():
            return await asyncio.wait_for(self.layer.receive(self.channel), timeout)

        return async_to_sync(one)()

    def receives_nothing(self, timeout: float = 0.5) -> bool:
        try:
            self.receive(timeout)
        except TimeoutError:
            return True
        return False

"""The product's application plus the tutorial consumer at ws/tutorial/, for the benchmark.

Both routes share one Daphne process and one Redis. Ours goes through the
product's own WebSocket stack (config.asgi: its session middleware and Origin
check); the tutorial's through channels' AuthMiddlewareStack and Origin check,
as the tutorials write it. Only that stack, the consumer and the channel layer differ.

`ws/floor/` and `GET /bench/floor/?bytes=N&phase=P` measure the floor under a
broadcast: the same server writing one prebuilt frame of N bytes to every
socket open there, with no channel layer, database or consumer in between.
"""

import gc
import json
import os
import time
from urllib.parse import parse_qs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from bench.tutorial import TutorialConsumer  # noqa: E402
from config.asgi import application as product  # noqa: E402  (sets Django up first)

tutorial = AllowedHostsOriginValidator(
    AuthMiddlewareStack(URLRouter([path("ws/tutorial/", TutorialConsumer.as_asgi())]))
)


# The `send` of every socket open at ws/floor/.
floor_sockets: set = set()


async def floor_socket(receive, send) -> None:
    """Accept, then only wait for the close: the least a server holds per socket."""
    await receive()  # websocket.connect
    floor_sockets.add(send)
    try:
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
    finally:
        floor_sockets.discard(send)


def floor_frame(size: int, phase: int) -> str:
    """A notification-shaped frame of `size` bytes, stamped now, as the clients record it."""
    frame = {"type": "notification", "data": {"bench": {"p": phase, "s": 0, "t": time.monotonic()}}}
    frame["pad"] = ""
    frame["pad"] = "x" * max(0, size - len(json.dumps(frame)))
    return json.dumps(frame)


async def floor_fire(scope, receive, send) -> None:
    """Write one frame to every floor socket, one after another, and say how long it took."""
    query = parse_qs(scope["query_string"].decode())
    frame = floor_frame(int(query["bytes"][0]), int(query["phase"][0]))
    began = time.monotonic()
    sockets = list(floor_sockets)
    for socket_send in sockets:
        await socket_send({"type": "websocket.send", "text": frame})
    body = json.dumps({"sockets": len(sockets), "seconds": time.monotonic() - began}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def websocket(scope, receive, send):
    if scope["path"] == "/ws/floor/":
        return await floor_socket(receive, send)
    app = tutorial if scope["path"] == "/ws/tutorial/" else product.application_mapping["websocket"]
    return await app(scope, receive, send)


async def http(scope, receive, send):
    if scope["path"] == "/bench/floor/":
        return await floor_fire(scope, receive, send)
    return await product.application_mapping["http"](scope, receive, send)


application = ProtocolTypeRouter({"http": http, "websocket": websocket})

if os.getenv("BENCH_TUTORIAL_GC"):
    # The tutorial's Daphne runs with CPython's default collector settings;
    # config.asgi tunes them for ours (the benchmark runs one Daphne per consumer).
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)

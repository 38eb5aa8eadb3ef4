"""A browser tab's notification client over a real WebSocket, for end-to-end tests.

It behaves like the JavaScript client: it remembers the newest notification id
it has seen (from `hello`, then from each notification) and reconnects with
`?after=<that id>`, backing off between attempts. Unlike the JavaScript client
it does not drop duplicates: it keeps every message, so a test sees them.
"""

import asyncio
import contextlib
import json
from collections.abc import Callable

import websockets

from tests.stack import Browserless, Stack

# Seconds between reconnection attempts: doubled after each failure, up to the cap.
FIRST_BACKOFF, MAX_BACKOFF = 0.1, 1.0


class Tab:
    def __init__(self, stack: Stack, session: Browserless, daphne: str = "daphne") -> None:
        self.url = stack.ws_url_of(daphne)
        self.headers = {"Cookie": session.cookie_header, "Origin": stack.http_url(daphne)}
        self.ws: websockets.ClientConnection | None = None
        self.last_id: int | None = None
        self.received: list[dict] = []

    @property
    def notification_ids(self) -> list[int]:
        """Ids of every notification received, in arrival order, duplicates included."""
        return [m["id"] for m in self.received if m["type"] == "notification"]

    async def connect(self) -> dict:
        """Open a socket, resuming after the newest id seen; returns the `hello`.

        Raises websockets.ConnectionClosed when the server closes it instead
        (its close code says why) and OSError when nothing listens.
        """
        query = "" if self.last_id is None else f"?after={self.last_id}"
        # An unbounded queue, as in a browser: with websockets' default, a full
        # queue stops reading the socket, so close() never sees the server's
        # close frame and waits for its timeout.
        self.ws = await websockets.connect(
            self.url + query, additional_headers=self.headers, max_queue=None
        )
        hello = await self.next()
        if hello["type"] != "hello":
            raise AssertionError(f"expected hello first, got {hello}")
        if self.last_id is None:
            self.last_id = hello["last_id"]
        return hello

    async def reconnect(self, attempts: int = 40) -> dict:
        """`connect()` until it succeeds, backing off between attempts; returns the `hello`."""
        backoff = FIRST_BACKOFF
        for _ in range(attempts - 1):
            try:
                return await self.connect()
            except (websockets.ConnectionClosed, OSError):
                # Backing off is the client's behaviour under test, as in the
                # browser, not a wait for the server to reach some state.
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
        return await self.connect()

    async def next(self, timeout: float = 10) -> dict:
        """The next message; raises websockets.ConnectionClosed when the socket closes."""
        message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.received.append(message)
        if message["type"] == "notification":
            self.last_id = max(self.last_id or 0, message["id"])
        return message

    async def until(self, predicate: Callable[[dict], bool], timeout: float = 30) -> list[dict]:
        """Messages up to and including the first one that satisfies `predicate`."""
        seen = []
        async with asyncio.timeout(timeout):
            while True:
                seen.append(await self.next(timeout))
                if predicate(seen[-1]):
                    return seen

    async def expect(self, predicate: Callable[[dict], bool], timeout: float = 30) -> dict:
        """The first message, received already or still to come, that satisfies `predicate`."""
        for message in self.received:
            if predicate(message):
                return message
        return (await self.until(predicate, timeout))[-1]

    async def wait_closed(self, timeout: float = 10) -> int | None:
        """Read until the server closes the socket; returns the close code."""
        with contextlib.suppress(websockets.ConnectionClosed):
            async with asyncio.timeout(timeout):
                while True:
                    await self.next(timeout)
        return self.ws.close_code

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def __aenter__(self) -> "Tab":
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

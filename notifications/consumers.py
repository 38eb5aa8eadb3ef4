"""The WebSocket endpoint: relays a user's notifications to their browser tabs."""

import asyncio
import json
import logging
from datetime import UTC, datetime
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from redis.exceptions import RedisError

from notifications import (
    daphne_patches,
    groups,
    inbox,
    limits,
    messages,
    metrics,
    progress_state,
    quota,
    reads,
    seen,
)
from notifications.auth import session_user
from notifications.conf import app_settings
from notifications.ratelimit import TokenBucket

log = logging.getLogger(__name__)

# Close codes a client acts on (Daphne passes only 1000 and 3000-4999).
CLOSE_UNAUTHENTICATED = 4401  # log in again; do not retry
CLOSE_UNAVAILABLE = 4503  # the server cannot reach Redis; retry later
CLOSE_RATE_LIMITED = 4008  # the client sent frames faster than allowed
CLOSE_TOO_MANY_SOCKETS = 4429  # the user has too many sockets open; close other tabs
# An oversized frame is closed with 1009 by the protocol layer (daphne_patches.py,
# uvicorn's ws_max_size), and by receive() under a server that let it through.
CLOSE_TOO_BIG = 1009


class SlowReader(Exception):
    """The server could not hand a message to the client in WS_SLOW_SECONDS."""


def bounded(send):
    """The server's `send`, failing with SlowReader when one call waits longer than
    WS_SLOW_SECONDS. Under a server that applies backpressure (uvicorn waits
    while the client's socket is full) this bounds a client that stopped
    reading; Daphne's send never waits (it buffers, and daphne_patches.py
    watches the buffer), so it is used as it is."""
    if daphne_patches.never_waits(send):
        return send

    async def send_within(message: dict) -> None:
        try:
            async with asyncio.timeout(app_settings.WS_SLOW_SECONDS):
                await send(message)
        except TimeoutError:
            raise SlowReader from None

    return send_within


def too_big(text_data: str | None, bytes_data: bytes | None) -> bool:
    """Over WS_MAX_MESSAGE_BYTES: a server with a larger frame limit let it through."""
    limit = app_settings.WS_MAX_MESSAGE_BYTES
    if bytes_data is not None:
        return len(bytes_data) > limit
    # A character is at most 4 bytes of UTF-8: encode only what could be over.
    return text_data is not None and len(text_data) * 4 > limit and len(text_data.encode()) > limit


class NotificationConsumer(AsyncWebsocketConsumer):
    """One browser tab of one signed-in user.

    The socket joins the user's group before it reads the database, so a
    notification saved during the replay of missed ones arrives through the
    group, and is dropped there when the replay already sent it: nothing is
    lost and nothing is sent twice.

    Ids on a socket only grow, so a client that resumes after the newest id it
    has seen skips nothing. Two processes may save a user's notifications in
    one order and send them in the other, and the channel layer may drop a
    message; each notification's event names the one before it, and when that
    one has not been sent yet the socket first catches up from the database.
    """

    user_id: int | None = None
    counted = False
    claimed = False  # counts against the user's NOTIFICATIONS_MAX_SOCKETS_PER_USER

    async def __call__(self, scope, receive, send) -> None:
        # Whatever ends the socket (a close, an error in a handler, the server
        # cancelling it at shutdown), it leaves its group and the gauge.
        try:
            await super().__call__(scope, receive, bounded(send))
        except SlowReader:
            # The client stopped reading; it catches up from the database when it reconnects.
            log.warning("closed a socket whose client stopped reading")
            metrics.inc("notifications_slow_sockets_closed_total")
        except RedisError as exc:
            # The channel layer lost its Redis (it died, or failed over to a
            # replica): this socket's group membership and queued messages may
            # be gone with it. Close with the code that tells the client to
            # reconnect, which replays what it missed from the database.
            log.warning("channel layer unavailable, closing the socket: %r", exc)
            metrics.inc("notifications_channel_layer_errors_total")
            await self.close(code=CLOSE_UNAVAILABLE)
        finally:
            await self._release()

    async def _release(self) -> None:
        """Leave the user's group and uncount the socket; safe to call twice."""
        if self.counted:
            self.counted = False
            metrics.inc("notifications_connected_sockets", -1)
        if self.claimed:
            self.claimed = False
            try:
                await quota.release_socket(
                    self.channel_layer, self.scope["user"].pk, self.channel_name
                )
            except Exception as exc:  # Redis away: the entry lapses by itself
                log.warning("could not uncount a socket: %r", exc)
        # A group is forgotten only once left: at shutdown Daphne cancels the
        # socket's task, perhaps mid-discard, and the `finally` above tries again.
        while self.groups:
            try:
                await self.channel_layer.group_discard(self.groups[0], self.channel_name)
            except Exception as exc:  # Redis away: the membership expires by itself
                log.warning("could not leave %s: %r", self.groups[0], exc)
            del self.groups[0]

    async def websocket_disconnect(self, message: dict) -> None:
        await self._release()
        await super().websocket_disconnect(message)

    async def connect(self) -> None:
        self.frames = TokenBucket(app_settings.WS_RATE, app_settings.WS_BURST)
        user = self.scope.get("user")
        if self.scope.get("redis_unavailable"):  # the ticket could not be checked
            await self._refuse_socket(CLOSE_UNAVAILABLE)
            return
        if user is None or not user.is_authenticated:
            await self._refuse_socket(CLOSE_UNAUTHENTICATED)
            return
        group = groups.user_group(user.pk)
        try:
            self.claimed = await quota.claim_socket(self.channel_layer, user.pk, self.channel_name)
            if self.claimed:
                await self.channel_layer.group_add(group, self.channel_name)
        except Exception as exc:
            log.warning("cannot join %s: %r", group, exc)
            metrics.inc("notifications_channel_layer_errors_total")
            await self._refuse_socket(CLOSE_UNAVAILABLE)
            return
        if not self.claimed:
            await self._refuse_socket(CLOSE_TOO_MANY_SOCKETS)
            return
        self.groups.append(group)  # left again on disconnect
        self.user_id = user.pk
        # Ids sent from the database whose events may still arrive.
        self.replayed: set[int] = set()
        await self.accept()
        self.counted = True
        metrics.inc("notifications_connected_sockets")
        await self._greet(self._after())

    async def _refuse_socket(self, code: int) -> None:
        # Accept, then close: a refused handshake reaches the browser as
        # 1006 with no code, indistinguishable from a network drop.
        await self.accept()
        await self.close(code=code)

    def _after(self) -> int | None:
        """The `?after=` id, or None when it is not a plain decimal number.

        Only ASCII digits count ("²".isdigit() is true, int("²") raises), and a
        huge number is clamped to the largest id rather than parsed in full.
        """
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        value = query.get("after", [""])[0]
        if not (value.isascii() and value.isdigit()):
            return None
        value = value.lstrip("0") or "0"
        return limits.INT_MAX if len(value) > 19 else min(int(value), limits.INT_MAX)

    @database_sync_to_async
    def _summary(self, after: int | None) -> tuple[int, int, list[dict], int, list[dict]]:
        replay, skipped = ([], 0)
        if after is not None:
            replay, skipped = inbox.missed(self.user_id, after, app_settings.REPLAY_LIMIT)
        unread, last_id = inbox.unread_and_last_id(self.user_id)
        return unread, last_id, replay, skipped, self._running()

    def _running(self) -> list[dict]:
        """A `progress` message for each of the user's running tasks, as last reported,
        then a `stalled` one for each whose worker is gone; none when Redis cannot
        say (the next reports bring the bars back)."""
        try:
            running = progress_state.running(self.user_id)
            stalled = progress_state.stalled(self.user_id, list(running))
        except RedisError as exc:
            log.warning("running tasks' progress unavailable: %r", exc)
            return []
        now = datetime.now(UTC).isoformat()
        return [
            messages.make("progress", task_id=task_id, **state)
            for task_id, state in running.items()
        ] + [messages.make("stalled", task_id=task_id, at=now) for task_id in sorted(stalled)]

    @database_sync_to_async
    def _missed(self, after: int) -> tuple[list[dict], int]:
        return inbox.missed(self.user_id, after, app_settings.REPLAY_LIMIT)

    async def _greet(self, after: int | None) -> None:
        unread, last_id, replay, skipped, running = await self._summary(after)
        await self.send_message(messages.make("hello", unread=unread, last_id=last_id))
        # Bars first: a replayed notice that ends one of these tasks comes after
        # and removes its bar.
        for progress in running:
            await self.send_message(progress)
        # Every notification up to this id was sent, or predates the socket.
        self.newest = last_id if after is None else after
        # The client has every notification up to this id already (it said so
        # with ?after=); an event for one of them that arrives late (a busy
        # publisher's sender) is not sent again. Capped at the newest id, for
        # a client whose resume point came from another database.
        self.known = 0 if after is None else min(after, last_id)
        await self._replay(after, replay, skipped)

    async def _replay(self, after: int | None, replay: list[dict], skipped: int) -> None:
        if skipped:
            await self.send_message(messages.make("truncated", after=after, count=skipped))
        for message in replay:
            self.replayed.add(message["id"])
            self.newest = max(self.newest, message["id"])
            await self.send_message(message)

    async def push(self, event: dict) -> None:
        """Relay a message published to the user's group (see groups.py)."""
        message = event["message"]
        if message["type"] == "notification":
            if event.get("previous", 0) > self.newest:
                # The one before has not reached this socket: catch up first.
                await self._replay(self.newest, *await self._missed(self.newest))
            if message["id"] <= self.known:
                return
            if message["id"] in self.replayed:
                self.replayed.discard(message["id"])
                return
            self.newest = max(self.newest, message["id"])
        await self.send_message(message)
        metrics.inc(f'notifications_delivered_total{{type="{message["type"]}"}}')
        if message["type"] == "notification":
            metrics.observe_publish_to_send(message["created_at"])

    async def session_check(self, event: dict) -> None:
        """Close with 4401 when the access this socket was opened with has ended.

        Sent by notifications.sessions to the user's group: `ended` names a
        session that logged out; without it the account changed (password,
        active flag, deleted), and Django's own check of the session decides.
        """
        key = self.scope.get("session_key")
        if self.user_id is None or key is None:
            return
        if "ended" in event:
            if event["ended"] != key:
                return
        else:
            user = await session_user(key)
            if user.pk == self.user_id:
                return
        await self._release()
        self.user_id = None  # no more frames acted on while the close goes out
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def _take_frame(self) -> bool:
        """One frame off the user's shared budget, or this socket's own when Redis is
        away or the channel layer has no Redis to share it in."""
        if self.user_id is None or not quota.shared(self.channel_layer):
            return self.frames.take()
        try:
            return await quota.take_frame(self.channel_layer, self.user_id)
        except Exception as exc:
            log.warning("frame budget unavailable, using the socket's own: %r", exc)
            return self.frames.take()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if too_big(text_data, bytes_data):
            await self.close(code=CLOSE_TOO_BIG)
            return
        if not await self._take_frame():
            await self._refuse("rate_limited", "too many frames; reconnect later")
            await self.close(code=CLOSE_RATE_LIMITED)
            return
        if self.user_id is None:
            return  # an anonymous socket is being closed; it may not act
        if text_data is None:
            await self._refuse("binary_unsupported", "send JSON text frames")
            return
        try:
            frame = json.loads(text_data)
        except (ValueError, RecursionError):  # deep nesting ("[[[[…") exhausts the parser
            await self._refuse("bad_json", "the frame is not valid JSON")
            return
        if not isinstance(frame, dict):
            await self._refuse("bad_frame", "the frame must be a JSON object")
            return
        if frame.get("type") == "read":
            await self._mark_read(frame.get("ids"))
        elif frame.get("type") == "seen":
            await self._mark_seen(frame.get("ids"))
        else:
            await self._refuse("unknown_type", "a client may send only 'read' and 'seen'")

    async def _mark_read(self, ids: object) -> None:
        if ids == "all":
            await reads.amark_read(self.user_id, None)
        elif (
            isinstance(ids, list)
            and ids
            and all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
        ):
            await reads.amark_read(self.user_id, ids[: app_settings.READ_BATCH])
        else:
            await self._refuse("bad_field", "'ids' must be a non-empty list of integers or 'all'")

    async def _mark_seen(self, ids: object) -> None:
        if (
            isinstance(ids, list)
            and 0 < len(ids) <= seen.SEEN_IDS_PER_FRAME
            and all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
        ):
            await seen.amark_seen(self.user_id, ids)
        else:
            await self._refuse(
                "bad_field",
                f"'ids' must be a list of 1 to {seen.SEEN_IDS_PER_FRAME} integers",
            )

    async def _refuse(self, code: str, detail: str) -> None:
        await self.send_message(messages.make("error", code=code, detail=detail))

    async def send_message(self, message: dict) -> None:
        """Send one message; a message that cannot be sent is logged, never fatal.

        A message too big for a frame (a row saved before today's limits) goes
        out shortened; anything else that fails (a closed transport, a value
        the encoder refuses) skips this one message and keeps the socket.
        """
        try:
            text = messages.wire(message)
            if len(text.encode()) > limits.FRAME_MAX_BYTES:
                text = messages.wire(messages.fitted(message))
            await self.send(text_data=text)
        except SlowReader:
            raise  # the socket's end, not one message's
        except Exception as exc:
            log.warning("could not send a %s message: %r", message.get("type"), exc)
            metrics.inc("notifications_send_failures_total")

    async def dispatch(self, message: dict) -> None:
        # A push touches no database, so it skips channels' per-message
        # close_old_connections(), a thread hop for every notification relayed.
        if message.get("type") == groups.EVENT_TYPE:
            await self.push(message)
            return
        # An event type this version has no handler for (say, during a rolling
        # deploy) would otherwise raise and kill the socket.
        try:
            await super().dispatch(message)
        except ValueError as exc:
            if not str(exc).startswith("No handler for message type"):
                raise
            log.warning("ignored channel-layer event of unknown type %r", message.get("type"))

"""notifications.layers on a real Redis: batched receive, and drops noticed and repaired.

channels-redis drops a group message when a process's inbound queue is at
capacity, with an INFO log. A tiny capacity forces that here.
"""

import asyncio
import logging

import pytest

from config.settings import redis_host
from notifications import metrics
from notifications.layers import RedisChannelLayer


@pytest.fixture
async def make_layer(redis_server):
    """Layers on the private Redis; each one stands for one Daphne process."""
    made = []

    def make(**config):
        layer = RedisChannelLayer(hosts=[redis_host(redis_server.url)], **config)
        made.append(layer)
        return layer

    yield make
    for layer in made:
        await layer.flush()
        await layer.close_pools()


async def receive_all(layer, channel, count: int, timeout: float = 10) -> list[int]:
    got = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            got.append((await layer.receive(channel))["n"])
    return got


async def receives_nothing(layer, channel, timeout: float = 0.5) -> bool:
    try:
        await asyncio.wait_for(layer.receive(channel), timeout)
    except TimeoutError:
        return True
    return False


def drops(outcome: str) -> float:
    return metrics.registry.snapshot().get(
        f'notifications_channel_layer_drops_total{{outcome="{outcome}"}}', 0
    )


async def test_batched_receive_keeps_each_channels_order(make_layer):
    layer = make_layer(capacity=1000)
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("user.1", first)
    await layer.group_add("user.2", second)
    for n in range(300):
        await layer.group_send(f"user.{1 + n % 2}", {"type": "push", "n": n})
    assert await receive_all(layer, first, 150) == list(range(0, 300, 2))
    assert await receive_all(layer, second, 150) == list(range(1, 300, 2))


async def test_a_group_send_to_two_tabs_of_one_process_reaches_both(make_layer):
    layer = make_layer()
    tabs = [await layer.new_channel(), await layer.new_channel()]
    for tab in tabs:
        await layer.group_add("user.7", tab)
    await layer.group_send("user.7", {"type": "push", "n": 1})
    assert [await receive_all(layer, tab, 1) for tab in tabs] == [[1], [1]]


async def test_a_dropped_message_is_noticed_and_added_again_once_the_queue_drains(make_layer):
    layer = make_layer(capacity=2, repair_delays=(0.2, 0.3, 0.5, 1.0))
    channel = await layer.new_channel()
    await layer.group_add("user.1", channel)
    dropped, repaired = drops("dropped"), drops("repaired")
    results = [await layer.group_send("user.1", {"type": "push", "n": n}) for n in range(5)]
    assert results == [0, 0, 1, 1, 1]  # the library would have said nothing
    assert drops("dropped") == dropped + 3
    got = await receive_all(layer, channel, 5)
    assert sorted(got) == [0, 1, 2, 3, 4]
    assert await receives_nothing(layer, channel)  # and nothing twice
    assert drops("repaired") == repaired + 3


async def test_only_the_full_process_gets_the_message_again(make_layer):
    # The sender's capacity applies: one message queued per process at most.
    publisher = make_layer(capacity=1, repair_delays=(0.2, 0.5, 1.0, 2.0))
    stalled, healthy = make_layer(), make_layer()
    slow_tab, fast_tab = await stalled.new_channel(), await healthy.new_channel()
    await publisher.group_add("user.3", slow_tab)
    await publisher.group_add("user.3", fast_tab)
    for n in range(3):
        await publisher.group_send("user.3", {"type": "push", "n": n})
        # The healthy process keeps up; the stalled one reads nothing.
        assert await receive_all(healthy, fast_tab, 1) == [n]
    assert sorted(await receive_all(stalled, slow_tab, 3)) == [0, 1, 2]
    assert await receives_nothing(healthy, fast_tab)
    assert await receives_nothing(stalled, slow_tab)


async def test_a_queue_that_stays_full_loses_the_message_with_an_error(make_layer, caplog):
    layer = make_layer(capacity=1, repair_delays=(0.05, 0.05))
    channel = await layer.new_channel()
    await layer.group_add("user.9", channel)
    lost = drops("lost")
    with caplog.at_level(logging.WARNING, logger="notifications.layers"):
        await layer.group_send("user.9", {"type": "push", "n": 0})
        assert await layer.group_send("user.9", {"type": "push", "n": 1}) == 1
        async with asyncio.timeout(5):  # until the repairs give up
            while drops("lost") == lost:
                await asyncio.sleep(0.01)
    assert drops("lost") == lost + 1
    assert any(r.levelno == logging.ERROR and "lost" in r.getMessage() for r in caplog.records)
    assert await receive_all(layer, channel, 1) == [0]


async def test_group_send_many_reaches_each_group_once(make_layer):
    layer = make_layer(capacity=5000)
    channels = [await layer.new_channel() for _ in range(600)]  # more than one chunk
    for n, channel in enumerate(channels):
        await layer.group_add(f"user.{n}", channel)
    dropped = await layer.group_send_many(
        [(f"user.{n}", {"type": "push", "n": n}) for n in range(600)] + [("user.none", {"n": -1})]
    )
    assert dropped == 0
    for n, channel in enumerate(channels):
        assert await receive_all(layer, channel, 1) == [n]
    assert await receives_nothing(layer, channels[0], timeout=0.2)


async def test_one_groups_messages_keep_their_order_within_and_across_batches(make_layer):
    # A sorted set pops equal scores in byte order, and the serializer starts
    # each message with random bytes: same-time messages must not share a score.
    layer = make_layer(capacity=5000)
    channel = await layer.new_channel()
    await layer.group_add("user.1", channel)
    await layer.group_send_many([("user.1", {"type": "push", "n": n}) for n in range(300)])
    for n in range(300, 400):
        await layer.group_send("user.1", {"type": "push", "n": n})
    assert await receive_all(layer, channel, 400) == list(range(400))


async def test_group_send_many_repairs_what_a_full_queue_refused(make_layer):
    layer = make_layer(capacity=3, repair_delays=(0.2, 0.3, 0.5, 1.0, 2.0))
    channels = [await layer.new_channel() for _ in range(5)]
    for n, channel in enumerate(channels):
        await layer.group_add(f"user.{n}", channel)
    # One process key holds all five sockets: two of the five are refused at first.
    assert await layer.group_send_many([(f"user.{n}", {"n": n}) for n in range(5)]) == 2
    got = [await receive_all(layer, channel, 1) for channel in channels]
    assert got == [[0], [1], [2], [3], [4]]


async def test_a_buffer_nobody_reads_is_dropped_after_the_expiry(make_layer):
    # A message that reaches a socket's channel just as the socket closes is
    # buffered, and nobody will read it: it must not stay for the process's life.
    layer = make_layer(expiry=1)
    alive, closed = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("user.1", alive)
    await layer.group_add("user.2", closed)
    waiting = asyncio.ensure_future(layer.receive(alive))  # keeps the reader running
    await layer.group_send("user.2", {"type": "push", "n": -1})
    for n in range(2):
        await asyncio.sleep(1.1)  # the expiry itself is what has to pass
        await layer.group_send("user.1", {"type": "push", "n": n})
        assert (await asyncio.wait_for(waiting, 5))["n"] == n
        waiting = asyncio.ensure_future(layer.receive(alive))
    waiting.cancel()
    assert await receives_nothing(layer, closed)

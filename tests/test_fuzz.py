"""Random frames never crash the server, never show another user's data, and
never stop a well-behaved socket from receiving."""

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifications import notify
from tests.sockets import open_socket

pytestmark = pytest.mark.django_db(transaction=True)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=10,
)
read_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["read", "READ", "", "hello", "notification"])},
    optional={"ids": json_values | st.lists(st.integers(), max_size=5)},
)
frames = st.one_of(
    st.text(max_size=200).map(lambda text: ("text", text)),
    st.binary(max_size=200).map(lambda data: ("bytes", data)),
    (json_values | read_like).map(lambda value: ("text", json.dumps(value))),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(frames, min_size=1, max_size=12))
def test_random_frames_change_nothing_for_anyone_else(alice, bob, batch):
    async_to_sync(_scenario)(alice, bob, batch)


async def _scenario(alice, bob, batch):
    secret = await sync_to_async(notify)(bob, "Bob's secret title")
    fuzzed, _, _ = await open_socket(alice)
    steady, _, _ = await open_socket(bob)
    try:
        await fuzzed.receive_json_from(timeout=5)
        await steady.receive_json_from(timeout=5)
        for kind, frame in batch:
            # Raw ASGI input: the communicator's send_to() refuses empty frames.
            await fuzzed.send_input({"type": "websocket.receive", kind: frame})
        # Every answer to the fuzzer is an error or its own read receipt.
        while not await fuzzed.receive_nothing(timeout=0.05):
            output = await fuzzed.receive_output(timeout=1)
            if output["type"] == "websocket.close":
                break
            assert "Bob's secret" not in output["text"]
            assert json.loads(output["text"])["type"] in {"error", "read"}
        await sync_to_async(secret.refresh_from_db)()
        assert secret.read_at is None
        await sync_to_async(notify)(bob, "Bob still receives")
        assert (await steady.receive_json_from(timeout=5))["title"] == "Bob still receives"
    finally:
        await fuzzed.disconnect()
        await steady.disconnect()

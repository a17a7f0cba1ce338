"""The engine's channel between two stages: anyio's memory-stream rules, on both backends."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stageline._channel import create_channel

pytestmark = pytest.mark.anyio


async def test_items_come_out_in_order_and_the_buffer_holds_maxsize() -> None:
    send, receive = create_channel(3)
    for item in range(3):
        send.send_nowait(item)
    with pytest.raises(anyio.WouldBlock):
        send.send_nowait(3)
    assert [receive.receive_nowait() for _ in range(3)] == [0, 1, 2]
    with pytest.raises(anyio.WouldBlock):
        receive.receive_nowait()


async def assert_raise_both_ways(
    error: type[Exception], nowait: Callable[[], Any], wait: Callable[[], Awaitable[Any]]
) -> None:
    """``error`` from the non-blocking call and from the waiting one."""
    with pytest.raises(error):
        nowait()
    with pytest.raises(error):
        await wait()


async def test_the_end_comes_after_the_buffered_items() -> None:
    send, receive = create_channel(math.inf)
    send.send_nowait("a")
    send.send_nowait("b")
    send.close()
    send.close()  # idempotent
    assert receive.receive_nowait() == "a"
    assert await receive.receive() == "b"
    await assert_raise_both_ways(anyio.EndOfStream, receive.receive_nowait, receive.receive)
    await assert_raise_both_ways(
        anyio.ClosedResourceError, lambda: send.send_nowait("c"), lambda: send.send("c")
    )


async def test_a_closed_receive_end_drops_the_buffer_and_breaks_sending() -> None:
    send, receive = create_channel(2)
    send.send_nowait("dropped")
    receive.close()
    await assert_raise_both_ways(anyio.ClosedResourceError, receive.receive_nowait, receive.receive)
    await assert_raise_both_ways(
        anyio.BrokenResourceError, lambda: send.send_nowait("x"), lambda: send.send("x")
    )


async def test_a_blocked_sender_is_woken_by_room_and_by_a_closed_receiver() -> None:
    send, receive = create_channel(1)
    send.send_nowait(0)
    sent: list[int] = []

    async def sender(item: int) -> None:
        await send.send(item)
        sent.append(item)

    async with anyio.create_task_group() as tg:
        tg.start_soon(sender, 1)
        await anyio.wait_all_tasks_blocked()
        assert sent == []
        assert receive.receive_nowait() == 0
    assert sent == [1]
    assert receive.receive_nowait() == 1

    send.send_nowait(2)
    failures: list[BaseException] = []

    async def doomed() -> None:
        try:
            await send.send(3)
        except anyio.BrokenResourceError as exc:
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(doomed)
        await anyio.wait_all_tasks_blocked()
        receive.close()
    assert len(failures) == 1


async def test_a_blocked_receiver_is_woken_by_an_item_and_by_the_end() -> None:
    send, receive = create_channel(4)
    got: list[Any] = []

    async def receiver() -> None:
        while True:
            try:
                got.append(await receive.receive())
            except anyio.EndOfStream:
                got.append("end")
                return

    async with anyio.create_task_group() as tg:
        tg.start_soon(receiver)
        await anyio.wait_all_tasks_blocked()
        send.send_nowait(1)
        await anyio.wait_all_tasks_blocked()
        assert got == [1]
        send.close()
    assert got == [1, "end"]


async def test_maxsize_zero_sends_only_to_a_waiting_receiver() -> None:
    """A rendezvous: send_nowait needs a receiver waiting, and send waits for one,
    whichever of the two comes first."""
    send, receive = create_channel(0)
    with pytest.raises(anyio.WouldBlock):
        send.send_nowait("nobody waits")
    got: list[Any] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: send.send("sender first"))
        await anyio.wait_all_tasks_blocked()
        got.append(await receive.receive())
    async with anyio.create_task_group() as tg:

        async def receiver() -> None:
            got.append(await receive.receive())

        tg.start_soon(receiver)
        await anyio.wait_all_tasks_blocked()
        send.send_nowait("receiver first")
        with pytest.raises(anyio.WouldBlock):
            send.send_nowait("only one was waiting")
    assert got == ["sender first", "receiver first"]


async def test_a_receiver_cancelled_after_its_wake_up_loses_nothing() -> None:
    """The item a cancelled receiver was woken for is either received (the cancellation
    came too late: asyncio resumes a task whose wait is already over) or stays for the
    next receive (trio delivers it first): never lost."""
    send, receive = create_channel(1)
    got: list[Any] = []
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def receiver() -> None:
                got.append(await receive.receive())

            tg.start_soon(receiver)
            await anyio.wait_all_tasks_blocked()
            send.send_nowait("kept")  # wakes the receiver...
            scope.cancel()  # ...which is cancelled before it runs
    if not got:
        got.append(receive.receive_nowait())
    assert got == ["kept"]
    with pytest.raises(anyio.WouldBlock):
        receive.receive_nowait()


async def test_a_cancelled_sender_sends_nothing() -> None:
    send, receive = create_channel(1)
    send.send_nowait("first")
    with anyio.move_on_after(0.01):
        await send.send("never")
    assert receive.receive_nowait() == "first"
    with pytest.raises(anyio.WouldBlock):
        receive.receive_nowait()
    send.send_nowait("room again")  # the cancelled sender left no waiter behind
    assert receive.receive_nowait() == "room again"


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    maxsize=st.sampled_from([0, 1, 2, 5, math.inf]),
    count=st.integers(0, 40),
    pauses=st.lists(st.booleans(), min_size=1, max_size=8),
)
async def test_a_producer_and_a_consumer_pass_everything_in_order(
    maxsize: float, count: int, pauses: list[bool]
) -> None:
    """Blocking and non-blocking calls mixed on both sides, with pauses: every item once,
    in order, then the end; the buffer never holds more than maxsize (or one, for 0)."""
    send, receive = create_channel(maxsize)
    got: list[int] = []
    peak = 0

    async def producer() -> None:
        for item in range(count):
            if pauses[item % len(pauses)]:
                await anyio.lowlevel.checkpoint()
            try:
                send.send_nowait(item)
            except anyio.WouldBlock:
                await send.send(item)
        send.close()

    async def consumer() -> None:
        nonlocal peak
        turn = 0
        while True:
            peak = max(peak, len(send._buffer))
            turn += 1
            try:
                if pauses[-turn % len(pauses)]:
                    got.append(await receive.receive())
                else:
                    got.append(receive.receive_nowait())
            except anyio.WouldBlock:
                await anyio.lowlevel.checkpoint()
            except anyio.EndOfStream:
                return

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer)
            tg.start_soon(producer)
    assert got == list(range(count))
    assert peak <= max(maxsize, 1)

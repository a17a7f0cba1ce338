"""The buffer between two stages: a bounded queue with a send end and a receive end.

What ``anyio.create_memory_object_stream`` gives, reduced to what the engine uses, in
fewer steps per item: every item of a sync passes one of these per stage, and anyio's
non-blocking calls (a method call and six to eight attribute lookups on the stream and
its shared state) were about a quarter of the engine's time per item
(``docs/benchmarks.md``). The non-blocking calls here are a deque operation, a length
test and a look at the waiters.

The rules are anyio's, but for one, which is stricter:

- Items come out in the order they went in; at most ``maxsize`` wait in the buffer (with
  ``maxsize`` 0, a send completes only when a receiver is waiting for it).
- ``send_nowait`` raises ``anyio.WouldBlock`` when the buffer is full,
  ``anyio.BrokenResourceError`` once the receive end is closed and
  ``anyio.ClosedResourceError`` once the send end is. ``receive_nowait`` raises
  ``anyio.WouldBlock`` when nothing is buffered, ``anyio.EndOfStream`` once the send end
  is closed and the buffer is empty, and ``anyio.ClosedResourceError`` once the receive
  end is closed (the buffered items are then dropped).
- ``send`` and ``receive`` wait for room or for an item, and are cancellation points.
- The stricter one: an item is never handed to a waiting receiver directly. It goes into
  the buffer and the receiver is woken to take it, so a receiver cancelled between its
  wake-up and its turn to run loses nothing: the item waits for the next receive. (With
  ``maxsize`` 0 the buffer may then hold that one item until it is received.)
"""

from __future__ import annotations

from collections import deque
from typing import Any

import anyio
import anyio.lowlevel

__all__ = ["ReceiveEnd", "SendEnd", "create_channel"]


class _Sender:
    """A sender waiting for room, with its item; ``taken`` once a receiver took it."""

    __slots__ = ("event", "item", "taken")

    def __init__(self, item: Any) -> None:
        self.event = anyio.Event()
        self.item = item
        self.taken = False


class _Channel:
    """The state both ends share."""

    __slots__ = (
        "buffer",
        "limit",
        "maxsize",
        "receive_closed",
        "receivers",
        "send_closed",
        "senders",
    )

    def __init__(self, maxsize: float) -> None:
        self.buffer: deque[Any] = deque()
        self.maxsize = maxsize
        #: How many items send_nowait's fast path may let the buffer hold: maxsize while
        #: both ends are open, -1 once either is closed (the slow path then says which).
        self.limit: float = maxsize
        self.receivers: deque[anyio.Event] = deque()
        #: Senders waiting for room, in the order they came: whenever room appears, the
        #: first one's item moves into the buffer, so items keep the order they were sent.
        self.senders: deque[_Sender] = deque()
        self.send_closed = False
        self.receive_closed = False

    def take_from_sender(self) -> Any:
        sender = self.senders.popleft()
        sender.taken = True
        sender.event.set()
        item = sender.item
        sender.item = None
        return item

    def wake_receiver(self) -> None:
        self.receivers.popleft().set()

    def wake_all(self) -> None:
        while self.receivers:
            self.receivers.popleft().set()
        while self.senders:
            self.senders.popleft().event.set()  # not taken: the sender sees why


class SendEnd:
    """The sending end of a channel (see the module)."""

    __slots__ = ("_buffer", "_channel")

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._buffer = channel.buffer

    def send_nowait(self, item: Any) -> None:
        """Put ``item`` into the buffer without waiting.

        Raises:
            anyio.WouldBlock: the buffer is full.
            anyio.BrokenResourceError: the receive end is closed.
            anyio.ClosedResourceError: this end is closed.
        """
        channel = self._channel
        buffer = self._buffer
        # (While senders wait, the buffer is full: the test below keeps them first.)
        if len(buffer) < channel.limit:
            buffer.append(item)
            if channel.receivers:
                channel.wake_receiver()
            return
        if channel.send_closed:
            raise anyio.ClosedResourceError
        if channel.receive_closed:
            raise anyio.BrokenResourceError
        receivers = channel.receivers
        # Only with maxsize 0 (or a buffer that a cancelled receiver left an item in):
        # room for as many items as there are receivers waiting for one.
        if receivers and len(buffer) < channel.maxsize + len(receivers):
            buffer.append(item)
            channel.wake_receiver()
            return
        raise anyio.WouldBlock

    async def send(self, item: Any) -> None:
        """Put ``item`` into the buffer, waiting for room.

        Raises:
            anyio.BrokenResourceError: the receive end is (or gets) closed.
            anyio.ClosedResourceError: this end is closed.
        """
        await anyio.lowlevel.checkpoint()
        try:
            self.send_nowait(item)
        except anyio.WouldBlock:
            pass
        else:
            return
        channel = self._channel
        sender = _Sender(item)
        channel.senders.append(sender)
        try:
            await sender.event.wait()
        except BaseException:
            # Cancelled: the item is not sent, unless a receiver took it meanwhile (as
            # with anyio's streams, the cancellation then wins the race all the same).
            if not sender.taken and sender in channel.senders:
                channel.senders.remove(sender)
            raise
        if not sender.taken:
            # Woken by a close.
            if channel.send_closed:
                raise anyio.ClosedResourceError
            raise anyio.BrokenResourceError

    def close(self) -> None:
        """End the stream: the receiver gets the buffered items, then ``EndOfStream``."""
        channel = self._channel
        if not channel.send_closed:
            channel.send_closed = True
            channel.limit = -1
            channel.wake_all()


class ReceiveEnd:
    """The receiving end of a channel (see the module)."""

    __slots__ = ("_buffer", "_channel")

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._buffer = channel.buffer

    def receive_nowait(self) -> Any:
        """Take the next item without waiting.

        Raises:
            anyio.WouldBlock: nothing is buffered.
            anyio.EndOfStream: the send end is closed and everything was received.
            anyio.ClosedResourceError: this end is closed.
        """
        buffer = self._buffer
        if buffer:
            item = buffer.popleft()
            channel = self._channel
            if channel.senders:
                buffer.append(channel.take_from_sender())
            return item
        channel = self._channel
        if channel.receive_closed:
            raise anyio.ClosedResourceError
        if channel.senders:
            return channel.take_from_sender()  # maxsize 0: straight from a waiting sender
        if channel.send_closed:
            raise anyio.EndOfStream
        raise anyio.WouldBlock

    async def receive(self) -> Any:
        """Take the next item, waiting for one.

        Raises:
            anyio.EndOfStream: the send end is closed and everything was received.
            anyio.ClosedResourceError: this end is closed.
        """
        await anyio.lowlevel.checkpoint()
        channel = self._channel
        while True:
            try:
                return self.receive_nowait()
            except anyio.WouldBlock:
                pass
            event = anyio.Event()
            channel.receivers.append(event)
            try:
                await event.wait()
            except BaseException:
                if not event.is_set():
                    channel.receivers.remove(event)
                elif self._buffer and channel.receivers:
                    channel.wake_receiver()  # the item this receiver was woken for
                raise

    def close(self) -> None:
        """Stop receiving: buffered items are dropped, and sending fails from now on."""
        channel = self._channel
        if not channel.receive_closed:
            channel.receive_closed = True
            channel.limit = -1
            self._buffer.clear()
            channel.wake_all()


def create_channel(maxsize: float) -> tuple[SendEnd, ReceiveEnd]:
    """A new channel buffering up to ``maxsize`` items (an int >= 0, or ``math.inf``)."""
    channel = _Channel(maxsize)
    return SendEnd(channel), ReceiveEnd(channel)

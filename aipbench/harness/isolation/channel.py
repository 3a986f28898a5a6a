"""Length-prefixed messages over a Unix socket between the harness and a child, every read and write on
the harness's side bounded by a deadline and every message by a size: a child that sends half a message
and goes quiet, stops reading, or sends too much ends the conversation instead of hanging the harness."""

from __future__ import annotations

import os
import select
import socket
import struct
import time

__all__ = ["Channel", "ChannelClosed", "ChannelTimeout", "ChannelTooLarge", "child_channel"]

_HEADER = struct.Struct(">Q")  # the payload's length in bytes


class ChannelClosed(EOFError):
    """The other side closed its end (it exited), possibly mid-message."""


class ChannelTimeout(TimeoutError):
    """The deadline passed before a whole message was read or written."""


class ChannelTooLarge(ValueError):
    """A message announced more bytes than the reader accepts."""


class Channel:
    """One end of a socket pair. ``send`` and ``recv`` take an absolute ``deadline`` (``time.monotonic()``;
    None: block, as the child's side does); ``recv`` refuses a message longer than ``max_bytes`` before
    reading it. File descriptors (``fds``) travel with a message's first byte (SCM_RIGHTS); the harness's side
    never accepts any (``recv`` reads none, and the kernel closes what a child sends)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def send(self, payload: bytes, *, deadline: float | None = None, fds: tuple[int, ...] = ()) -> None:
        data = memoryview(_HEADER.pack(len(payload)) + bytes(payload))
        if fds:  # the descriptors ride on the first byte
            self._wait(select.POLLOUT, deadline)
            sent = socket.send_fds(self.sock, [data[:1]], list(fds))
            data = data[sent:]
        while data:
            self._wait(select.POLLOUT, deadline)
            try:
                data = data[self.sock.send(data, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL):]
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                raise ChannelClosed("the other side closed the channel") from None

    def recv(self, *, max_bytes: int, deadline: float | None = None) -> bytes:
        (length,) = _HEADER.unpack(self._read(_HEADER.size, deadline))
        if length > max_bytes:
            raise ChannelTooLarge(f"a message of {length} bytes (at most {max_bytes} are read)")
        return self._read(length, deadline)

    def recv_with_fds(self, *, max_bytes: int, max_fds: int = 4) -> tuple[bytes, list[int]]:
        """The child's side: a message and the descriptors sent with it (blocking)."""
        first, fds, _, _ = socket.recv_fds(self.sock, 1, max_fds)
        if not first:
            raise ChannelClosed("the other side closed the channel")
        rest = self._read(_HEADER.size - 1, None)
        (length,) = _HEADER.unpack(first + rest)
        if length > max_bytes:
            raise ChannelTooLarge(f"a message of {length} bytes (at most {max_bytes} are read)")
        return self._read(length, None), fds

    def _read(self, n: int, deadline: float | None) -> bytes:
        out = bytearray()
        while len(out) < n:
            self._wait(select.POLLIN, deadline)
            try:
                chunk = self.sock.recv(min(n - len(out), 1 << 22), socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise ChannelClosed("the other side closed the channel" + (" mid-message" if out else ""))
            out += chunk
        return bytes(out)

    def _wait(self, event: int, deadline: float | None) -> None:
        poller = select.poll()
        poller.register(self.sock, event)
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            if poller.poll(None if timeout is None else int(timeout * 1000) + 1):
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise ChannelTimeout("the deadline passed mid-message")


def child_channel(fd: int | str) -> Channel:
    """The child's end, from the descriptor number the harness passed on its command line."""
    sock = socket.socket(fileno=int(fd))
    os.set_blocking(sock.fileno(), True)
    return Channel(sock)

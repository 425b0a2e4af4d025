"""Scalar logs for the stock ``tensorboard`` command, whichever backend trains.

Events are TensorBoard's own protobuf messages (``tensorboard.compat.proto``)
framed as TFRecords by hand: TensorBoard's writer would import TensorFlow when
it is installed, six seconds of start-up for a torch run. Needs the
``tensorboard`` package (``pip install 'cnnspec[tensorboard]'``, included in ``all``).
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

from .errors import BackendUnavailable


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli polynomial, reflected
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(data: bytes) -> bytes:
    """length, masked CRC of the length, data, masked CRC of the data (TFRecord framing)."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", _masked(crc32c(length))) + data + struct.pack("<I", _masked(crc32c(data)))


class ScalarWriter:
    """``add(step, {"loss": 0.3, ...})`` appends one scalar event per tag, flushed at once."""

    def __init__(self, logdir: str | Path):
        try:
            from tensorboard.compat.proto import event_pb2, summary_pb2
        except ImportError:
            raise BackendUnavailable(
                "--tensorboard needs the tensorboard package: pip install 'cnnspec[tensorboard]'"
            ) from None
        self._event, self._summary = event_pb2, summary_pb2
        folder = Path(logdir)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.cnnspec"
        self._file = open(folder / name, "ab")  # noqa: SIM115 - closed by close()
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event) -> None:
        self._file.write(tfrecord(event.SerializeToString()))
        self._file.flush()

    def add(self, step: int, scalars: dict[str, float]) -> None:
        values = [self._summary.Summary.Value(tag=tag, simple_value=float(value)) for tag, value in scalars.items()]
        self._write(self._event.Event(wall_time=time.time(), step=step, summary=self._summary.Summary(value=values)))

    def close(self) -> None:
        self._file.close()

"""A minimal Kafka-protocol probe: one Metadata v2 request over a socket, no client library.

Used to tell that a broker answers, and that it is OUR broker (by its cluster id), before any client
connects to it.
"""
from __future__ import annotations

import socket
import struct


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        buf += chunk
    return bytes(buf)


def metadata_cluster_id(host: str, port: int, timeout: float) -> str | None:
    """Send a Kafka Metadata v2 request for no topics and return the cluster id of the answer.

    Metadata v2 is the first version whose response carries the cluster id; an empty topic array
    asks for brokers only. Response v2: correlation_id, [node_id, host, port, rack], cluster_id, ...
    """
    correlation_id = 0x7061  # "pa"
    client_id = b"parcours-embedded-probe"
    body = (struct.pack(">hhih", 3, 2, correlation_id, len(client_id)) + client_id
            + struct.pack(">i", 0))
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", _read_exact(sock, 4))
        data = _read_exact(sock, size)
    (got_correlation, n_brokers) = struct.unpack_from(">ii", data, 0)
    if got_correlation != correlation_id:
        raise ConnectionError(f"unexpected correlation id {got_correlation} in Metadata response")
    pos = 8
    for _ in range(n_brokers):
        pos += 4  # node_id
        (host_len,) = struct.unpack_from(">h", data, pos)
        pos += 2 + host_len + 4  # host, port
        (rack_len,) = struct.unpack_from(">h", data, pos)
        pos += 2 + max(rack_len, 0)
    (cluster_len,) = struct.unpack_from(">h", data, pos)
    if cluster_len < 0:
        return None
    return data[pos + 2 : pos + 2 + cluster_len].decode("utf-8", "replace")

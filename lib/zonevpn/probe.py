"""An ICMP echo through one tunnel, from the tunnel's own address: the watcher's active health probe.

Bound to the tunnel's device as well as its address: if our routes are missing for a moment (a reload),
the kernel still sends it out of that tunnel and never through red. One raw socket per tick: it binds to
the interface as it is now (a tunnel deleted and re-created gets a new index).
"""

from __future__ import annotations

import os
import socket
import struct

_ECHO, _REPLY = 8, 0


def _checksum(data: bytes) -> int:
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


class Echo:
    def __init__(self, interface: str, source: str, target: str, seq: int) -> None:
        """Sends at once; OSError when the tunnel or its address is missing (no evidence this tick)."""
        self.ident = (os.getpid() ^ hash(interface)) & 0xFFFF
        self.seq, self.target = seq & 0xFFFF, target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.IPPROTO_ICMP)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
            self.sock.bind((source, 0))
            header = struct.pack("!BBHHH", _ECHO, 0, 0, self.ident, self.seq)
            payload = b"zonevpn-probe"
            packet = struct.pack("!BBHHH", _ECHO, 0, _checksum(header + payload), self.ident, self.seq)
            self.sock.sendto(packet + payload, (target, 0))
        except OSError:
            self.sock.close()
            raise

    def answered(self) -> bool:
        """Whether our echo's reply has arrived by now; closes the socket."""
        try:
            while True:
                data, peer = self.sock.recvfrom(2048)
                start = (data[0] & 0x0F) * 4  # raw IPv4 sockets see the IP header
                kind, _, _, ident, seq = struct.unpack_from("!BBHHH", data, start)
                if kind == _REPLY and ident == self.ident and seq == self.seq and peer[0] == self.target:
                    return True
        except (BlockingIOError, struct.error):
            return False
        except OSError:
            return False
        finally:
            self.sock.close()

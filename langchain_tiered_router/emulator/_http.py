"""The HTTP edge: a threading HTTP/1.1 server that hands requests to the service.

Plain JSON replies carry a Content-Length; event streams go out with chunked
transfer encoding, one event per chunk, as Bedrock sends them. A ``stream_cut`` fault
stops mid-stream and drops the connection without the final chunk, which is what a
client sees when the network or the service gives up. ``stop()`` also closes
keep-alive connections, so a pooled client cannot reach a stopped emulator.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._service import BedrockService, Reply, error_reply
from ._wire_errors import WireError

__all__ = ["EmulatorHTTPServer"]

logger = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "BedrockEmulator/1"
    timeout = 60  # an idle keep-alive connection is dropped after this many seconds
    # Headers and body go out in separate writes; with Nagle on, the body waits for the
    # client's delayed ACK (about 40 ms a call on Linux).
    disable_nagle_algorithm = True
    server: "EmulatorHTTPServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s " + format, self.address_string(), *args)

    def _serve(self) -> None:
        try:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self.close_connection = True
                self._send(error_reply(WireError.validation("Invalid Content-Length header.")))
                return
            body = self.rfile.read(length) if length > 0 else b""
            reply = self.server.service.handle(self.command, self.path, dict(self.headers.items()), body)
            if reply.delay and self.server.stopping.wait(reply.delay):
                self.close_connection = True
                return
            self._send(reply)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True  # the client went away (e.g. its read timeout)

    do_POST = do_GET = do_PUT = do_DELETE = _serve  # type: ignore[assignment]

    def _send(self, reply: Reply) -> None:
        # every Bedrock reply carries a request id, this edge's own errors too (botocore reads it
        # into ResponseMetadata.RequestId)
        reply.headers.setdefault("x-amzn-RequestId", str(uuid.uuid4()))
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.frames is None:
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for count, frame in enumerate(reply.frames):
            if reply.cut_after is not None and count >= reply.cut_after:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if reply.stall is not None and count == reply.stall[0]:
                self.wfile.flush()
                self.server.stopping.wait(reply.stall[1])  # a server shutting down does not wait it out
            self.wfile.write(b"%X\r\n%s\r\n" % (len(frame), frame))
        self.wfile.write(b"0\r\n\r\n")


class EmulatorHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its service and can drop open connections."""

    daemon_threads = True
    allow_reuse_address = True
    # a listen backlog for bursts of concurrent clients (socketserver's default is 5), as a
    # real endpoint takes a hundred connections at once
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], service: BedrockService):
        self.service = service
        self.stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.warning("emulator connection from %s failed", client_address, exc_info=True)

    def drop_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

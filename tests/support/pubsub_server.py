"""An in-test gRPC server implementing ``google.pubsub.v1.Publisher/Publish`` on a free loopback port.

The real ``google-cloud-pubsub`` client talks to it over plaintext gRPC. It records every request
(topic, messages with attributes and ordering keys), can fail the next N requests with a status code
and can answer slowly, which is what the sink tests need to prove batching, flow control, retries and
shutdown behaviour against the actual client library.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from types import TracebackType

import grpc
from google.pubsub_v1.types import PublishRequest, PublishResponse


@dataclass
class Received:
    """One message as the server stored it."""

    topic: str
    data: bytes
    attributes: dict[str, str]
    ordering_key: str


@dataclass
class PublisherServer:
    """Implements the Publisher service's Publish RPC; the other RPCs answer UNIMPLEMENTED."""

    delay_s: float = 0.0
    fail_next: int = 0
    fail_code: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION
    messages: list[Received] = field(default_factory=list)
    request_sizes: list[int] = field(default_factory=list)
    failed_requests: int = 0
    max_concurrent: int = 0
    port: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._next_id = 0
        self._server: grpc.Server | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _publish(self, request: PublishRequest, context: grpc.ServicerContext) -> PublishResponse:
        with self._lock:
            self._active += 1
            self.max_concurrent = max(self.max_concurrent, self._active)
            fail = self.fail_next > 0
            if fail:
                self.fail_next -= 1
                self.failed_requests += 1
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            if fail:
                context.abort(self.fail_code, "injected failure")
            with self._lock:
                self.request_sizes.append(len(request.messages))
                ids = []
                for m in request.messages:
                    self.messages.append(Received(request.topic, bytes(m.data), dict(m.attributes), m.ordering_key))
                    self._next_id += 1
                    ids.append(str(self._next_id))
            return PublishResponse(message_ids=ids)
        finally:
            with self._lock:
                self._active -= 1

    def start(self) -> PublisherServer:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handler = grpc.method_handlers_generic_handler(
            "google.pubsub.v1.Publisher",
            {
                "Publish": grpc.unary_unary_rpc_method_handler(
                    self._publish,
                    request_deserializer=PublishRequest.deserialize,
                    response_serializer=PublishResponse.serialize,
                ),
            },
        )
        server.add_generic_rpc_handlers((handler,))
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    def __enter__(self) -> PublisherServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

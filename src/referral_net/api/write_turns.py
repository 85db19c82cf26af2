"""On SpatiaLite, the write requests of one worker process take turns before they use a thread.

SQLite has one write lock for the whole file. A write request holds it from its first statement
(``BEGIN IMMEDIATE``, see ``db.engine``) to its commit, and in between it hops between the event
loop and the thread pool several times (dependencies, then the endpoint). Without turns, 32
concurrent writers on 2 workers parked up to 16 requests per process in pool threads and pooled
connections, each waiting for the lock; the request that held the lock then waited for a free
thread or connection, readers timed out on the connection pool, and the load stalled for 10-30 s
(bench/write_load.py, docs/performance.md). Here a write request first waits for its process's
turn on the event loop, where waiting costs neither a thread nor a connection.

- The body is read before the turn is taken, so a slow upload never holds up other writers.
- The turn ends when the response starts: the endpoint has committed by then.
- A turn not had within the busy timeout is a 503 problem with ``Retry-After``.
- PostgreSQL needs none of this (row locks); the middleware is installed only for SQLite.
- POST endpoints marked ``@reads_only`` (matching) take no turn.
"""

from __future__ import annotations

import asyncio

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_net.api.deps import READ_METHODS, is_reads_only_endpoint
from referral_net.api.problems import problem_response
from referral_net.errors import DatabaseBusy


class WriteTurnMiddleware:
    """Plain ASGI middleware: one write request at a time per process reaches the application."""

    def __init__(self, app: ASGIApp, *, wait_seconds: float) -> None:
        """Wrap ``app``; a request waits at most ``wait_seconds`` for its turn."""
        self.app = app
        self.wait_seconds = wait_seconds
        self._turn: asyncio.Lock | None = None  # made on first use, inside the worker's loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass reads straight through; queue writes for the process's turn."""
        if scope["type"] != "http" or scope["method"] in READ_METHODS or _reads_only(scope):
            await self.app(scope, receive, send)
            return
        messages = await _read_body(receive)
        turn = self._turn = self._turn or asyncio.Lock()
        try:
            await asyncio.wait_for(turn.acquire(), timeout=self.wait_seconds)
        except TimeoutError:
            error = DatabaseBusy()
            response = problem_response(
                503, slug=error.slug, title=error.title, detail=error.detail, headers=error.headers
            )
            await response(scope, receive, send)
            return
        held = True

        def end_turn() -> None:
            nonlocal held
            if held:
                held = False
                turn.release()

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        async def send_and_end_turn(message: Message) -> None:
            if message["type"] == "http.response.start":
                end_turn()
            await send(message)

        try:
            await self.app(scope, replay, send_and_end_turn)
        finally:
            end_turn()


async def _read_body(receive: Receive) -> list[Message]:
    # The body cap (api/body_limit.py) sits outside this middleware, so this stays bounded.
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _reads_only(scope: Scope) -> bool:
    app = scope.get("app")
    for route in getattr(app, "routes", ()):
        endpoint = getattr(route, "endpoint", None)
        if is_reads_only_endpoint(endpoint) and route.matches(scope)[0] is Match.FULL:
            return True
    return False

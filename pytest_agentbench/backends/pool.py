"""A pool of OpenAI-compatible endpoints serving one model (`base_url: [URL, URL, ...]` in models.yaml, or the
replicas of a served model): each HTTP attempt goes to the endpoint with the fewest requests in flight from this
process; an endpoint that refuses the connection, times out, drops the reply or answers 5xx or 429 is taken out for
a back-off period (doubling while it keeps failing, up to `MAX_BACKOFF_S`).

The retrying itself is the openai client's: `PoolTransport` is the httpx transport under the client, and it picks
the endpoint per attempt, so the client's own retry loop (exponential backoff with jitter, `Retry-After`) moves a
failed request to another endpoint. When every endpoint is out, the one that comes back first is tried anyway: the
client's retries then fail the request only when all endpoints keep failing, and the sample is infra
(`--agentbench-resume` finishes it).

A reply is read whole inside the transport, streamed or not: a server that dies halfway through a reply fails that
attempt, which the client retries elsewhere (once handed to the client, a broken stream could not be). The arrival
time of the first streamed chunk is kept, so time to first token is still the wire's, and the endpoint that
answered is told to the backend (`answered()`) for the sample's record.

"Fewest in flight" counts this process's requests; xdist workers break ties in a different order (worker i starts
at endpoint i mod n), so two workers that each send one request at a time use two endpoints.
"""

from __future__ import annotations

import os
import re
import threading
import time
import warnings
from dataclasses import dataclass

import httpx2

from ..errors import AgentbenchWarning, first_line

PREFIX = "http://endpoint-pool.invalid/"  # the client's base_url; the transport puts the chosen endpoint in its place
MAX_BACKOFF_S = 300.0


@dataclass
class Endpoint:
    url: str  # base URL, e.g. http://10.0.0.5:8000/v1
    index: int
    in_flight: int = 0
    out_until: float = 0.0  # time.monotonic() before which it is not picked while another one is in
    failures: int = 0  # consecutive failed attempts (the back-off doubles with each)
    answered: int = 0


class EndpointPool:
    def __init__(self, urls: list[str], backoff_s: float = 30.0, model: str = ""):
        self.endpoints = [Endpoint(url.rstrip("/"), i) for i, url in enumerate(urls)]
        self.backoff_s = backoff_s
        self.model = model
        self._lock = threading.Lock()
        self._local = threading.local()
        match = re.search(r"(\d+)$", os.environ.get("PYTEST_XDIST_WORKER", ""))
        self._offset = int(match.group(1)) if match else 0

    def pick(self) -> Endpoint:
        """The endpoint for the next attempt (its in-flight count taken): among those in, the fewest in flight, ties
        in this process's order; when all are out, the one that comes back first."""
        n = len(self.endpoints)
        with self._lock:
            now = time.monotonic()
            live = [e for e in self.endpoints if e.out_until <= now]
            if live:
                chosen = min(live, key=lambda e: (e.in_flight, (e.index - self._offset) % n))
            else:
                chosen = min(self.endpoints, key=lambda e: e.out_until)
            chosen.in_flight += 1
            return chosen

    def done(self, endpoint: Endpoint, failure: str | None = None) -> None:
        with self._lock:
            endpoint.in_flight -= 1
            if failure is None:
                endpoint.failures = 0
                endpoint.out_until = 0.0
                endpoint.answered += 1
                return
            endpoint.failures += 1
            wait = min(self.backoff_s * 2 ** (endpoint.failures - 1), MAX_BACKOFF_S)
            endpoint.out_until = time.monotonic() + wait
        if endpoint.failures == 1 and len(self.endpoints) > 1:  # once per outage, not per attempt
            warnings.warn(
                AgentbenchWarning(
                    f"{self.model + ': ' if self.model else ''}endpoint {endpoint.url} taken out for {wait:.0f} s "
                    f"({failure}); requests go to the others"
                ),
                stacklevel=2,
            )

    # -- what the backend asks after a request, in the thread that sent it --------------------------------------
    def answered(self) -> tuple[str | None, float | None]:
        """The endpoint that answered this thread's last request, and when (perf_counter) its first chunk came."""
        return getattr(self._local, "url", None), getattr(self._local, "first_chunk", None)

    def _answered_by(self, url: str, first_chunk: float | None) -> None:
        self._local.url, self._local.first_chunk = url, first_chunk

    def client_transport(self) -> PoolTransport:
        return PoolTransport(self)


class PoolTransport(httpx2.BaseTransport):
    """The openai client's transport: one attempt, to the endpoint the pool picks."""

    def __init__(self, pool: EndpointPool):
        from openai._constants import DEFAULT_CONNECTION_LIMITS

        self.pool = pool
        self.inner = httpx2.HTTPTransport(limits=DEFAULT_CONNECTION_LIMITS)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        url = str(request.url)
        rest = url[len(PREFIX) :] if url.startswith(PREFIX) else url.split("/", 3)[-1]
        endpoint = self.pool.pick()
        target = httpx2.URL(f"{endpoint.url}/{rest}")
        headers = request.headers.copy()
        headers["Host"] = target.netloc.decode("ascii")
        outgoing = httpx2.Request(
            request.method, target, headers=headers, stream=request.stream, extensions=request.extensions
        )
        first_chunk = None
        try:
            response = self.inner.handle_request(outgoing)
            assert isinstance(response.stream, httpx2.SyncByteStream)
            try:
                parts = []
                for chunk in response.stream:
                    if first_chunk is None and chunk:
                        first_chunk = time.perf_counter()
                    parts.append(chunk)
            finally:
                response.close()
        except Exception as exc:  # refused, timed out, dropped halfway: this attempt failed; the client retries
            self.pool.done(endpoint, f"{type(exc).__name__}: {first_line(str(exc))[:120]}")
            raise
        status = response.status_code
        self.pool.done(endpoint, f"HTTP {status}" if status >= 500 or status == 429 else None)
        if status < 400:
            self.pool._answered_by(endpoint.url, first_chunk)
        return httpx2.Response(
            status,
            headers=response.headers,
            stream=httpx2.ByteStream(b"".join(parts)),
            extensions=response.extensions,
            request=request,
        )

    def close(self) -> None:
        self.inner.close()

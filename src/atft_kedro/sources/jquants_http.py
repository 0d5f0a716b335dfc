"""Paged GET requests to the J-Quants API v2 with retries, backoff and a request-rate floor.

The official ``jquantsapi.ClientV2`` supplies the base URL, the session and the
``x-api-key`` headers. Its own retry adapter is mounted only for ``https://`` and ignores
our configuration, so :class:`JQuantsPager` gives the client a plain session and runs its
own loop: a 429 or 5xx answer (or a failed connection) is retried up to ``max_retries``
times after ``Retry-After`` seconds when the server sends that header, else after
``backoff_seconds * 2**attempt``. Every other failure raises :class:`JQuantsFetchError`
at once, naming the endpoint, the status and what to do.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from jquantsapi import ClientV2

logger = logging.getLogger(__name__)

#: Key of the row list in every v2 response, and of the next-page token.
DATA_KEY = "data"
PAGINATION_KEY = "pagination_key"

CREDENTIALS_HINT = (
    "check conf/local/credentials.yml: it must hold `jquants: {api_key: <your J-Quants API v2 key>}` "
    "(the key from the J-Quants dashboard)"
)


class JQuantsFetchError(RuntimeError):
    """A J-Quants endpoint could not be fetched; nothing of the run's tables is returned.

    Attributes:
        endpoint: the API path, e.g. ``/equities/bars/daily``.
        status: the HTTP status of the last answer, or None when there was none.
    """

    def __init__(self, endpoint: str, status: int | None, message: str) -> None:
        self.endpoint = endpoint
        self.status = status
        shown = "no HTTP answer" if status is None else f"HTTP {status}"
        super().__init__(f"J-Quants {endpoint} ({shown}): {message}")


@dataclass(frozen=True)
class RequestPolicy:
    """How requests are paced and retried (all from ``ingestion.jquants`` in conf).

    Attributes:
        max_retries: retries after the first attempt, for 429, 5xx and connection errors.
        backoff_seconds: base of the exponential backoff (attempt k waits base * 2**k).
        request_timeout_seconds: timeout of one HTTP request.
        min_seconds_between_requests: floor on the time between two request starts.
    """

    max_retries: int
    backoff_seconds: float
    request_timeout_seconds: float
    min_seconds_between_requests: float


def retry_after_seconds(header: str | None, now: datetime) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or HTTP date), None if absent/invalid."""
    if header is None or not header.strip():
        return None
    text = header.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _answer_detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])[:200]
    return response.text[:200]


def _fatal_status_message(status: int, detail: str) -> str:
    if status == 401:
        return f"the API key was rejected ({detail}); {CREDENTIALS_HINT}"
    if status == 403:
        return (
            f"access denied ({detail}); the plan of this API key may not cover this endpoint or "
            f"these dates: check the subscription, or narrow ingestion.jquants.start_date/end_date"
        )
    return (
        f"the request was refused ({detail}); check ingestion.jquants.base_url and the dates in "
        f"ingestion.jquants"
    )


def _exhausted_message(status: int | None, retries: int, detail: str) -> str:
    if status == 429:
        return (
            f"still rate limited after {retries} retries ({detail}); raise "
            f"ingestion.jquants.min_seconds_between_requests, backoff_seconds or max_retries"
        )
    if status is None:
        return (
            f"no answer after {retries} retries ({detail}); check ingestion.jquants.base_url, the "
            f"network, and request_timeout_seconds"
        )
    return f"server error persisted after {retries} retries ({detail}); J-Quants may be down, retry later"


class JQuantsPager:
    """Fetches every page of a J-Quants v2 query through a ``ClientV2``, with retries.

    Args:
        client: the official client; its ``JQUANTS_API_BASE`` is the base URL used.
        policy: retry and pacing settings.
        sleep: the sleeping function (``time.sleep``; tests may pass a recorder).
        clock: a monotonic clock in seconds.

    Attributes:
        requests_sent: HTTP requests sent so far (retries included).
        retries: retries done so far.
    """

    def __init__(
        self,
        client: ClientV2,
        policy: RequestPolicy,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._policy = policy
        self._sleep = sleep
        self._clock = clock
        # A plain session: ClientV2 mounts its own (unconfigurable) retry adapter only when
        # it creates the session itself, and only for https. Our loop is the one retry policy.
        self._session = requests.Session()
        client._session = self._session
        self._last_start: float | None = None
        self.requests_sent = 0
        self.retries = 0

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def pages(self, endpoint: str, query: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
        """Yield the row list of each page of ``endpoint`` for ``query``, following ``pagination_key``.

        Raises:
            JQuantsFetchError: on any failing request (see the module docstring).
        """
        params = dict(query)
        while True:
            payload = self._get_json(endpoint, params)
            yield payload[DATA_KEY]
            next_key = payload.get(PAGINATION_KEY)
            if not next_key:
                return
            if params.get(PAGINATION_KEY) == next_key:
                raise JQuantsFetchError(
                    endpoint, 200, f"the server repeated pagination_key {next_key!r} for {query}; stopping"
                )
            params[PAGINATION_KEY] = next_key

    def _pace(self) -> None:
        now = self._clock()
        if self._last_start is not None:
            wait = self._policy.min_seconds_between_requests - (now - self._last_start)
            if wait > 0:
                self._sleep(wait)
                now = self._clock()
        self._last_start = now

    def _send(self, url: str, params: dict[str, str]) -> requests.Response:
        self._pace()
        self.requests_sent += 1
        return self._session.get(
            url,
            params=params,
            headers=self._client._base_headers(),
            timeout=self._policy.request_timeout_seconds,
        )

    def _get_json(self, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self._client.JQUANTS_API_BASE}{endpoint}"
        shown = {k: v for k, v in params.items() if k != PAGINATION_KEY}
        attempt = 0
        while True:
            status: int | None
            try:
                response = self._send(url, params)
            except requests.RequestException as exc:  # refused, reset, timed out, truncated
                status, detail, wait_hint = None, f"{type(exc).__name__}: {exc}"[:200], None
            else:
                status = response.status_code
                if status == 429 or status >= 500:
                    detail = _answer_detail(response)
                    wait_hint = retry_after_seconds(response.headers.get("Retry-After"), datetime.now(UTC))
                elif not response.ok:
                    raise JQuantsFetchError(
                        endpoint, status, f"query {shown}: {_fatal_status_message(status, _answer_detail(response))}"
                    )
                else:
                    return self._decode(endpoint, response, shown)
            if attempt >= self._policy.max_retries:
                raise JQuantsFetchError(
                    endpoint, status, f"query {shown}: {_exhausted_message(status, attempt, detail)}"
                )
            wait = wait_hint if wait_hint is not None else self._policy.backoff_seconds * 2**attempt
            if self.retries == 0:
                logger.warning(
                    "J-Quants %s answered %s; retrying (first retry of this run, further ones at DEBUG "
                    "and counted in the per-endpoint summary)",
                    endpoint,
                    status if status is not None else detail,
                )
            logger.debug(
                "J-Quants %s %s: %s; retry %d/%d in %.2f s",
                endpoint, shown, status, attempt + 1, self._policy.max_retries, wait,
            )
            attempt += 1
            self.retries += 1
            self._sleep(wait)

    @staticmethod
    def _decode(endpoint: str, response: requests.Response, shown: dict[str, str]) -> dict[str, Any]:
        try:
            payload = response.json()
        except (ValueError, json.JSONDecodeError) as exc:
            raise JQuantsFetchError(
                endpoint,
                response.status_code,
                f"query {shown}: the answer is not valid JSON ({exc}); starts with {response.text[:80]!r}",
            ) from exc
        if not isinstance(payload, dict) or not isinstance(payload.get(DATA_KEY), list):
            keys = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
            raise JQuantsFetchError(
                endpoint,
                response.status_code,
                f"query {shown}: the answer has no '{DATA_KEY}' list (it has {keys}); the API may have "
                f"changed or the endpoint path is wrong",
            )
        return payload

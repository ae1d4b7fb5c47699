"""The SQS queue (``sqs://host:port/name?region=...``) through boto3; moto's server is the local stand-in.

SQS already has the whole model: visibility timeout, ``ApproximateReceiveCount``, ``ChangeMessageVisibility``
(nack with delay, extend), ``DelaySeconds``. Two differences from the other backends, both SQS's own:
durations are whole seconds (a 0.2 s visibility is 1 s here, rounded up so a message is never redelivered
early), and depth is ``ApproximateNumberOfMessages``. SQS applies a nack or extend made with an old receipt
handle to the message's current delivery, so this class remembers the latest handle and deadline of each
message it handed out and ignores stale ones, as the other backends do. Dead-lettering is done by this class, not by a
RedrivePolicy, so the DLQ entry carries the receive count and the last error as message attributes on every
backend alike; the DLQ is the queue ``<name>-dlq``.

The endpoint is the URL's host (``http://`` unless ``?secure=1``), else ``AWS_ENDPOINT_URL`` (which boto3
reads itself), else real AWS. Against a local endpoint with no credentials configured, dummy ones are used:
moto accepts any.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3  # type: ignore[import-untyped, unused-ignore]
import botocore.config  # type: ignore[import-untyped, unused-ignore]
import botocore.exceptions  # type: ignore[import-untyped, unused-ignore]

from ..errors import BackendUnavailableError, ConfigError
from .base import EXPIRED_ERROR, DeadLetter, Message, QueueOptions, decode, encode, redact, retry_until

__all__ = ["SQSQueue"]

# platform-facts.md, Queues, "SQS long poll": WaitTimeSeconds 0-20 s (source Q2).
_MAX_WAIT_S = 20
# platform-facts.md, Queues, "SQS batch": 10 messages (source Q3).
_MAX_BATCH = 10
_POLL_S = 0.05
_STALE = ("ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight",
          "AWS.SimpleQueueService.MessageNotInflight")


def _whole(seconds: float) -> int:
    return max(0, math.ceil(seconds - 1e-9))


class SQSQueue:
    """A queue in SQS (or moto) with the semantics of ``emulators.queues.base``."""

    def __init__(self, url: str, name: str, options: QueueOptions | None = None, *, client: Any = None) -> None:
        self.name = name
        self.url = redact(url)
        self.options = options or QueueOptions()
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        endpoint = None
        if parts.hostname:
            scheme = "https" if query.get("secure") in ("1", "true") else "http"
            endpoint = f"{scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        self._sqs = client if client is not None else self._client(endpoint, query.get("region"))
        self._inflight: dict[str, tuple[str, float]] = {}  # MessageId -> (latest receipt handle, deadline)
        self._lock = threading.Lock()
        self._dlq_url = self._guard("open", self._create, f"{name}-dlq")
        self._url = self._guard("open", self._create, name)

    def _client(self, endpoint: str | None, region: str | None) -> Any:
        session = boto3.session.Session()
        kwargs: dict[str, Any] = {
            "region_name": region or session.region_name or "us-east-1",
            "config": botocore.config.Config(
                connect_timeout=self.options.connect_timeout_s,
                read_timeout=_MAX_WAIT_S + 5,  # past the longest long poll
                retries={"max_attempts": 2, "mode": "standard"},
            ),
        }
        if endpoint is not None:
            kwargs["endpoint_url"] = endpoint
            if session.get_credentials() is None:
                kwargs.update(aws_access_key_id="testing", aws_secret_access_key="testing")
        return session.client("sqs", **kwargs)

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
                botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectionClosedError) as exc:
            raise BackendUnavailableError(
                f"cannot reach SQS at {self.url} (queue {self.name!r}, {what}): {exc}; start the endpoint "
                f"(e.g. `moto_server -p PORT`) or fix the URL / AWS_ENDPOINT_URL, then retry"
            ) from exc
        except botocore.exceptions.NoCredentialsError as exc:
            raise ConfigError(
                f"no AWS credentials for SQS at {self.url}; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                f"or a profile, or give the URL a local endpoint host"
            ) from exc

    def _guard(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self._errors(what):
            return fn(*args, **kwargs)

    def _create(self, name: str) -> str:
        return str(self._sqs.create_queue(QueueName=name)["QueueUrl"])

    def send(self, task_id: str, body: dict[str, Any], *, delay_s: float = 0.0) -> None:
        """Enqueue a message, visible after ``delay_s`` (whole seconds, at most SQS's 900)."""
        raw = encode(task_id, body, self.options.max_bytes, self.name)
        self._guard("send", self._sqs.send_message, QueueUrl=self._url, MessageBody=raw,
                    DelaySeconds=min(_whole(delay_s), 900))

    def receive(self, max_messages: int = 1, *, wait_s: float = 0.0,
                visibility_s: float | None = None) -> list[Message]:
        """Up to ``max_messages`` (at most 10) visible messages, waiting up to ``wait_s`` for the first."""
        visibility = _whole(self.options.visibility_s if visibility_s is None else visibility_s) or 1
        deadline = time.monotonic() + max(wait_s, 0.0)
        while True:
            left = deadline - time.monotonic()
            resp = self._guard(
                "receive", self._sqs.receive_message, QueueUrl=self._url,
                MaxNumberOfMessages=max(1, min(max_messages, _MAX_BATCH)), VisibilityTimeout=visibility,
                WaitTimeSeconds=min(int(left), _MAX_WAIT_S) if left >= 1 else 0,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
            out: list[Message] = []
            moved = 0
            now = time.monotonic()
            with self._lock:
                for mid in [k for k, (_, until) in self._inflight.items() if until <= now]:
                    del self._inflight[mid]
            for m in resp.get("Messages", []):
                rc = int(m["Attributes"]["ApproximateReceiveCount"])
                if rc > self.options.max_receives:
                    # SQS counts this receive too; the consumers saw one fewer.
                    self._dead_letter(m["Body"], m["ReceiptHandle"], rc - 1, EXPIRED_ERROR)
                    moved += 1
                    continue
                task_id, body = decode(m["Body"])
                with self._lock:
                    self._inflight[m["MessageId"]] = (m["ReceiptHandle"], now + visibility)
                out.append(Message(task_id, body, rc, f"{m['MessageId']} {m['ReceiptHandle']}"))
            if out or (not moved and time.monotonic() >= deadline):
                return out
            if not moved:
                time.sleep(min(_POLL_S, max(deadline - time.monotonic(), 0.0)))

    def _dead_letter(self, raw: str, receipt: str, rc: int, error: str) -> None:
        # Send first, then delete: a crash in between duplicates into the DLQ rather than losing the message.
        self._guard("dead-letter", self._sqs.send_message, QueueUrl=self._dlq_url, MessageBody=raw,
                    MessageAttributes={
                        "receive_count": {"DataType": "Number", "StringValue": str(rc)},
                        "error": {"DataType": "String", "StringValue": error or "-"},
                    })
        self._quiet("dead-letter", self._sqs.delete_message, QueueUrl=self._url, ReceiptHandle=receipt)

    def _quiet(self, what: str, fn: Any, **kwargs: Any) -> bool:
        """Call ``fn``; a stale receipt (message since redelivered or deleted) is no error: False."""
        try:
            self._guard(what, fn, **kwargs)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _STALE:
                return False
            raise
        return True

    def _held(self, message: Message, *, release: bool) -> str | None:
        """The receipt handle if ``message`` is its message's current, unexpired delivery, else None."""
        mid, _, handle = message.receipt.partition(" ")
        with self._lock:
            latest = self._inflight.get(mid)
            if latest is None or latest[0] != handle or latest[1] <= time.monotonic():
                return None
            if release:
                del self._inflight[mid]
        return handle

    def ack(self, message: Message) -> None:
        """Delete the message. Late acks still try, as SQS does with an old receipt handle."""
        mid, _, handle = message.receipt.partition(" ")
        with self._lock:
            self._inflight.pop(mid, None)
        self._quiet("ack", self._sqs.delete_message, QueueUrl=self._url, ReceiptHandle=handle)

    def nack(self, message: Message, *, delay_s: float = 0.0, error: str | None = None) -> None:
        """Release the message for another try after ``delay_s``; its last allowed try goes to the DLQ."""
        handle = self._held(message, release=True)
        if handle is None:
            return
        if message.receive_count >= self.options.max_receives:
            raw = encode(message.id, message.body, 1 << 62, self.name)
            self._dead_letter(raw, handle, message.receive_count, error or "released after its last allowed receive")
            return
        self._quiet("nack", self._sqs.change_message_visibility, QueueUrl=self._url,
                    ReceiptHandle=handle, VisibilityTimeout=_whole(delay_s))

    def extend(self, message: Message, visibility_s: float) -> None:
        """Keep the message invisible for ``visibility_s`` more seconds from now (rounded up)."""
        handle = self._held(message, release=False)
        if handle is None:
            return
        seconds = _whole(visibility_s)
        if self._quiet("extend", self._sqs.change_message_visibility, QueueUrl=self._url,
                       ReceiptHandle=handle, VisibilityTimeout=seconds):
            with self._lock:
                mid = message.receipt.partition(" ")[0]
                if mid in self._inflight:
                    self._inflight[mid] = (handle, time.monotonic() + seconds)

    def depth(self) -> int:
        """SQS's ApproximateNumberOfMessages: the visible ones."""
        attrs = self._guard("depth", self._sqs.get_queue_attributes, QueueUrl=self._url,
                            AttributeNames=["ApproximateNumberOfMessages"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    def dead_letters(self) -> list[DeadLetter]:
        """The dead-lettered messages; read with a zero visibility so they stay there for the next reader."""
        seen: dict[str, DeadLetter] = {}
        for _ in range(100):  # SQS hands out at most 10 a call; stop when a call brings nothing new
            resp = self._guard("dead_letters", self._sqs.receive_message, QueueUrl=self._dlq_url,
                               MaxNumberOfMessages=_MAX_BATCH, VisibilityTimeout=0,
                               MessageAttributeNames=["All"])
            fresh = [m for m in resp.get("Messages", []) if m["MessageId"] not in seen]
            if not fresh:
                break
            for m in fresh:
                attrs = m.get("MessageAttributes", {})
                task_id, body = decode(m["Body"])
                seen[m["MessageId"]] = DeadLetter(task_id, body, int(attrs["receive_count"]["StringValue"]),
                                                  attrs["error"]["StringValue"])
        return list(seen.values())

    def reconnect(self, timeout_s: float = 30.0) -> None:
        """Wait, with back-off, until the endpoint answers again (HTTP needs no session to restore)."""
        retry_until(lambda: self._guard("reconnect", self._sqs.get_queue_url, QueueName=self.name),
                    timeout_s, f"SQS at {self.url}")

    def purge(self) -> None:
        """Drop every message, dead letters included (SQS allows one purge a minute per queue)."""
        for url in (self._url, self._dlq_url):
            self._guard("purge", self._sqs.purge_queue, QueueUrl=url)

    def delete(self) -> None:
        """Delete the queue and its DLQ."""
        for url in (self._url, self._dlq_url):
            self._quiet("delete", self._sqs.delete_queue, QueueUrl=url)

    def close(self) -> None:
        """Release the HTTP connection pool."""
        with contextlib.suppress(Exception):
            self._sqs.close()

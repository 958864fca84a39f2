"""Throttling, as AWS answers it, on a share of the calls of the binary under test.

`MOTO_LIKE`'s `"throttle": 0.2` refuses 20 % of the calls made through the AWS
SDK for Rust (recognised by its user agent, `aws-sdk-rust`) before moto sees
them; `"seed"` fixes the random sequence. The test's own calls (boto3 seeding,
the plain JSON calls of tests/it/moto.rs) and moto's `/moto-api/` are never
refused, so a test's setup and its checks do not depend on luck.

Each refusal has the shape of its service's protocol, so that the SDK
classifies it as throttling (and retries it) exactly as it would AWS's:

- JSON protocol (ECS, CloudWatch Logs, Secrets Manager: an `X-Amz-Target`
  header): HTTP 400, `{"__type": "ThrottlingException", "message": ...}`.
- EC2 query protocol: HTTP 503, `<Response><Errors><Error><Code>
  RequestLimitExceeded</Code>...`.
- Query and REST-XML (RDS, STS, Route53): HTTP 400, `<ErrorResponse><Error>
  <Type>Sender</Type><Code>Throttling</Code>...`.

`GET /moto-like/stats` answers `{"calls": {...}, "throttled": {...}}`, counts
per `service:Action` of the binary's calls, refused or not.
"""

import io
import json
import os
import random
import threading
import uuid
from urllib.parse import parse_qs

from moto.moto_server import werkzeug_app

_like = json.loads(os.environ.get("MOTO_LIKE") or "{}")
SHARE = float(_like.get("throttle") or 0)
_random = random.Random(_like.get("seed"))
_lock = threading.Lock()
_stats = {"calls": {}, "throttled": {}}


def _count(kind, key):
    with _lock:
        _stats[kind][key] = _stats[kind].get(key, 0) + 1


def _service(environ):
    """The service name of the SigV4 credential scope, e.g. `ecs`."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" not in auth:
        return "unknown"
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    return scope[3] if len(scope) > 3 else "unknown"


def _body(environ):
    """The request body, read once and put back for moto."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _action(environ, body):
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    if body:
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    query = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if query:
        return query[0]
    return f"{environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')}"


def _refusal(environ, service):
    """(status line, headers, body) of a throttling error in the protocol of the call."""
    request_id = str(uuid.uuid4())
    if environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"})
        headers = [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", "ThrottlingException"),
        ]
        return "400 Bad Request", headers, body
    if service == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            "<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
        return "503 Service Unavailable", [("Content-Type", "text/xml")], body
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>Sender</Type>'
        "<Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    return "400 Bad Request", headers, body


def _answer(start_response, status, headers, body):
    data = body.encode()
    start_response(status, headers + [("Content-Length", str(len(data)))])
    return [data]


_original_call = werkzeug_app.DomainDispatcherApplication.__call__


def _call(self, environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/moto-like/stats":
        with _lock:
            body = json.dumps(_stats)
        return _answer(start_response, "200 OK", [("Content-Type", "application/json")], body)
    binary = "aws-sdk-rust" in environ.get("HTTP_USER_AGENT", "") + environ.get(
        "HTTP_X_AMZ_USER_AGENT", ""
    )
    if not binary or path.startswith("/moto-api"):
        return _original_call(self, environ, start_response)
    service = _service(environ)
    key = f"{service}:{_action(environ, _body(environ))}"
    _count("calls", key)
    with _lock:
        refuse = SHARE > 0 and _random.random() < SHARE
    if refuse:
        _count("throttled", key)
        return _answer(start_response, *_refusal(environ, service))
    return _original_call(self, environ, start_response)


werkzeug_app.DomainDispatcherApplication.__call__ = _call

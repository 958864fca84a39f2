"""moto, made to behave like AWS where it matters, configured per test.

The one module the launcher in tests/it/moto.rs imports before it runs moto's
server (`Moto::start_like`; `start`, `start_ecs` and `shared` too, with nothing
configured). By hand:

    MOTO_LIKE='{"throttle": 0.2, "ecs": {"missing": 60}}' \\
        python3 tests/it/moto_like.py -H 127.0.0.1 -p 5000

The behaviour is one JSON object in the environment variable `MOTO_LIKE`; a
missing key keeps moto's own instant, always consistent behaviour:

    {
      "throttle": 0.2,   # moto_throttle.py: share of the binary's calls refused
                         # with the service's throttling error
      "seed": 7,         # optional: the throttle's random sequence
      "ecs": {...},      # moto_ecs.py: task timeline (MISSING, PROVISIONING ...)
      "rds": {...},      # moto_rds.py, when present: RDS, Secrets Manager and
      "route53": {...}   # Route53 state machines
    }

Each module reads `MOTO_LIKE` itself, so they stay independent; this one only
checks that it is a JSON object.
`GET /moto-like/stats` answers what the harness did (calls seen and refused,
per service and action), so that a test can show the behaviour took place.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


if not isinstance(json.loads(os.environ.get("MOTO_LIKE") or "{}"), dict):
    raise SystemExit("MOTO_LIKE must be a JSON object")


# Order matters only for the throttle, which wraps the request dispatcher and so
# sees every call before any service module does.
import moto_throttle  # noqa: E402,F401
import moto_ecs  # noqa: E402,F401

try:
    import moto_rds  # noqa: F401
except ModuleNotFoundError as e:
    if e.name != "moto_rds":
        raise

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])

"""A task that waits on the model: one chat completion (2 platform seconds on the benchmarks' script).

Plain ``http.client`` on a kept-alive connection per thread (a replica runs several calls at once, each
in a thread of its own), not the openai SDK: the day-of-traffic benchmark runs 50,000 of these, and it
measures the harness's clock, not the SDK's per-request CPU.
"""

import http.client
import json
import os
import threading
from urllib.parse import urlsplit

_LOCAL = threading.local()


def agent(task, ctx):
    base = urlsplit(os.environ["OPENAI_BASE_URL"])
    conn = getattr(_LOCAL, "conn", None)
    if conn is None:
        conn = _LOCAL.conn = http.client.HTTPConnection(base.hostname, base.port, timeout=600)
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": task.get("q", "hi")}]})
    conn.request("POST", base.path.rstrip("/") + "/chat/completions", body=body,
                  headers={"content-type": "application/json",
                           "authorization": "Bearer " + os.environ["OPENAI_API_KEY"],
                           "x-harness-invocation": ctx.invocation_id})
    reply = json.loads(conn.getresponse().read())
    return {"tokens": reply["usage"]["total_tokens"]}

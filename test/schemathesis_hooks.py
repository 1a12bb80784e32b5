"""Schemathesis hooks of the OpenAPI fuzz test (test/integration/openapi-fuzz.test.ts).

In the stateful phase every request gets an Idempotency-Key of its own. The fuzzer draws the
header's value like any other, so two steps of a sequence can share one; the second is then a
replay, answered with the first's response, as the API promises (docs/access.md, "Idempotency"):
a create replayed after its resource was deleted answers the original 201, and the stateful checks
(a created resource is there, a deleted one is gone) would read that as the API's fault. The other
phases keep the drawn keys, so the header itself is still fuzzed.
"""

import uuid

import schemathesis


@schemathesis.hook
def before_call(context, case, kwargs):
    meta = case.meta
    if meta is None or str(meta.phase.name.value) != "stateful" or not case.headers:
        return
    for name in list(case.headers):
        if name.lower() == "idempotency-key":
            case.headers[name] = str(uuid.uuid4())

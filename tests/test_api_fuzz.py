"""Property-based fuzzing of the page's API over real HTTP (hypothesis), driven by its OpenAPI description.

Properties: no request ever gets a 5xx; every state-changing request without a session is refused (401), and
every one with a session but without the right CSRF token is refused (403).
"""

from __future__ import annotations

import json

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from web_ui.openapi import OPENAPI

PATHS = sorted(OPENAPI["paths"])
METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]
CHANGING = {"POST", "PATCH", "PUT", "DELETE"}
EXTRA_PATHS = [
    "/",
    "/history",
    "/settings",
    "/system",
    "/videos",
    "/callback",
    "/api/nope",
    "/api/settings/x",
    "/static/app.js",
    "/static/../device/config.py",
    "/login",
    "/setup",
    "/logout",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def valid_value(schema: dict) -> st.SearchStrategy:
    """Values that satisfy the schema, so the fuzzer also gets past validation into the handlers."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "oneOf" in schema:
        return st.one_of([valid_value(s) for s in schema["oneOf"]])
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        props = {k: valid_value(v) for k, v in schema["properties"].items()}
        keys = st.lists(st.sampled_from(sorted(props)), min_size=1, max_size=2, unique=True)
        return keys.flatmap(lambda ks: st.fixed_dictionaries({k: props[k] for k in ks}))
    if kind == "object":
        return st.dictionaries(
            valid_value(schema["propertyNames"]), valid_value(schema["additionalProperties"]), min_size=1, max_size=2
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(schema.get("minimum", 0), schema.get("maximum", 100))
    if kind == "number":
        return st.floats(schema.get("minimum", 0), schema.get("maximum", 100), allow_nan=False).filter(
            lambda x: x > schema.get("exclusiveMinimum", -1e9)
        )
    if kind == "string" and "pattern" in schema:
        return st.sampled_from(["00:00", "07:30", "22:15", "23:59"])
    if kind == "null":
        return st.none()
    return st.text(max_size=schema.get("maxLength", 30))


def schema_value(schema: dict) -> st.SearchStrategy:
    """Values near a schema (often valid, often just wrong), so the fuzzer reaches the handlers' logic."""
    if "enum" in schema:
        valid = st.sampled_from(schema["enum"])
        return st.one_of(valid, valid, valid, json_values)
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        props = {k: schema_value(v) for k, v in schema["properties"].items()}
        return st.fixed_dictionaries({}, optional=props) | json_values
    if kind == "object":
        return st.dictionaries(
            st.sampled_from(["happy", "sad", "nope", ""]),
            schema_value(schema.get("additionalProperties", {})),
            max_size=3,
        )
    if kind == "boolean":
        return st.one_of(st.booleans(), st.booleans(), json_values)
    if kind in ("number", "integer"):
        lo, hi = schema.get("minimum", -1e6), schema.get("maximum", 1e6)
        inside = st.integers(int(lo), int(hi)) if kind == "integer" else st.floats(lo, hi, allow_nan=False)
        return st.one_of(inside, inside, st.floats(lo - 10, hi + 10, allow_nan=False), json_values)
    if kind == "string":
        return st.text(max_size=60) | st.sampled_from(
            ["12:00", "25:99", "spotify:playlist:x", "http://127.0.0.1:1/callback?code=a&state=b"]
        )
    return json_values


@st.composite
def api_request(draw):
    if draw(st.integers(0, 9)) == 0:
        path = draw(st.sampled_from(EXTRA_PATHS))
        method = draw(st.sampled_from(METHODS))
        op = {}
    else:
        path = draw(st.sampled_from(PATHS))
        declared = list(OPENAPI["paths"][path])
        method = (
            draw(st.sampled_from(declared)) if draw(st.integers(0, 4)) else draw(st.sampled_from(METHODS))
        ).upper()
        op = OPENAPI["paths"][path].get(method.lower(), {})
    params = {}
    for p in op.get("parameters", []):
        if draw(st.booleans()):
            params[p["name"]] = draw(
                st.one_of(st.text(max_size=20), st.sampled_from(["nan", "inf", "-1", "0", "1e400", "24", "happy"]))
            )
    kind = draw(st.sampled_from(["schema", "schema", "schema", "json", "garbage", "form", "none"]))
    headers, data = {}, None
    if kind == "schema" and "requestBody" in op:
        headers["Content-Type"] = "application/json"
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        value = draw(st.one_of(valid_value(schema), schema_value(schema)))
        data = json.dumps(value, allow_nan=True)
    elif kind == "json":
        headers["Content-Type"] = "application/json"
        data = json.dumps(draw(json_values), allow_nan=True)
    elif kind == "garbage":
        headers["Content-Type"] = draw(
            st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"])
        )
        data = draw(st.binary(max_size=200))
    elif kind == "form":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        data = "&".join(
            f"{k}={v}"
            for k, v in draw(
                st.dictionaries(st.text("abcdefghij_", max_size=8), st.text(max_size=8), max_size=3)
            ).items()
        )
    return method, path, params, headers, data


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from tests.conftest import DaemonProcess, isolated_env

    tmp = tmp_path_factory.mktemp("fuzz")
    cfg = tmp / "moodbox.toml"
    cfg.write_text(
        '[camera]\nsource = "demo"\n[spotify]\nclient_id = "fuzz-client"\napi_url = "http://127.0.0.1:9/v1/"\n'
        'accounts_url = "http://127.0.0.1:9"\n'
    )
    d = DaemonProcess(tmp, ["--config", str(cfg)], isolated_env(tmp))
    d.wait_healthy()
    signed_in = d.login()
    yield d, signed_in
    assert "Traceback" not in d.log(), d.log()[-3000:]
    d.stop()


def send(http: requests.Session, base: str, req, csrf: str | None) -> requests.Response:
    method, path, params, headers, data = req
    headers = dict(headers)
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    stream = path == "/api/events"
    r = http.request(
        method, base + path, params=params, headers=headers, data=data, timeout=20, stream=stream, allow_redirects=False
    )
    if stream:
        r.close()
    return r


FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(req=api_request())
def test_signed_in_requests_never_get_a_5xx(live, req):
    d, http = live
    if req[1] == "/logout" and req[0] == "POST":
        return  # would end the fuzzing session itself
    r = send(http, d.base, req, http.headers["X-CSRF-Token"])
    assert r.status_code < 500, (req, r.status_code, r.text[:300])


@FUZZ
@given(req=api_request())
def test_without_a_session_nothing_changes_and_the_api_is_closed(live, req):
    d, _ = live
    method, path = req[0], req[1]
    r = send(requests.Session(), d.base, req, csrf="guessed-token")
    assert r.status_code < 500
    if path in ("/healthz", "/login", "/setup") or path.startswith("/static/"):
        return
    if method in CHANGING or path.startswith("/api/"):
        assert r.status_code in (401, 404, 405), (req, r.status_code)
    else:
        assert r.status_code in (302, 401, 404, 405), (req, r.status_code)


@FUZZ
@given(req=api_request(), token=st.sampled_from([None, "", "wrong", "x" * 32]))
def test_state_changes_without_the_csrf_token_are_refused(live, req, token):
    d, http = live
    method, path = req[0], req[1]
    if method not in CHANGING or path in ("/login", "/setup"):
        return
    bare = requests.Session()
    bare.cookies.update(http.cookies)
    r = send(bare, d.base, req, csrf=token)
    assert r.status_code in (403, 404, 405), (req, r.status_code)


def test_the_fuzzed_daemon_is_still_healthy(live):
    d, http = live
    assert http.get(d.base + "/healthz", timeout=5).status_code == 200
    assert http.get(d.base + "/api/state", timeout=5).status_code == 200

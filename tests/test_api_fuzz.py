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
    if kind == "array":  # ignored areas: whole areas, every key inside its bounds
        item = st.fixed_dictionaries({k: valid_value(v) for k, v in schema["items"]["properties"].items()})
        return st.lists(item, max_size=schema["maxItems"])
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
    if kind == "array":
        return st.lists(schema_value(schema["items"]), max_size=schema["maxItems"] + 1) | json_values
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
        '[camera]\nsource = "demo"\n[spotify]\nclient_id = "f0220000000000000000000000000000"\napi_url = "http://127.0.0.1:9/v1/"\n'
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


# -- strict types: the settings API accepts exactly what its OpenAPI description says ------------------------------
# The oracle is a JSON Schema validator run on the published description itself. Values are drawn inside each
# type and just outside it: text for numbers, booleans for numbers, numbers for booleans, trailing newlines,
# bounds and a hair past them, whole-number floats for integers, NaN and infinity (which no JSON document holds).


def _is_json(value) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


def near_value(schema: dict) -> st.SearchStrategy:
    """Values inside a schema and just outside it, type by type."""
    wrong_kind = st.sampled_from([None, [], {}, "", "1", "true", True, False, 0, 1, -1, 0.5])
    if "enum" in schema:
        words = schema["enum"]
        near = [w.upper() for w in words] + [w + "\n" for w in words] + [" " + w for w in words]
        return st.sampled_from(words) | st.sampled_from(near) | wrong_kind
    kind = schema.get("type")
    if kind == "boolean":
        return st.booleans() | st.sampled_from([0, 1, 0.0, 1.0, "true", "false", "yes", "no", "1", "", None, [True]])
    if kind in ("number", "integer"):
        lo, hi = schema["minimum"], schema["maximum"]
        edges = [lo, hi, lo - 1, hi + 1, lo - 1e-9, hi + 1e-9, float(lo), float(hi), 10**30, -(10**30)]
        inside = st.integers(int(lo), int(hi))
        if kind == "number":
            inside |= st.floats(lo, hi)
        else:
            inside |= st.sampled_from([float(lo), float(hi), lo + 0.5, float(int((lo + hi) / 2))])
        texts = st.sampled_from([str(lo), str(hi), f"{hi}\n", f" {lo}", "5", "1e2", "NaN", "Infinity"])
        odd = st.sampled_from([True, False, None, float("nan"), float("inf"), -float("inf"), [lo], {"value": lo}])
        return inside | st.sampled_from(edges) | texts | odd
    if kind == "string" and "pattern" in schema:
        good = ["00:00", "07:00", "12:30", "23:59"]
        bad = ["07:00\n", "07:00 ", " 07:00", "7:00", "24:00", "23:60", "07:00:00", "0700", "\u0660\u0667:\u0660\u0660"]
        return st.sampled_from(good) | st.sampled_from(bad) | wrong_kind
    if kind == "string":
        n = schema.get("maxLength", 30)
        return st.text(max_size=8) | st.sampled_from(["x" * n, "x" * (n + 1), "é" * n, "é" * (n + 1)]) | wrong_kind
    if kind == "array":  # ignored areas: lists up to a little past the limit, of items inside and outside theirs
        inside = {
            k: st.floats(v["minimum"], v["maximum"]) | st.sampled_from([v["minimum"], v["maximum"]])
            for k, v in schema["items"]["properties"].items()
        }  # whole areas, as the page sends them
        item = st.fixed_dictionaries(inside) | near_value(schema["items"])
        return st.lists(item, max_size=schema["maxItems"] + 1) | st.sampled_from([[{}], [[0, 0, 1, 1]]]) | wrong_kind
    if kind == "object" and "properties" in schema:
        props = {k: near_value(v) for k, v in schema["properties"].items()}
        extra = st.fixed_dictionaries({}, optional={"nope": st.just(1)})
        known = st.fixed_dictionaries({}, optional=props)
        return st.builds(lambda a, b: {**a, **b}, known, extra) | wrong_kind
    if kind == "object":  # music: mood -> how to find its music
        moods = st.sampled_from([*schema["propertyNames"]["enum"], "Happy", "nobody", ""])
        return st.dictionaries(moods, near_value(schema["additionalProperties"]), max_size=2) | wrong_kind
    return wrong_kind


def settings_body() -> st.SearchStrategy:
    from web_ui.openapi import SETTINGS_SCHEMA

    props = SETTINGS_SCHEMA["properties"]
    some = st.lists(st.sampled_from(sorted(props)), max_size=3, unique=True)
    changes = some.flatmap(lambda keys: st.fixed_dictionaries({k: near_value(props[k]) for k in keys}))
    return changes | st.sampled_from([[], "cooldown_minutes", None, {"cooldown": 5}])


STRICT = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


@STRICT
@given(changes=settings_body())
def test_settings_accept_exactly_what_the_description_allows(live, changes):
    from jsonschema import Draft202012Validator

    from web_ui.openapi import SETTINGS_SCHEMA

    d, http = live
    valid = _is_json(changes) and Draft202012Validator(SETTINGS_SCHEMA).is_valid(changes)
    body = json.dumps(changes, allow_nan=True)
    r = http.patch(d.base + "/api/settings", data=body, headers={"Content-Type": "application/json"}, timeout=20)
    assert r.status_code == (200 if valid else 400), (changes, r.status_code, r.text[:300])
    if not valid:
        assert r.json()["error"]
        return
    saved = http.get(d.base + "/api/settings", timeout=10).json()
    for key, value in changes.items():
        if isinstance(value, dict):
            for inner, v in value.items():
                got = saved[key][inner]
                if isinstance(v, dict):  # a mood's music: what was sent, its value trimmed
                    assert got == {**got, **{k: x.strip() if k == "value" else x for k, x in v.items()}}
                elif SETTINGS_SCHEMA["properties"][key].get("properties", {}).get(inner, {}).get("type") == "integer":
                    assert got == v and type(got) is int  # 40.0 is the whole number 40
                else:
                    assert got == v and type(got) is type(v)
        elif key == "history_days":
            assert saved[key] == value and type(saved[key]) is int
        else:  # stored with the JSON type it was sent as: a number stays a number, true stays true
            assert saved[key] == value and isinstance(saved[key], type(value) if type(value) is not int else float)


@STRICT
@given(payload=near_value({"type": "object", "properties": {"enabled": {"type": "boolean"}}}))
def test_autoplay_accepts_exactly_what_the_description_allows(live, payload):
    from jsonschema import Draft202012Validator

    from web_ui.openapi import AUTOPLAY_SCHEMA

    d, http = live
    valid = Draft202012Validator(AUTOPLAY_SCHEMA).is_valid(payload)
    r = http.post(d.base + "/api/autoplay", json=payload, timeout=20)
    assert r.status_code == (200 if valid else 400), (payload, r.status_code, r.text[:300])
    if valid:
        assert r.json()["autoplay"] is payload["enabled"]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"cooldown_minutes": "5"}, "valid number"),
        ({"cooldown_minutes": True}, "valid number"),
        ({"autoplay": "yes"}, "true or false"),
        ({"autoplay": 1}, "true or false"),
        ({"quiet_hours": {"start": "07:00\n"}}, "HH:MM"),
        ({"history_days": 30.5}, "whole number"),
        ({}, "JSON object with the settings"),
    ],
)
def test_the_loose_values_of_issue_10_are_refused_by_name(live, changes, problem):
    d, http = live
    r = http.patch(d.base + "/api/settings", json=changes, timeout=20)
    assert r.status_code == 400 and problem in r.text, r.text
    key = next(iter(changes), None)
    if key:
        assert key in r.json()["problems"] or f"{key}.start" in r.json()["problems"]

"""YouTube suggestions with google-api-python-client, offline: the bundled discovery document and
HttpMockSequence answering with YouTube's real response and error bodies."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlparse

import pytest
from googleapiclient.http import HttpMockSequence

from device.store import Store
from device.videos import VideoSuggestions


def results(*ids: str) -> bytes:
    return json.dumps(
        {
            "kind": "youtube#searchListResponse",
            "regionCode": "GB",
            "pageInfo": {"totalResults": 1000, "resultsPerPage": 12},
            "items": [
                {
                    "kind": "youtube#searchResult",
                    "etag": "x",
                    "id": {"kind": "youtube#video", "videoId": i},
                    "snippet": {"title": f"Song {i}", "channelTitle": f"Channel {i}", "liveBroadcastContent": "none"},
                }
                for i in ids
            ],
        }
    ).encode()


def google_error(code: int, reason: str, message: str, domain: str = "youtube.quota") -> bytes:
    return json.dumps(
        {
            "error": {
                "code": code,
                "message": message,
                "errors": [{"message": message, "domain": domain, "reason": reason}],
            }
        }
    ).encode()


QUOTA = google_error(403, "quotaExceeded", "The request cannot be completed because you have exceeded your quota.")


class Recording(HttpMockSequence):
    """HttpMockSequence that also keeps the URIs asked for, and fails loudly if asked more than scripted."""

    def __init__(self, responses):
        super().__init__(responses)
        self.uris: list[str] = []

    def request(self, uri, method="GET", body=None, headers=None, redirections=1, connection_type=None):
        if not self._iterable:
            raise AssertionError(f"unexpected YouTube call: {uri}")
        self.uris.append(uri)
        return super().request(uri, method, body, headers, redirections, connection_type)


def make(tmp_path, responses, key="test-key", budget=90, region="GB"):
    http = Recording(responses)
    return VideoSuggestions(key, region, Store(tmp_path / "m.db"), budget, http=http), http


def test_search_parameters_and_result_shape(tmp_path):
    yt, http = make(tmp_path, [({"status": "200"}, results("a1", "b2"))])
    out = yt.for_mood("happy")
    assert out["source"] == "live" and out["notice"] is None
    assert [v["id"] for v in out["videos"]] == ["a1", "b2"]
    assert out["videos"][0]["embed"] == "https://www.youtube-nocookie.com/embed/a1"
    q = parse_qs(urlparse(http.uris[0]).query)
    assert urlparse(http.uris[0]).path == "/youtube/v3/search"
    assert q["type"] == ["video"] and q["videoEmbeddable"] == ["true"] and q["safeSearch"] == ["strict"]
    assert q["regionCode"] == ["GB"] and q["videoCategoryId"] == ["10"] and q["key"] == ["test-key"]
    assert int(q["maxResults"][0]) <= 50


def test_results_are_cached_per_mood_and_region(tmp_path):
    yt, http = make(tmp_path, [({"status": "200"}, results("a")), ({"status": "200"}, results("s"))])
    assert yt.for_mood("happy")["source"] == "live"
    assert yt.for_mood("happy")["source"] == "cache"  # no second call: the mock has none left for happy
    assert yt.for_mood("sad")["videos"][0]["id"] == "s"
    assert len(http.uris) == 2
    other_region = VideoSuggestions("test-key", "US", yt.store, http=Recording([({"status": "200"}, results("u"))]))
    assert other_region.for_mood("happy")["videos"][0]["id"] == "u"


def test_cache_expires(tmp_path, monkeypatch):
    yt, _http = make(tmp_path, [({"status": "200"}, results("old")), ({"status": "200"}, results("new"))])
    yt.for_mood("happy")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 13 * 3600)
    assert yt.for_mood("happy")["videos"][0]["id"] == "new"


def test_daily_budget_is_enforced(tmp_path):
    yt, http = make(tmp_path, [({"status": "200"}, results("a")), ({"status": "200"}, results("b"))], budget=2)
    yt.for_mood("happy")
    yt.for_mood("sad")
    out = yt.for_mood("angry")
    assert len(http.uris) == 2 and out["videos"] == [] and "daily budget of 2" in out["notice"]
    assert yt.store.budget_used("youtube-search") == 2


@pytest.mark.parametrize(
    ("status", "body"),
    [
        ("403", QUOTA),
        ("429", google_error(429, "rateLimitExceeded", "Resource has been exhausted", "usageLimits")),
    ],
)
def test_quota_errors_serve_the_cache_and_are_never_retried(tmp_path, monkeypatch, status, body):
    yt, http = make(tmp_path, [({"status": "200"}, results("cached")), ({"status": status}, body)])
    yt.for_mood("happy")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 13 * 3600)  # the cached entry is stale now
    out = yt.for_mood("happy")
    assert out["source"] == "stale" and out["videos"][0]["id"] == "cached"
    assert "quota" in out["notice"]
    assert len(http.uris) == 2  # exactly one try for the failing search
    assert yt.for_mood("sad")["notice"].startswith("YouTube's daily quota")  # and no more calls today
    assert len(http.uris) == 2


def test_server_errors_fall_back_without_retrying_at_once(tmp_path):
    yt, http = make(tmp_path, [({"status": "503"}, google_error(503, "backendError", "Backend Error", "global"))])
    out = yt.for_mood("happy")
    assert out["videos"] == [] and out["source"] == "none" and "did not answer" in out["notice"]
    assert yt.for_mood("happy")["notice"] and len(http.uris) == 1


def test_a_bad_key_is_explained(tmp_path):
    yt, _ = make(tmp_path, [({"status": "400"}, google_error(400, "keyInvalid", "API key not valid.", "usageLimits"))])
    assert "check [youtube] api_key" in yt.for_mood("happy")["notice"]


def test_without_a_key_there_is_a_search_link_and_no_call(tmp_path):
    yt, http = make(tmp_path, [], key="")
    out = yt.for_mood("sad")
    assert out["videos"] == [] and out["search_link"].startswith("https://www.youtube.com/results?search_query=")
    assert "No YouTube API key" in out["notice"] and http.uris == []
    assert "README" not in out["notice"] and "whoever installed Moodbox adds" in out["notice"]  # page words

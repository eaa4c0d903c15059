"""YouTube suggestions for the room's mood: Data API v3 `search.list` with an API key.

Embeddable music videos, safe search, the configured region. Results are cached in SQLite per mood and region,
a daily search budget is kept (the search bucket is about 100 calls a day since June 2026), and quota errors
serve the cache with a notice and are never retried. Without an API key, the page gets a plain YouTube search
link instead, and nothing is called.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any
from urllib.parse import quote_plus

from device.store import StorageError, Store

log = logging.getLogger(__name__)
CACHE_TTL = 12 * 3600
RETRY_AFTER_ERROR = 600
MOOD_QUERIES = {
    "happy": "feel good music",
    "surprise": "upbeat party music",
    "neutral": "chill music",
    "sad": "mellow acoustic music",
    "angry": "rock music",
    "fear": "calm ambient music",
    "disgust": "punk music",
}


def _reasons(content: bytes) -> set[str]:
    """Google error reasons from both body styles: error.errors[].reason and error.details[].reason."""
    import json

    try:
        err = json.loads(content).get("error", {})
    except (ValueError, AttributeError):
        return set()
    found = {e.get("reason") for e in err.get("errors", []) if isinstance(e, dict)}
    found |= {d.get("reason") for d in err.get("details", []) if isinstance(d, dict)}
    return {r for r in found if r} | {_CAMEL.get(r, r) for r in found if r}


_CAMEL = {"RATE_LIMIT_EXCEEDED": "rateLimitExceeded", "API_KEY_INVALID": "keyInvalid"}


NO_KEY = (  # the page cannot set the key: it says who can, and what the link below does meanwhile
    "No YouTube API key is set, so the link below searches YouTube for this mood instead. To list videos here, "
    "whoever installed Moodbox adds a free YouTube Data API key to its config file (api_key, under [youtube]) and "
    "restarts it."
)


class VideoSuggestions:
    def __init__(self, api_key: str, region: str, store: Store, daily_searches: int = 90, http: Any = None) -> None:
        self.api_key, self.region, self.store = api_key, region, store
        self.daily_searches = daily_searches
        self._http = http  # an httplib2.Http (tests pass googleapiclient's HttpMockSequence)
        self._client: Any = None
        self._quota_day: str | None = None
        self._error_until = 0.0

    @property
    def configured(self) -> bool:
        return bool(self.api_key)

    def _youtube(self) -> Any:
        if self._client is None:
            from googleapiclient.discovery import build

            # static_discovery: the discovery document bundled in the package; no network call to build it
            self._client = build(
                "youtube",
                "v3",
                developerKey=self.api_key,
                http=self._http,
                cache_discovery=False,
                static_discovery=True,
            )
        return self._client

    def for_mood(self, mood: str, query: str | None = None) -> dict[str, Any]:
        query = query or MOOD_QUERIES.get(mood, f"{mood} music")
        link = f"https://www.youtube.com/results?search_query={quote_plus(query)}"
        if not self.configured:
            return {
                "mood": mood,
                "videos": [],
                "search_link": link,
                "source": "none",
                "notice": NO_KEY,
            }
        key = f"{mood}|{self.region}|{query}"
        cached = self.store.cache_get("youtube", key, allow_stale=True)
        if cached and cached[1]:
            return {"mood": mood, "videos": cached[0], "search_link": link, "source": "cache", "notice": None}
        stale = cached[0] if cached else []
        today = time.strftime("%Y-%m-%d")
        if self._quota_day == today:
            return self._fallback(mood, stale, link, "YouTube's daily quota is used up; showing saved suggestions.")
        if time.time() < self._error_until:
            return self._fallback(mood, stale, link, "YouTube did not answer; showing saved suggestions.")
        try:
            budget_left = self.store.take_budget("youtube-search", self.daily_searches)
        except StorageError as exc:  # cannot count today's searches: do not spend them blind
            return self._fallback(mood, stale, link, f"Moodbox cannot save right now ({exc.cause}).")
        if not budget_left:
            return self._fallback(
                mood,
                stale,
                link,
                f"Moodbox's daily budget of {self.daily_searches} YouTube searches is used; showing saved suggestions.",
            )
        try:
            videos = self._search(query)
        except Exception as exc:
            return self._failed(exc, mood, stale, link, today)
        with contextlib.suppress(StorageError):  # a full disk: show them anyway, uncached
            self.store.cache_put("youtube", key, videos, CACHE_TTL)
        return {"mood": mood, "videos": videos, "search_link": link, "source": "live", "notice": None}

    def _search(self, query: str) -> list[dict[str, str]]:
        request = (
            self._youtube()
            .search()
            .list(
                part="snippet",
                q=query,
                type="video",
                videoEmbeddable="true",
                videoCategoryId="10",
                safeSearch="strict",
                regionCode=self.region,
                maxResults=12,
            )
        )
        response = request.execute(num_retries=0)  # quota errors must never be retried
        out = []
        for item in response.get("items", []):
            vid = (item.get("id") or {}).get("videoId")
            snip = item.get("snippet") or {}
            if vid:
                out.append(
                    {
                        "id": vid,
                        "title": snip.get("title", ""),
                        "channel": snip.get("channelTitle", ""),
                        "url": f"https://www.youtube.com/watch?v={vid}",
                        "embed": f"https://www.youtube-nocookie.com/embed/{vid}",
                    }
                )
        return out

    def _failed(self, exc: Exception, mood: str, stale: list, link: str, today: str) -> dict[str, Any]:
        from googleapiclient.errors import HttpError

        if isinstance(exc, HttpError):
            status = exc.resp.status
            reasons = _reasons(exc.content)
            if status == 429 or reasons & {"quotaExceeded", "rateLimitExceeded", "dailyLimitExceeded"}:
                self._quota_day = today
                log.warning("YouTube quota exceeded (%s): no more searches today", status)
                return self._fallback(mood, stale, link, "YouTube's daily quota is used up; showing saved suggestions.")
            if status in (400, 403) and reasons & {"keyInvalid", "badRequest", "forbidden", "accessNotConfigured"}:
                self._error_until = time.time() + 3600
                return self._fallback(
                    mood,
                    stale,
                    link,
                    f"YouTube refused the API key ({', '.join(sorted(reasons))}):"
                    " check [youtube] api_key and that the YouTube Data API is "
                    "enabled for it.",
                )
            log.warning("YouTube search failed: %s", status)
        else:
            log.warning("YouTube search failed: %s", type(exc).__name__)
        self._error_until = time.time() + RETRY_AFTER_ERROR
        return self._fallback(mood, stale, link, "YouTube did not answer; showing saved suggestions.")

    @staticmethod
    def _fallback(mood: str, stale: list, link: str, notice: str) -> dict[str, Any]:
        return {
            "mood": mood,
            "videos": stale,
            "search_link": link,
            "source": "stale" if stale else "none",
            "notice": notice,
        }

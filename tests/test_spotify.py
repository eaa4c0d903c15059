"""Spotify, end to end: the real spotipy client against a loopback server speaking Spotify's protocol."""

from __future__ import annotations

import builtins
import json
import os
import re
import socket
import stat
import time

import pytest

from device.player import NotConnected, PlayerError, SpotifyAuth, SpotifyPlayer
from device.player.music import MusicSource
from tests.fake_spotify import FakeSpotify, connect, landing

SEARCH = MusicSource("search", "feel good pop")


@pytest.fixture(autouse=True)
def never_prompt(monkeypatch):
    """spotipy's interactive prompt must never be reached."""

    def boom(*a, **k):
        raise AssertionError("spotipy asked for interactive input")

    monkeypatch.setattr(builtins, "input", boom)


@pytest.fixture
def fake():
    with FakeSpotify() as f:
        yield f


def make(fake: FakeSpotify, tmp_path, speaker: str = "Living Room", timeout=(1.0, 1.0)):
    auth = SpotifyAuth(fake.client_id, tmp_path, "http://127.0.0.1:8080/callback", fake.url, timeout=timeout)
    return auth, SpotifyPlayer(auth, speaker, fake.api_url)


@pytest.fixture
def connected(fake, tmp_path):
    auth, player = make(fake, tmp_path)
    connect(fake, auth)
    return auth, player


# -- connecting ---------------------------------------------------------------------------------------------
def test_paste_back_connects_with_pkce_and_a_private_token_file(fake, tmp_path):
    auth, _ = make(fake, tmp_path)
    assert auth.state == "not-connected"
    url = auth.authorize_url()
    assert url.startswith(fake.url + "/authorize?")
    assert "code_challenge_method=S256" in url and "redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcallback" in url
    assert "user-modify-playback-state" in url.replace("+", " ").replace("%20", " ")
    connect(fake, auth)
    assert auth.state == "connected"
    token = json.loads(auth.token_path.read_text())
    assert token["refresh_token"].startswith("rt-")
    assert stat.S_IMODE(os.stat(auth.token_path).st_mode) == 0o600
    body = fake.calls("POST", "/api/token")[-1].body
    assert body["grant_type"] == "authorization_code" and body["code_verifier"] and "client_secret" not in body


def test_the_flow_survives_a_restart_between_its_two_steps(fake, tmp_path):
    first, _ = make(fake, tmp_path)
    url = first.authorize_url()
    second, _ = make(fake, tmp_path)  # the daemon restarted while the user was signing in

    landed = landing(url)
    second.finish(landed)
    assert second.state == "connected"


@pytest.mark.parametrize(
    ("pasted", "message"),
    [
        ("http://127.0.0.1:8080/callback?error=access_denied&state=x", "Cancel” was chosen on Spotify's page"),
        ("http://127.0.0.1:8080/callback?error=no_such_thing", "Spotify did not connect (it said “no_such_thing”)"),
        ("http://127.0.0.1:8080/callback", "no ?code="),
        ("http://127.0.0.1:8080/callback?code=abc&state=wrong", "older connection attempt"),
        ("http://127.0.0.1:8080/callback?code=abc", "that address is cut off"),  # pasted without its end
        ("http://127.0.0.1:8080/callback?code=abc&state=", "that address is cut off"),
        ("hello", "no ?code="),
    ],
)
def test_bad_pasted_addresses_are_explained(fake, tmp_path, pasted, message):
    auth, _ = make(fake, tmp_path)
    auth.authorize_url()
    with pytest.raises(ValueError, match=re.escape(message)):
        auth.finish(pasted)
    assert auth.state == "not-connected"


def test_an_address_cut_off_inside_its_state_says_so(fake, tmp_path):
    auth, _ = make(fake, tmp_path)
    state = auth.authorize_url().split("state=")[1].split("&")[0]
    with pytest.raises(ValueError, match="that address is cut off"):
        auth.finish(f"http://127.0.0.1:8080/callback?code=abc&state={state[:-3]}")
    assert auth.state == "not-connected"


def test_a_forged_code_is_refused_by_the_token_endpoint(fake, tmp_path):
    auth, _ = make(fake, tmp_path)
    url = auth.authorize_url()
    state = url.split("state=")[1].split("&")[0]
    with pytest.raises(ValueError, match="Spotify refused the code"):
        auth.finish(f"http://127.0.0.1:8080/callback?code=made-up&state={state}")


def test_without_a_token_nothing_prompts_and_the_player_says_connect(fake, tmp_path):
    auth, player = make(fake, tmp_path)
    with pytest.raises(NotConnected):
        auth.access_token()
    with pytest.raises(PlayerError) as err:
        player.play("happy", SEARCH)
    assert err.value.state == "not-connected"
    assert not fake.calls("PUT", "/v1/me/player/play")


def test_token_is_refreshed_before_it_expires_and_keeps_the_refresh_token(connected, fake):
    auth, player = connected
    token = json.loads(auth.token_path.read_text())
    token["expires_at"] = int(time.time()) + 30  # inside spotipy's 60 s margin
    auth.token_path.write_text(json.dumps(token))
    fake.omit_refresh_token = True  # Spotify may leave the refresh token out
    player.devices()
    assert fake.calls("POST", "/api/token")[-1].body["grant_type"] == "refresh_token"
    new = json.loads(auth.token_path.read_text())
    assert new["access_token"] != token["access_token"] and new["refresh_token"] == token["refresh_token"]


def test_a_401_is_answered_by_one_refresh(connected, fake):
    _auth, player = connected
    fake.expire_access_tokens()  # the server expired it early; the file still says it is valid
    assert [d["name"] for d in player.devices()][:2] == ["Kitchen", "Living Room"]
    assert len(fake.calls("GET", "/v1/me/player/devices")) == 2
    assert fake.calls("POST", "/api/token")[-1].body["grant_type"] == "refresh_token"


def test_invalid_grant_asks_for_a_reconnect(connected, fake):
    auth, player = connected
    fake.revoke_all_tokens()  # six months are up
    with pytest.raises(PlayerError) as err:
        player.play("happy", SEARCH)
    assert err.value.state == "reconnect" and "reconnect Spotify" in str(err.value)
    assert auth.state == "reconnect" and player.status()["state"] == "reconnect"
    connect(fake, auth)
    assert auth.state == "connected"
    player.play("happy", SEARCH)


# -- the speaker and playing ---------------------------------------------------------------------------------
def test_play_finds_the_speaker_by_name_transfers_and_plays_uris(connected, fake):
    _, player = connected
    player.speaker = "living ROOM"
    playing = player.play("happy", SEARCH)
    assert playing.speaker == "Living Room" and len(playing.tracks) == 5
    transfer = fake.calls("PUT", "/v1/me/player")
    play = fake.calls("PUT", "/v1/me/player/play")
    assert transfer and transfer[0].body == {"device_ids": ["dev-living"], "play": False}
    assert play[0].query["device_id"] == ["dev-living"]
    assert len(play[0].body["uris"]) == 12 and "context_uri" not in play[0].body
    assert all(int(r.query["limit"][0]) <= 10 for r in fake.calls("GET", "/v1/search"))
    assert fake.playback["device"]["id"] == "dev-living"
    # The speaker is active now: the next play needs no transfer.
    player.play("sad", MusicSource("search", "mellow acoustic"))
    assert len(fake.calls("PUT", "/v1/me/player")) == 1


def test_restricted_devices_are_skipped_and_a_missing_speaker_is_reported(connected, fake):
    _, player = connected
    player.speaker = "Living Room TV"
    with pytest.raises(PlayerError) as err:
        player.play("happy", SEARCH)
    assert err.value.state == "speaker-not-found" and err.value.retry_after >= 60
    assert "Kitchen, Living Room, Living Room TV" in str(err.value)
    assert not fake.calls("PUT", "/v1/me/player/play")


def test_no_tracks_repeat_back_to_back(connected, fake):
    _, player = connected
    plays = []
    for _ in range(3):
        player.play("happy", SEARCH)
        plays.append(fake.playback["uris"])
    assert len(plays[0]) == 12 and not set(plays[0]) & set(plays[1])  # 25 results: two plays without overlap
    assert plays[2][0] not in plays[1]  # then the least recently played come back, never the ones just heard
    assert len(fake.calls("GET", "/v1/search")) == 3  # three pages of 10, fetched once and kept


def test_every_source_kind_plays_in_development_mode(connected, fake):
    _, player = connected
    player.play("happy", MusicSource("playlist", "spotify:playlist:plMine0000000000000001", "Sunday Morning"))
    assert fake.playback["uris"][0].startswith("spotify:track:")
    assert fake.calls("GET", "/v1/playlists/plMine0000000000000001/items")
    player.play("sad", MusicSource("top_tracks"))
    player.play("neutral", MusicSource("saved_tracks"))
    with pytest.raises(PlayerError) as err:  # not the user's own playlist: Development Mode refuses its items
        player.play("angry", MusicSource("playlist", "spotify:playlist:plOther000000000000002"))
    assert err.value.state == "forbidden"
    assert not fake.calls("GET", "/v1/recommendations")


def test_playlists_for_the_editor_skip_nulls(connected):
    _, player = connected
    assert [p["name"] for p in player.playlists("sun")] == ["Sunday Morning"]
    assert len(player.playlists()) == 2


# -- failures that will happen ---------------------------------------------------------------------------------
def test_premium_required(connected, fake):
    _, player = connected
    fake.premium = False
    with pytest.raises(PlayerError) as err:
        player.play("happy", SEARCH)
    assert err.value.state == "premium-required" and "Premium" in str(err.value)


def test_no_active_device_is_answered_by_a_transfer(connected, fake):
    _, player = connected
    player.play("happy", SEARCH)  # the speaker is now active, so the next play skips the transfer...
    fake.fail("PUT", "/v1/me/player/play", 404, "NO_ACTIVE_DEVICE", "Player command failed: No active device found")
    player.play("sad", MusicSource("search", "mellow"))  # ...and recovers from the 404 with one
    assert len(fake.calls("PUT", "/v1/me/player")) == 2
    assert fake.playback["is_playing"]


def test_429_with_retry_after_does_not_sleep_in_the_client(connected, fake):
    _, player = connected
    fake.fail("GET", "/v1/me/player/devices", 429, message="API rate limit exceeded", headers={"Retry-After": "3600"})
    start = time.monotonic()
    with pytest.raises(PlayerError) as err:
        player.play("happy", SEARCH)
    assert time.monotonic() - start < 2
    assert err.value.state == "rate-limited" and err.value.retry_after == 3600
    assert len(fake.calls("GET", "/v1/me/player/devices")) == 1  # 429 is never retried in-call


def test_quota_exceeded_backs_off_for_long(connected, fake):
    _, player = connected
    fake.fail("GET", "/v1/search", 429, "QUOTA_EXCEEDED", "quota exceeded", headers={"Retry-After": "60"})
    with pytest.raises(PlayerError) as err:
        player.play("happy", SEARCH)
    assert err.value.state == "quota-exceeded" and err.value.retry_after >= 3600


def test_5xx_is_retried_a_bounded_number_of_times(connected, fake):
    _, player = connected
    fake.fail("GET", "/v1/me/player/devices", 503, times=2)
    assert player.devices()  # two failures, then success: within the bound
    assert len(fake.calls("GET", "/v1/me/player/devices")) == 3
    fake.requests.clear()
    fake.fail("GET", "/v1/me/player/devices", 502, times=10)
    with pytest.raises(PlayerError) as err:
        player.devices()
    assert err.value.state == "spotify-unavailable" and 20 <= err.value.retry_after <= 40
    assert len(fake.calls("GET", "/v1/me/player/devices")) == 3  # 1 + 2 retries, then give up


def test_a_slow_spotify_times_out(fake, tmp_path):
    auth, player = make(fake, tmp_path, timeout=(0.3, 0.3))
    connect(fake, auth)
    fake.fail("GET", "/v1/me/player/devices", 0, delay=0.9, times=2)  # slower than the 0.3 s read timeout, twice
    start = time.monotonic()
    with pytest.raises(PlayerError) as err:
        player.devices()
    assert err.value.state == "offline" and time.monotonic() - start < 2
    assert 30 <= err.value.retry_after <= 45 and "is the internet down?" in str(err.value)


def test_no_network_at_all(fake, tmp_path):
    auth, _ = make(fake, tmp_path)
    connect(fake, auth)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens here once the socket closes
    player = SpotifyPlayer(auth, "Living Room", f"http://127.0.0.1:{dead}/v1/")
    with pytest.raises(PlayerError) as err:
        player.play("happy", SEARCH)
    assert err.value.state == "offline" and err.value.retry_after >= 30


def test_someone_else_playing_is_noticed(connected, fake):
    _, player = connected
    assert player.someone_else_is_playing() is False  # Moodbox has started nothing yet
    player.play("happy", SEARCH)
    assert player.someone_else_is_playing() is False
    fake.user_plays("spotify:track:from-the-phone")
    assert player.someone_else_is_playing() is True


# -- what the household sees over hours ------------------------------------------------------------------------
def test_a_playlist_share_link_plays_like_its_uri(connected, fake):
    """Spotify's "Share > Copy link" gives https://open.spotify.com/playlist/ID?si=...: the ?si= is not the ID."""
    _, player = connected
    link = "https://open.spotify.com/playlist/plMine0000000000000001?si=f3a9c1b2d4e54a67"
    playing = player.play("happy", MusicSource("playlist", link, "Sunday Morning"))
    assert fake.calls("GET", "/v1/playlists/plMine0000000000000001/items")
    assert set(fake.playback["uris"]) <= {t["uri"] for t in fake.playlists["plMine0000000000000001"]["tracks"]}
    assert playing.tracks and fake.playback["is_playing"]


def test_songs_added_to_a_playlist_are_played_within_six_hours(connected, fake, monkeypatch):
    """The track lists are kept for 6 hours, so a mood change costs Spotify one call, not four; after that the
    household's edits to the playlist are heard."""
    _, player = connected
    source = MusicSource("playlist", "spotify:playlist:plMine0000000000000001", "Sunday Morning")
    items = "/v1/playlists/plMine0000000000000001/items"
    real, ahead = time.monotonic, [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: real() + ahead[0])
    player.play("happy", source)
    added = [dict(t, uri=f"spotify:track:added{i}", name=f"Added {i}") for i, t in enumerate(fake.saved[:12])]
    fake.playlists["plMine0000000000000001"]["tracks"] = added  # the household replaced the whole list
    ahead[0] = 6 * 3600 - 60
    player.play("happy", source)
    assert len(fake.calls("GET", items)) == 1 and not fake.playback["uris"][0].startswith("spotify:track:added")
    ahead[0] = 6 * 3600 + 1
    player.play("happy", source)
    assert len(fake.calls("GET", items)) == 2 and all(
        u.startswith("spotify:track:added") for u in fake.playback["uris"]
    )


def test_resume_plays_on_only_on_the_chosen_speaker(connected, fake):
    """Music paused in an empty room plays on where it stopped, unless someone moved it to another speaker
    meanwhile: then it is theirs, and Moodbox does not start it there."""
    _, player = connected
    player.play("happy", SEARCH)
    assert player.pause() and not fake.playback["is_playing"]
    kitchen = next(d for d in fake.devices if d["name"] == "Kitchen")
    fake.playback["device"] = dict(kitchen)  # moved to the kitchen from a phone, still paused
    plays = len(fake.calls("PUT", "/v1/me/player/play"))
    assert player.resume() is False
    assert len(fake.calls("PUT", "/v1/me/player/play")) == plays and not fake.playback["is_playing"]
    fake.playback["device"] = next(dict(d) for d in fake.devices if d["name"] == "Living Room")
    player.speaker = "LIVING room"  # names are matched as the page shows them, whatever the case
    assert player.resume() is True and fake.playback["is_playing"]
    resume = fake.calls("PUT", "/v1/me/player/play")[-1]
    assert resume.query["device_id"] == ["dev-living"] and not (resume.body or {}).get("uris")
    assert player.status()["state"] == "playing"
    assert player.resume() is True  # already playing again: nothing to send
    assert len(fake.calls("PUT", "/v1/me/player/play")) == plays + 1


def test_what_plays_is_shown_by_its_names_and_cover(connected, fake):
    """The page's "Now playing": the first five tracks as "Artist - Title", the first one's title, artist and the
    cover closest to 300 px from Spotify's image host; a track with parts missing is still shown, never a crash."""
    _, player = connected
    playing = player.play("happy", SEARCH)
    first, *_ = [t for uri in fake.playback["uris"] for t in [_search_track(uri)]]
    assert playing.track == first["name"] and playing.artist == first["artists"][0]["name"]
    assert playing.cover == f"https://i.scdn.co/image/300{first['id']}"
    assert playing.tracks == [
        f"{t['artists'][0]['name']} - {t['name']}" for t in (_search_track(u) for u in fake.playback["uris"][:5])
    ]
    assert (playing.mood, playing.source, playing.speaker) == ("happy", SEARCH, "Living Room")
    assert abs(playing.started_at - time.time()) < 60

    bare = {"id": "bare", "uri": "spotify:track:bare", "type": "track"}
    elsewhere = {**bare, "id": "x", "uri": "spotify:track:x", "name": "Cover Elsewhere", "artists": [{"id": "a"}]}
    elsewhere["album"] = {"images": [{"url": "https://example.com/a.jpg", "width": 300}, "not an image"]}
    fake.playlists["plMine0000000000000001"]["tracks"] = [bare]
    playing = player.play("sad", MusicSource("playlist", "spotify:playlist:plMine0000000000000001"))
    assert (playing.tracks, playing.track, playing.artist, playing.cover) == ([" - ?"], "", "", "")
    fake.playlists["plMine0000000000000001"]["tracks"] = [elsewhere]
    player._tracks.clear()
    playing = player.play("sad", MusicSource("playlist", "spotify:playlist:plMine0000000000000001"))
    assert (playing.tracks, playing.cover) == (["? - Cover Elsewhere"], "")  # only Spotify's host is shown


def _search_track(uri: str) -> dict:
    from tests.fake_spotify import track

    return next(t for i in range(25) for t in [track(i, "feel-good-pop")] if t["uri"] == uri)


def test_only_playable_tracks_are_played_and_an_empty_source_is_explained(connected, fake):
    _, player = connected
    songs = fake.playlists["plMine0000000000000001"]["tracks"]
    episode = {**songs[0], "type": "episode", "uri": "spotify:episode:e1"}
    gone = {**songs[1], "is_playable": False}
    fake.playlists["plMine0000000000000001"]["tracks"] = [episode, gone, {**songs[2], "uri": ""}, songs[3]]
    player.play("happy", MusicSource("playlist", "spotify:playlist:plMine0000000000000001"))
    assert fake.playback["uris"] == [songs[3]["uri"]]
    fake.top[:] = [None, *fake.top[:3]]
    player.play("sad", MusicSource("top_tracks"))
    assert sorted(fake.playback["uris"]) == sorted(t["uri"] for t in fake.top[1:])
    assert fake.calls("GET", "/v1/me/top/tracks")[0].query["limit"] == ["50"]
    fake.saved[:] = [{**fake.saved[0], "is_playable": False}]
    with pytest.raises(PlayerError) as err:
        player.play("neutral", MusicSource("saved_tracks"))
    assert err.value.state == "nothing-to-play"
    assert str(err.value) == (
        "your saved tracks found no playable tracks: choose another source for this mood in Settings"
    )
    assert fake.calls("GET", "/v1/me/tracks")[0].query["limit"] == ["50"]


def test_the_speaker_problems_say_what_to_do(connected, fake):
    _, player = connected
    assert (player.status()["state"], player.status()["message"]) == ("idle", "")  # nothing asked of it yet
    player.speaker = ""
    with pytest.raises(PlayerError) as err:
        player.play("happy", SEARCH)
    assert (err.value.state, str(err.value)) == ("no-speaker", "no speaker chosen: pick one in Settings")
    player.speaker = "Garden"
    fake.devices.clear()  # every speaker is off
    with pytest.raises(PlayerError) as err:
        player.play("happy", SEARCH)
    assert err.value.state == "speaker-not-found" and 60 <= err.value.retry_after <= 90
    assert str(err.value) == "speaker 'Garden' not found (Spotify sees: none); is it on? Moodbox will look again"
    assert player.status() == {
        "player": "spotify",
        "connected": True,
        "auth": "connected",
        "speaker": "Garden",
        "state": "speaker-not-found",
        "message": str(err.value),
    }


def test_pause_stops_only_moodbox_music_on_its_speaker_and_the_status_says_so(connected, fake):
    _, player = connected
    assert player.pause() is False and not fake.calls("PUT", "/v1/me/player/pause")  # nothing started yet
    player.play("happy", SEARCH)
    assert player.status()["state"] == "playing" and player.status()["message"] == ""
    assert player.pause() is True
    assert fake.calls("PUT", "/v1/me/player/pause")[0].query["device_id"] == ["dev-living"]
    assert player.status()["state"] == "paused" and not fake.playback["is_playing"]
    assert player.pause() is False  # paused already: Spotify would refuse with a 403
    player.resume()
    fake.fail("PUT", "/v1/me/player/pause", 502, times=3)
    with pytest.raises(PlayerError):
        player.pause()
    assert player.status()["state"] == "spotify-unavailable" and "trouble" in player.status()["message"]
    fake.user_plays("spotify:track:from-the-phone")
    assert player.pause() is False and fake.playback["is_playing"]  # theirs to stop


def test_the_playlist_editor_gets_names_and_sizes(connected):
    _, player = connected
    assert player.playlists() == [
        {"uri": "spotify:playlist:plMine0000000000000001", "name": "Sunday Morning", "tracks": 12},
        {"uri": "spotify:playlist:plOther000000000000002", "name": "Editorial Hits", "tracks": 8},
    ]
    assert player.playlists("EDITORIAL") == [player.playlists()[1]]


@pytest.mark.parametrize(
    ("status", "reason", "headers", "state", "message", "wait"),
    [
        (
            429,
            None,
            {"Retry-After": "12"},
            "rate-limited",
            "Spotify asked Moodbox to slow down; next try in 12 s",
            (12, 12),
        ),
        (429, None, {}, "rate-limited", "Spotify asked Moodbox to slow down; next try in 30 s", (30, 30)),
        (
            429,
            None,
            {"Retry-After": "soon"},
            "rate-limited",
            "Spotify asked Moodbox to slow down; next try in 30 s",
            (30, 30),
        ),
        (
            429,
            "QUOTA_EXCEEDED",
            {"Retry-After": "60"},
            "quota-exceeded",
            "the Spotify app's quota is used up; Moodbox pauses Spotify calls and tries again later",
            (3600, 3600),
        ),
        (
            403,
            "PREMIUM_REQUIRED",
            {},
            "premium-required",
            "Spotify playback control needs a Premium account: sign in with a Premium account in Settings",
            None,
        ),
        (
            403,
            None,
            {},
            "forbidden",
            "Spotify refused the request (is this account on the app's allow-list in the Spotify developer dashboard?)",
            None,
        ),
        (
            404,
            "NO_ACTIVE_DEVICE",
            {},
            "no-active-device",
            "no active Spotify device: Moodbox will wake the speaker",
            (5, 5),
        ),
        (503, None, {}, "spotify-unavailable", "Spotify is having trouble (503); trying again soon", (20, 40)),
        (400, None, {}, "spotify-error", "Spotify answered 400: what went wrong", None),
    ],
)
def test_each_refusal_is_named_with_its_fix_and_its_wait(
    connected, fake, status, reason, headers, state, message, wait
):
    """What the page shows for each answer Spotify gives, and how long Moodbox waits before asking again."""
    _, player = connected
    fake.fail("GET", "/v1/me/player/devices", status, reason, "what went wrong", headers=headers, times=3)
    with pytest.raises(PlayerError) as err:
        player.devices()
    assert (err.value.state, str(err.value)) == (state, message)
    if wait is None:
        assert err.value.retry_after is None
    else:
        assert wait[0] <= err.value.retry_after <= wait[1]


def test_the_speaker_list_for_settings(connected, fake):
    _, player = connected
    fake.devices.append({"id": None, "name": "Phone", "type": "Smartphone"})  # Spotify can leave fields out
    speaker = {"is_active": False, "is_restricted": False, "supports_volume": True}
    assert player.devices() == [
        {"id": "dev-kitchen", "name": "Kitchen", "type": "Speaker", "volume": 40} | speaker,
        {"id": "dev-living", "name": "Living Room", "type": "Speaker", "volume": 35} | speaker,
        {"id": "dev-tv", "name": "Living Room TV", "type": "TV", "volume": None}
        | speaker
        | {"is_restricted": True, "supports_volume": False},
        {"id": None, "name": "Phone", "type": "Smartphone", "volume": None} | speaker,  # supports_volume left out
    ]
    fake.devices[-1] = {"id": "dev-x"}
    assert player.devices()[-1] == {"id": "dev-x", "name": "", "type": "", "volume": None} | speaker

"""The HTTP API through a real client against a real `mmsearch serve` process.

Permissions are the point: a token for group:eng never sees a group:board record, segment,
thumbnail or media, and every such answer is the 404 of a missing id. The board token
seeing the same ids proves the 404 comes from row-level security, not from a bad id.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import httpx
import psycopg
import pytest
from PIL import Image
from psycopg import sql

from mmsearch.db.roles import read_roles
from tests.apiserver import CAT_SHOT_S, ApiServer

MISSING_ID = 987_654_321
JSON_FIELDS = {
    "record_id", "uri", "title", "media_type", "segment_id", "start_s", "end_s", "score",
    "snippet", "ranks",
}  # fmt: skip


@pytest.fixture(scope="module")
def http(api_server: ApiServer) -> httpx.Client:
    with httpx.Client(base_url=api_server.url, timeout=120) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_no_token_or_a_bad_one_is_401(api_server: ApiServer, http: httpx.Client) -> None:
    record = api_server.record_id("IMG_0001.jpg")
    segment = api_server.segment_id("clip.mp4", "shot", CAT_SHOT_S[0])
    routes = [
        "/api/status",
        "/api/search?q=cat",
        f"/api/records/{record}",
        f"/api/records/{record}/media",
        f"/api/segments/{segment}",
        f"/api/segments/{segment}/thumbnail",
    ]
    for route in routes:
        for headers in ({}, bearer("mms_not-a-token"), {"Authorization": "Basic eDp5"}):
            answer = http.get(route, headers=headers)
            assert answer.status_code == 401, (route, headers, answer.text)
            assert answer.headers["www-authenticate"].startswith("Bearer")
    assert http.post("/api/search", json={"like": segment}).status_code == 401
    assert http.get("/api/status", headers=bearer(api_server.eng_token)).status_code == 200


def test_a_removed_token_stops_working_at_once(api_server: ApiServer, http: httpx.Client) -> None:
    made = api_server.cli("token", "add", "short-lived", "--principal", "user:carol")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    assert http.get("/api/status", headers=bearer(token)).json()["principals"] == ["user:carol"]
    assert api_server.cli("token", "remove", "short-lived").returncode == 0
    assert http.get("/api/status", headers=bearer(token)).status_code == 401


def test_search_hits_carry_the_cli_fields_and_urls(
    api_server: ApiServer, http: httpx.Client
) -> None:
    answer = http.get(
        "/api/search", params={"q": "a cat", "k": 5}, headers=bearer(api_server.eng_token)
    )
    assert answer.status_code == 200, answer.text
    hits = answer.json()["hits"]
    assert set(hits[0]) >= JSON_FIELDS
    by_title = {hit["title"]: hit for hit in hits}
    clip = by_title["clip"]
    assert (clip["start_s"], clip["end_s"]) == CAT_SHOT_S
    assert clip["segment_id"] == api_server.segment_id("clip.mp4", "shot", CAT_SHOT_S[0])
    assert clip["thumbnail_url"] == f"/api/segments/{clip['segment_id']}/thumbnail"
    assert clip["media_url"] == f"/api/records/{clip['record_id']}/media"
    assert by_title["IMG_0001"]["thumbnail_url"].endswith("/thumbnail")
    cli = api_server.cli("search", "a cat", "-k", "5", "--json", "--principal", "group:eng")
    assert cli.returncode == 0, cli.stderr
    lines = [json.loads(line) for line in cli.stdout.splitlines()]
    assert [h["segment_id"] for h in lines] == [h["segment_id"] for h in hits]
    assert set(lines[0]) == set(hits[0]) - {"thumbnail_url", "media_url"}


def test_group_eng_never_sees_group_board(api_server: ApiServer, http: httpx.Client) -> None:
    eng, board = bearer(api_server.eng_token), bearer(api_server.board_token)
    hidden_records = [
        api_server.record_id(n) for n in ("IMG_0002.jpg", "launch.mp4", "minutes.txt")
    ]
    hidden_segments = [
        api_server.segment_id("IMG_0002.jpg", "image"),
        api_server.segment_id("launch.mp4", "shot", 0.0),
        api_server.segment_id("minutes.txt", "chunk"),
    ]
    for query, mode in (("merger confidential", "keyword"), ("a rocket launch", "hybrid")):
        for who, expect_board in ((eng, False), (board, True)):
            hits = http.get(
                "/api/search", params={"q": query, "mode": mode, "k": 50}, headers=who
            ).json()["hits"]
            seen = {hit["record_id"] for hit in hits} & set(hidden_records)
            assert bool(seen) == expect_board, (query, mode, expect_board, hits)
    missing = [http.get(f"/api/records/{MISSING_ID}{tail}", headers=eng) for tail in ("", "/media")]
    missing += [http.get(f"/api/segments/{MISSING_ID}{t}", headers=eng) for t in ("", "/thumbnail")]
    for answer in missing:
        assert (answer.status_code, answer.json()) == (404, {"detail": "not found"})
    for record in hidden_records:
        for tail in ("", "/media"):
            route = f"/api/records/{record}{tail}"
            assert (
                http.get(route, headers=eng).status_code,
                http.get(route, headers=eng).json(),
            ) == (
                404,
                {"detail": "not found"},
            )
            assert http.get(route, headers=board).status_code == 200, route
    for segment in hidden_segments:
        assert http.get(f"/api/segments/{segment}", headers=eng).status_code == 404
        assert http.get(f"/api/segments/{segment}", headers=board).status_code == 200
    for segment in hidden_segments[:2]:
        route = f"/api/segments/{segment}/thumbnail"
        assert http.get(route, headers=eng).json() == {"detail": "not found"}
        assert http.get(route, headers=board).headers["content-type"] == "image/jpeg"
    like = http.post("/api/search", json={"like": hidden_segments[0]}, headers=eng)
    like_missing = http.post("/api/search", json={"like": MISSING_ID}, headers=eng)
    assert like.status_code == like_missing.status_code == 400
    assert like.json()["detail"].replace(str(hidden_segments[0]), "N") == like_missing.json()[
        "detail"
    ].replace(str(MISSING_ID), "N")


def test_a_token_cannot_choose_its_principals(api_server: ApiServer, http: httpx.Client) -> None:
    answer = http.get(
        "/api/search",
        params={"q": "merger", "principal": "group:board"},
        headers=bearer(api_server.eng_token),
    )
    assert answer.status_code == 403
    assert answer.json()["detail"] == "this token cannot choose principals"
    as_board = http.get(
        "/api/search",
        params={"q": "merger", "mode": "keyword", "principal": "group:board"},
        headers=bearer(api_server.local_key),
    )
    assert as_board.status_code == 200
    assert api_server.record_id("minutes.txt") in {h["record_id"] for h in as_board.json()["hits"]}
    as_nobody = http.get(
        "/api/search",
        params={"q": "merger", "mode": "keyword"},
        headers=bearer(api_server.local_key),
    )
    assert api_server.record_id("minutes.txt") not in {
        h["record_id"] for h in as_nobody.json()["hits"]
    }


def test_media_answers_ranges_with_206(api_server: ApiServer, http: httpx.Client) -> None:
    record = api_server.record_id("clip.mp4")
    original = (api_server.corpus / "eng" / "clip.mp4").read_bytes()
    eng = bearer(api_server.eng_token)
    whole = http.get(f"/api/records/{record}/media", headers=eng)
    assert (whole.status_code, whole.headers["content-type"]) == (200, "video/mp4")
    assert whole.content == original
    part = http.get(f"/api/records/{record}/media", headers={**eng, "Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(original)}"
    assert part.content == original[1000:2000]
    tail = http.get(f"/api/records/{record}/media", headers={**eng, "Range": "bytes=-100"})
    assert (tail.status_code, tail.content) == (206, original[-100:])


def test_html_is_downloaded_never_rendered(api_server: ApiServer, http: httpx.Client) -> None:
    record = api_server.record_id("notes.html")
    answer = http.get(f"/api/records/{record}/media", headers=bearer(api_server.eng_token))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_file_changed_since_ingest_is_not_served(
    api_server: ApiServer, http: httpx.Client
) -> None:
    path = api_server.corpus / "eng" / "fire.txt"
    record = api_server.record_id("fire.txt")
    route, eng = f"/api/records/{record}/media", bearer(api_server.eng_token)
    original = path.read_bytes()
    assert http.get(route, headers=eng).content == original
    try:
        path.write_text("someone else's secret, written after the ingest")
        assert http.get(route, headers=eng).status_code == 404
    finally:
        path.write_bytes(original)
    assert http.get(route, headers=eng).content == original


def test_thumbnails(api_server: ApiServer, http: httpx.Client) -> None:
    eng = bearer(api_server.eng_token)
    shot = api_server.segment_id("clip.mp4", "shot", CAT_SHOT_S[0])
    keyframe = http.get(f"/api/segments/{shot}/thumbnail", headers=eng)
    assert keyframe.headers["content-type"] == "image/jpeg"
    stored = api_server.one(
        "SELECT metadata ->> 'thumbnail' FROM mmsearch.segment WHERE id = %s", shot
    )
    assert keyframe.content == Path(str(stored)).read_bytes()
    assert Image.open(io.BytesIO(keyframe.content)).size[1] == 320
    image = api_server.segment_id("IMG_0001.jpg", "image")
    small = http.get(f"/api/segments/{image}/thumbnail", headers=eng)
    assert small.status_code == 200
    source = Image.open(api_server.corpus / "eng" / "IMG_0001.jpg").size  # 451 x 300
    assert Image.open(io.BytesIO(small.content)).size == source
    sha = api_server.one(
        "SELECT sha256 FROM mmsearch.record WHERE id = %s", api_server.record_id("IMG_0001.jpg")
    )
    assert (api_server.home / "thumbs" / str(sha) / "image-480.jpg").read_bytes() == small.content
    rocket = api_server.segment_id("IMG_0002.jpg", "image")  # 640 x 427: made smaller
    shrunk = http.get(f"/api/segments/{rocket}/thumbnail", headers=bearer(api_server.board_token))
    assert Image.open(io.BytesIO(shrunk.content)).size == (480, 320)
    text = api_server.segment_id("fire.txt", "chunk")
    assert http.get(f"/api/segments/{text}/thumbnail", headers=eng).status_code == 404


def test_query_by_example_and_more_like_this(api_server: ApiServer, http: httpx.Client) -> None:
    eng = bearer(api_server.eng_token)
    photo = (api_server.corpus / "eng" / "IMG_0001.jpg").read_bytes()
    by_example = http.post(
        "/api/search", params={"k": 3}, content=photo, headers={**eng, "Content-Type": "image/jpeg"}
    )
    assert by_example.status_code == 200, by_example.text
    assert by_example.json()["hits"][0]["title"] == "IMG_0001"
    image = api_server.segment_id("IMG_0001.jpg", "image")
    like = http.post("/api/search", json={"like": image, "k": 3}, headers=eng).json()["hits"]
    assert like[0]["segment_id"] == api_server.segment_id("clip.mp4", "shot", CAT_SHOT_S[0])
    assert image not in {hit["segment_id"] for hit in like}
    too_big = http.post(
        "/api/search", content=b"\0" * (2 << 20), headers={**eng, "Content-Type": "image/jpeg"}
    )
    assert too_big.status_code == 413


def test_one_hit_per_record_unless_segments(api_server: ApiServer, http: httpx.Client) -> None:
    """The API groups like the CLI and Python: one hit per record, its best segment; with
    `segments` every matching segment, best first (the clip's shots one by one)."""
    eng = bearer(api_server.eng_token)

    def hits(**params: object) -> list[dict]:
        answer = http.get("/api/search", params={"q": "a cat", "k": 20, **params}, headers=eng)
        assert answer.status_code == 200, answer.text
        return answer.json()["hits"]

    grouped, listed = hits(), hits(segments="true")
    assert len({h["record_id"] for h in grouped}) == len(grouped)
    clip = api_server.record_id("clip.mp4")
    shots = [h for h in listed if h["record_id"] == clip]
    assert len(shots) >= 2 and len({h["segment_id"] for h in listed}) == len(listed)
    [best] = [h for h in grouped if h["record_id"] == clip]
    assert best["segment_id"] == shots[0]["segment_id"]
    assert [h["score"] for h in listed] == sorted((h["score"] for h in listed), reverse=True)


def test_space_narrows_the_vector_legs(api_server: ApiServer, http: httpx.Client) -> None:
    """`space` (repeatable) keeps only those spaces' legs, as `--space` and `spaces=` do."""
    eng = bearer(api_server.eng_token)

    def legs(**params: object) -> set[str]:
        answer = http.get("/api/search", params={"q": "a cat", "k": 20, **params}, headers=eng)
        assert answer.status_code == 200, answer.text
        return {leg for hit in answer.json()["hits"] for leg in hit["ranks"]}

    every, text_only = legs(mode="vector"), legs(mode="vector", space="text")
    assert "image" in every  # the photos are found through the image space
    assert text_only <= {"text"}
    unknown = http.get("/api/search", params={"q": "x", "space": "nope"}, headers=eng)
    assert unknown.status_code == 400 and "nope" in unknown.json()["detail"]


def test_bad_requests_are_one_line_400s(api_server: ApiServer, http: httpx.Client) -> None:
    eng = bearer(api_server.eng_token)
    bad_filter = http.get("/api/search", params={"q": "x", "filter": "bad ("}, headers=eng)
    assert bad_filter.status_code == 400
    assert bad_filter.json()["detail"].startswith("bad filter at column")
    assert http.get("/api/search", headers=eng).status_code == 400  # neither q nor like
    assert http.get("/api/search", params={"q": "x", "k": 0}, headers=eng).status_code == 422
    assert http.get("/api/search", params={"q": "x", "kk": 1}, headers=eng).status_code == 422
    typo = http.post("/api/search", json={"q": "x", "modes": "keyword"}, headers=eng)
    assert typo.status_code == 422 and typo.json()["detail"][0]["loc"] == ["modes"]
    assert http.get("/api/records/99999999999999999999", headers=eng).status_code == 422
    as_json = {**eng, "Content-Type": "application/json"}
    not_json = http.post("/api/search", content=b"{", headers=as_json)
    assert not_json.status_code == 400
    assert not_json.json() == {"detail": "the body is not valid JSON"}
    as_text = {**eng, "Content-Type": "text/plain"}
    upload = http.post("/api/search", params={"k": "many"}, content=b"x", headers=as_text)
    assert upload.status_code == 422


def test_record_segment_and_status(api_server: ApiServer, http: httpx.Client) -> None:
    eng = bearer(api_server.eng_token)
    record = api_server.record_id("clip.mp4")
    got = http.get(f"/api/records/{record}", headers=eng).json()
    assert (got["media_type"], got["mime"], got["title"]) == ("video", "video/mp4", "clip")
    assert got["media_url"] == f"/api/records/{record}/media" and "acl" not in got
    shot = api_server.segment_id("clip.mp4", "shot", CAT_SHOT_S[0])
    segment = http.get(f"/api/segments/{shot}", headers=eng).json()
    assert (segment["record_id"], segment["kind"], segment["start_s"]) == (record, "shot", 6.0)
    assert "thumbnail" not in segment["metadata"] and "uri" not in segment
    status = http.get("/api/status", headers=eng).json()
    assert status["principals"] == ["group:eng"]
    assert {s["name"] for s in status["spaces"]} >= {"text", "image"}
    (web,) = [c for c in status["collections"] if c["collection"] == "web"]
    assert web["records"] == 4  # eng's four, not board's three
    docs = http.get("/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert http.get("/docs-assets/swagger-ui-bundle.js").status_code == 200  # no CDN
    assert "/api/search" in http.get("/openapi.json").json()["paths"]


def test_the_page_signs_in_with_a_cookie(api_server: ApiServer, http: httpx.Client) -> None:
    page = http.get("/")
    assert (
        page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    )
    with httpx.Client(base_url=api_server.url, timeout=120) as browser:
        assert browser.post("/api/session").status_code == 401
        signed = browser.post("/api/session", headers=bearer(api_server.eng_token))
        assert signed.status_code == 200 and "httponly" in signed.headers["set-cookie"].lower()
        assert browser.get("/api/status").json()["principals"] == ["group:eng"]
        forged = browser.post("/api/search", json={"q": "cat"})  # what another site could send
        assert forged.status_code == 403
        asked = browser.post("/api/search", json={"q": "cat"}, headers={"X-Requested-With": "x"})
        assert asked.status_code == 200
        browser.delete("/api/session")
        assert browser.get("/api/status").status_code == 401


def test_the_cli_searches_through_the_running_server(api_server: ApiServer) -> None:
    found = api_server.cli(
        "search", "harbour crane schedule", "--principal", "group:eng", "--json", "-k", "3"
    )
    assert found.returncode == 0, found.stderr
    hits = [json.loads(line) for line in found.stdout.splitlines()]
    assert hits[0]["record_id"] == api_server.record_id("notes.html")
    assert "q=harbour+crane+schedule" in api_server.log.read_text()  # the server answered it
    as_eng = {"MMSEARCH_URL": api_server.url, "MMSEARCH_TOKEN": api_server.eng_token}
    refused = api_server.cli("search", "merger", "--principal", "group:board", **as_eng)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "error: this token cannot choose principals"
    eng = api_server.cli("search", "merger confidential", "--mode", "keyword", "--json", **as_eng)
    assert eng.returncode == 0 and eng.stdout == ""
    board = {**as_eng, "MMSEARCH_TOKEN": api_server.board_token}
    seen = api_server.cli("search", "merger confidential", "--mode", "keyword", "--json", **board)
    assert json.loads(seen.stdout.splitlines()[0])["title"] == "minutes"


def test_token_commands_and_who_can_read_tokens(api_server: ApiServer) -> None:
    listed = api_server.cli("token", "list")
    assert listed.returncode == 0 and "mms_" not in listed.stdout  # only hashes are stored
    rows = [
        json.loads(line) for line in api_server.cli("token", "list", "--json").stdout.splitlines()
    ]
    assert {"name": "eng", "principals": ["group:eng"]}.items() <= next(
        r for r in rows if r["name"] == "eng"
    ).items()
    again = api_server.cli("token", "add", "eng", "--principal", "group:eng")
    assert again.returncode == 1 and "exists" in again.stderr
    bad = api_server.cli("token", "add", "x", "--principal", "group:eng,group:board")
    assert bad.returncode == 1 and "invalid principal" in bad.stderr
    assert api_server.cli("token", "remove", "nobody").returncode == 1
    digest = hashlib.sha256(api_server.eng_token.encode()).digest()
    with psycopg.connect(api_server.dsn) as conn:
        roles = read_roles(conn)
    for role in (roles.analyst, roles.bi, roles.app):
        with psycopg.connect(api_server.dsn) as conn:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT name FROM mmsearch.api_token")
    for role, allowed in ((roles.analyst, False), (roles.app, True)):
        with psycopg.connect(api_server.dsn) as conn:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            if allowed:
                found = conn.execute("SELECT mmsearch.api_token_principals(%s)", (digest,))
                assert found.fetchone()[0] == ["group:eng"]
            else:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute("SELECT mmsearch.api_token_principals(%s)", (digest,))


def test_a_busy_port_is_a_one_line_error(api_server: ApiServer) -> None:
    port = api_server.url.rsplit(":", 1)[1]
    second = api_server.cli("serve", "--port", port)
    assert second.returncode == 1
    assert second.stderr.strip().startswith(f"error: cannot listen on 127.0.0.1:{port}:")

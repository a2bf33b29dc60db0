"""The admin API refuses what a web page can send cross-origin: a form post (text/plain or form-encoded,
no custom header) and any call without the venue's admin token, and changes nothing when it refuses."""
from __future__ import annotations

import json

import aiohttp
import pytest

from services.bybit_sim.handle import VenueAdmin, VenueProcess

pytestmark = pytest.mark.integration
FORM_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]


@pytest.mark.parametrize("content_type", FORM_TYPES)
async def test_a_cross_origin_form_post_is_refused_and_changes_nothing(venue: VenueProcess, admin: VenueAdmin,
                                                                       content_type: str) -> None:
    body = json.dumps({"kind": "silence", "seconds": 30})  # what <form enctype="text/plain"> can smuggle
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{venue.admin_url}/admin/faults", data=body,
                          headers={"Content-Type": content_type, "Origin": "http://evil.example"}) as resp:
            assert resp.status in (401, 403, 415)
            answer = await resp.json(content_type=None)
        async with s.post(f"{venue.admin_url}/admin/price", data="symbol=BTCUSDT&price=1",
                          headers={"Content-Type": content_type}) as resp:
            assert resp.status in (401, 403, 415)
    assert answer["ok"] is False
    assert await admin.faults() == []


async def test_json_without_the_token_is_refused_and_with_it_accepted(venue: VenueProcess, admin: VenueAdmin) -> None:
    async with aiohttp.ClientSession() as s:
        for method, path in (("POST", "/admin/faults"), ("GET", "/admin/faults"), ("DELETE", "/admin/faults"),
                             ("GET", "/admin/accounts"), ("GET", "/admin/health")):
            async with s.request(method, f"{venue.admin_url}{path}", json={"kind": "silence", "seconds": 30}) as resp:
                assert resp.status == 401, (method, path)
            async with s.request(method, f"{venue.admin_url}{path}", json={"kind": "silence", "seconds": 30},
                                 headers={"X-Admin-Token": "wrong"}) as resp:
                assert resp.status == 401, (method, path)
        assert await admin.faults() == []
        token = {"X-Admin-Token": venue.admin_token}
        async with s.post(f"{venue.admin_url}/admin/faults", data=json.dumps({"kind": "duplicate", "seconds": 1}),
                          headers={**token, "Content-Type": "text/plain"}) as resp:
            assert resp.status == 415  # the token alone is not enough: POST bodies must be JSON
        async with s.delete(f"{venue.admin_url}/admin/faults", headers=token) as resp:
            assert resp.status == 415  # nor for DELETE
        async with s.post(f"{venue.admin_url}/admin/faults", json={"kind": "duplicate", "seconds": 1},
                          headers=token) as resp:
            assert resp.status == 200
    assert [f["kind"] for f in await admin.faults()] == ["duplicate"]


def test_the_token_comes_from_the_environment_or_a_file_and_is_never_on_the_command_line(tmp_path) -> None:
    token_file = tmp_path / "admin-token"
    with VenueProcess([("k", "s")], speed=1.0, extra_args=["--admin-token-file", str(token_file)],
                      admin_token=None) as venue:
        written = token_file.read_text().strip()
        assert len(written) >= 32 and oct(token_file.stat().st_mode & 0o777) == "0o600"
        assert written not in " ".join(venue.command())
        import asyncio

        async def check() -> None:
            async with VenueAdmin(venue.admin_url, token=written) as a:
                assert (await a.health())["ok"]
            async with VenueAdmin(venue.admin_url, token_file=token_file) as a:
                assert (await a.accounts())[0]["api_key"] == "k"
        asyncio.run(check())
    with VenueProcess([("k", "s")], speed=1.0, extra_args=["--admin-token-file", str(token_file)],
                      admin_token=None) as venue:
        assert token_file.read_text().strip() == written  # kept across restarts, so tools keep working

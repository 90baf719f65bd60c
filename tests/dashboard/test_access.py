"""Who gets in: the token (header, query, cookie), the Host check, --no-token, headers."""

from __future__ import annotations

import pytest

from omniq_trio import AsyncOmniQ, ConfigError
from omniq_trio.dashboard._access import host_name, is_loopback
from tests.dashboard.conftest import TOKEN, Site, make_access, open_site


async def test_no_credentials_is_401(site: Site) -> None:
    for path in ("/", "/tasks", "/tasks/x", "/workers", "/api/overview"):
        response = await site.http.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith("Bearer")
    page = await site.http.get("/", headers={"accept": "text/html"})
    assert page.status_code == 401 and "needs its token" in page.text
    assert TOKEN not in page.text


async def test_a_wrong_token_is_401_everywhere(site: Site) -> None:
    assert (await site.http.get("/", headers={"authorization": "Bearer nope"})).status_code == 401
    assert (await site.http.get("/?token=nope")).status_code == 401
    assert (await site.http.get("/", headers={"authorization": f"Basic {TOKEN}"})).status_code == (
        401
    )
    site.http.cookies.set("omniq_dashboard_8765", "forged.0123456789")
    assert (await site.http.get("/")).status_code == 401


async def test_the_bearer_header_is_enough(site: Site) -> None:
    response = await site.http.get("/", headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert "set-cookie" not in response.headers


async def test_the_token_in_the_address_becomes_a_cookie_and_leaves_the_address(
    site: Site,
) -> None:
    response = await site.http.get(f"/tasks?status=failed&token={TOKEN}")
    assert response.status_code == 303
    assert response.headers["location"] == "/tasks?status=failed"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("omniq_dashboard_8765=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert TOKEN not in cookie
    # the cookie alone now opens every page
    assert (await site.http.get("/tasks?status=failed")).status_code == 200
    assert (await site.http.get("/workers")).status_code == 200


async def test_sessions_survive_a_restart_with_the_same_token(omniq: AsyncOmniQ) -> None:
    first, client = await open_site(omniq)
    async with client:
        await first.login()
        cookies = dict(client.cookies)
    _, again = await open_site(omniq)
    async with again:
        again.cookies.update(cookies)
        assert (await again.get("/")).status_code == 200
    _, elsewhere = await open_site(omniq, token="another-token")
    async with elsewhere:
        elsewhere.cookies.update(cookies)
        assert (await elsewhere.get("/")).status_code == 401


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.nip.io"])
async def test_a_foreign_host_header_is_refused_before_the_token(site: Site, host: str) -> None:
    # DNS rebinding: another site's name resolving to 127.0.0.1
    for path in ("/", f"/?token={TOKEN}", "/healthz"):
        response = await site.http.get(
            path, headers={"host": host, "authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 403, (host, path)
        assert "Host header" in response.text


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "[::1]:8765", "localhost"])
async def test_loopback_host_headers_are_allowed(site: Site, host: str) -> None:
    response = await site.http.get("/", headers={"host": host, "authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200


def test_host_rules_for_each_kind_of_bind() -> None:
    loopback = make_access()
    assert loopback.host_allowed("127.0.0.1:80") and loopback.host_allowed("LOCALHOST.")
    assert not loopback.host_allowed("192.168.1.20:8765")
    assert not loopback.host_allowed(None) and not loopback.host_allowed("")

    one_address = make_access(bind_host="10.1.2.3")
    assert one_address.host_allowed("10.1.2.3:8765")
    assert not one_address.host_allowed("10.1.2.4:8765")
    assert not one_address.host_allowed("queue.internal:8765")

    everywhere = make_access(bind_host="0.0.0.0", allowed_hosts=["Queue.Example.com"])
    assert everywhere.host_allowed("10.1.2.4:8765")  # an address cannot be rebound
    assert everywhere.host_allowed("[fe80::1]:8765")
    assert everywhere.host_allowed("queue.example.com")
    assert not everywhere.host_allowed("evil.example")


def test_host_names_and_loopback() -> None:
    assert host_name("[::1]:8765") == "::1"
    assert host_name("Example.COM.:80") == "example.com"
    assert host_name("::1") == "::1"
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("app.localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")


def test_no_token_is_refused_off_loopback() -> None:
    for host in ("0.0.0.0", "10.1.2.3", "::", "dashboard.example.com"):
        with pytest.raises(ConfigError, match="only allowed on a loopback address"):
            make_access(token=None, no_token=True, bind_host=host)
    with pytest.raises(ConfigError, match="not both"):
        make_access(no_token=True)
    assert make_access(token=None, no_token=True, bind_host="::1").token is None


def test_the_token_comes_from_the_argument_the_environment_or_chance() -> None:
    assert make_access(token="given", environ={"OMNIQ_DASHBOARD_TOKEN": "env"}).token == "given"
    assert make_access(token=None, environ={"OMNIQ_DASHBOARD_TOKEN": "env"}).token == "env"
    made = {make_access(token=None).token for _ in range(3)}
    assert len(made) == 3 and all(t and len(t) >= 24 for t in made)
    # an empty variable does not mean "no token"
    assert make_access(token=None, environ={"OMNIQ_DASHBOARD_TOKEN": ""}).token
    with pytest.raises(ConfigError, match="printable"):
        make_access(token=" padded ")


async def test_without_a_token_loopback_requests_get_a_session(omniq: AsyncOmniQ) -> None:
    _, client = await open_site(omniq, token=None, no_token=True)
    async with client:
        first = await client.get("/")
        assert first.status_code == 200
        assert "omniq_dashboard_8765=" in first.headers["set-cookie"]
        assert (await client.get("/tasks")).status_code == 200
        # still no foreign Host
        assert (await client.get("/", headers={"host": "evil.example"})).status_code == 403


async def test_every_response_carries_the_security_headers(logged_in: Site) -> None:
    for path in ("/", "/healthz", "/static/dashboard.css", "/tasks/unknown"):
        headers = (await logged_in.http.get(path)).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
    assert (await logged_in.http.get("/")).headers["cache-control"] == "no-store"

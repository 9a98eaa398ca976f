"""Logging in and out: the pages, the lock-out of guessed passwords (on the real server, from
forwarded addresses), and a session that ends with the browser."""
from __future__ import annotations

import http.client
import re

import pytest

from bench.harness import Site

from .page_text import page_text
from .support import STRICT_LOGIN_LIMIT, STRICT_PASSWORD

pytestmark = pytest.mark.django_db


def test_login_and_logout(client, clinician):
    response = client.post("/accounts/login/", {"username": "dr_ada", "password": "correct horse battery staple"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused_with_a_message(client, clinician):
    response = client.post("/accounts/login/", {"username": "dr_ada", "password": "nope"})
    assert response.status_code == 200
    assert b"correct username and password" in response.content


def test_login_keeps_the_username_after_a_failed_attempt(client, clinician):
    page = client.post("/accounts/login/", {"username": "dr_ada", "password": "wrong"}).content.decode()
    assert 'value="dr_ada"' in page and "correct username and password" in page


def test_logging_out_says_so(logged_in):
    response = logged_in.post("/accounts/logout/", follow=True)
    assert "You have logged out." in page_text(response.content.decode())
    assert "You have logged out." not in logged_in.get("/accounts/login/").content.decode()


class Browser:
    """A cookie-keeping client for the log-in forms, from one (forwarded) client address."""

    def __init__(self, site: Site, address: str):
        self.site, self.address, self.cookies = site, address, {}

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str, http.client.HTTPResponse]:
        connection = http.client.HTTPConnection("127.0.0.1", self.site.port, timeout=30)
        headers = {"X-Forwarded-For": self.address,
                   "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = "&".join(f"{k}={v}" for k, v in form.items())
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        connection.close()
        return response.status, text, response

    def log_in(self, path: str, username: str, password: str) -> tuple[int, str, http.client.HTTPResponse]:
        _, page, _ = self.request("GET", path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        return self.request("POST", path, {"csrfmiddlewaretoken": token, "username": username,
                                           "password": password, "next": "/"})


@pytest.mark.slow
def test_wrong_passwords_for_one_account_lock_it_with_429_before_hashing(strict_site):
    attacker = Browser(strict_site, "203.0.113.10")
    for _ in range(STRICT_LOGIN_LIMIT - 1):
        status, page, _ = attacker.log_in("/accounts/login/", "dr_ada", "guess")
        assert status == 200 and "correct username and password" in page
    status, page, response = attacker.log_in("/accounts/login/", "dr_ada", "guess")
    assert status == 429 and "Too many failed log-ins" in page and response.headers["Retry-After"]
    # The account is locked from anywhere, even with the right password, on the admin too.
    elsewhere = Browser(strict_site, "198.51.100.7")
    assert elsewhere.log_in("/accounts/login/", "dr_ada", STRICT_PASSWORD)[0] == 429
    assert elsewhere.log_in("/admin/login/", "dr_ada", STRICT_PASSWORD)[0] == 429
    strict_site.manage("axes_reset")
    assert elsewhere.log_in("/accounts/login/", "dr_ada", STRICT_PASSWORD)[0] == 302


@pytest.mark.slow
def test_one_address_trying_many_accounts_is_locked_out(strict_site):
    attacker = Browser(strict_site, "203.0.113.20")
    for number in range(STRICT_LOGIN_LIMIT - 1):
        assert attacker.log_in("/admin/login/", f"someone{number}", "guess")[0] == 200
    status, page, _ = attacker.log_in("/admin/login/", "someone-else", "guess")
    assert status == 429 and "Too many failed log-ins" in page
    assert Browser(strict_site, "198.51.100.8").log_in("/accounts/login/", "dr_ada", STRICT_PASSWORD)[0] == 302
    strict_site.manage("axes_reset")


@pytest.mark.slow
def test_session_ends_with_the_browser_and_within_a_shift(strict_site):
    browser = Browser(strict_site, "198.51.100.9")
    status, _, response = browser.log_in("/accounts/login/", "dr_ada", STRICT_PASSWORD)
    session = next(h for h in response.headers.get_all("Set-Cookie") if h.startswith("sessionid="))
    assert status == 302 and "expires" not in session.lower() and "max-age" not in session.lower()
    history = browser.request("GET", "/history/")
    assert history[0] == 200 and "no-store" in history[2].headers["Cache-Control"]
    strict_site.manage("axes_reset")


def test_passwords_are_stored_as_argon2id_at_owasp_minimum(clinician):
    """A password set now is Argon2id with 19 MiB, 2 passes and 1 lane: a tenth of PBKDF2's CPU per
    log-in on the free instance, and not weaker than OWASP's guidance."""
    clinician.refresh_from_db()
    assert clinician.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")


def test_an_older_pbkdf2_password_still_logs_in_and_is_rehashed(client, clinician):
    from django.contrib.auth.hashers import make_password

    clinician.password = make_password("correct horse battery staple", hasher="pbkdf2_sha256")
    clinician.save()
    response = client.post("/accounts/login/", {"username": "dr_ada", "password": "correct horse battery staple"})
    assert response.status_code == 302
    clinician.refresh_from_db()
    assert clinician.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")

"""Login throttling and password rules."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def log_in(client, username: str, password: str, ip: str = "10.0.0.1"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_five_failures_lock_that_username_from_that_address(client, make_user):
    make_user("olga")
    for _ in range(5):
        assert log_in(client, "olga", "wrong").status_code == 200
    response = log_in(client, "olga", "pw-olga")  # even the right password is refused while locked
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lock_is_per_username_and_address(client, make_user):
    make_user("olga")
    make_user("pavel")
    for _ in range(5):
        log_in(client, "olga", "wrong")
    assert log_in(client, "OLGA", "pw-olga").status_code == 429  # usernames compare case-insensitively
    assert log_in(client, "olga", "pw-olga", ip="10.0.0.2").status_code == 302
    client.logout()
    assert log_in(client, "pavel", "pw-pavel").status_code == 302


def test_a_success_before_the_limit_clears_the_failures(client, make_user):
    make_user("olga")
    for _ in range(4):
        log_in(client, "olga", "wrong")
    assert log_in(client, "olga", "pw-olga").status_code == 302
    client.logout()
    for _ in range(4):
        log_in(client, "olga", "wrong")
    assert log_in(client, "olga", "pw-olga").status_code == 302


def test_the_lock_ends_after_the_window(client, make_user, settings):
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 1
    make_user("olga")
    for _ in range(5):
        log_in(client, "olga", "wrong")
    assert log_in(client, "olga", "pw-olga").status_code == 429
    cache.clear()  # what the window's expiry does; no sleeping in tests
    assert log_in(client, "olga", "pw-olga").status_code == 302


@pytest.mark.parametrize("password", ["password123", "12345678901234", "short7", "olga-olga-olga"])
def test_weak_passwords_are_refused(password, make_user):
    user = get_user_model()(username="olga-olga-olga")
    with pytest.raises(ValidationError):
        validate_password(password, user)


def test_a_strong_password_passes(make_user):
    validate_password("correct horse battery staple", get_user_model()(username="olga"))


def test_the_demo_logins_still_work(client, db, settings):
    settings.DEBUG = True
    call_command("seed_demo")
    assert log_in(client, "demo", "storyboard-demo").status_code == 302
    client.logout()
    assert log_in(client, "teammate", "storyboard-team").status_code == 302


def test_the_admin_login_shares_the_limit(client, make_user):
    user = make_user("olga")
    user.is_staff = True
    user.save()
    url = reverse("admin:login")
    for _ in range(5):
        client.post(url, {"username": "olga", "password": "wrong"}, REMOTE_ADDR="10.0.0.1")
    response = client.post(url, {"username": "olga", "password": "pw-olga"}, REMOTE_ADDR="10.0.0.1")
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session

"""Sign-in lockout: repeated failures lock a username (or an address) out for a while."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.contrib.auth.signals import user_login_failed
from django.http import HttpResponse
from django.test import Client, override_settings
from django.utils import timezone

from patron.api.lockout import login_lockout, record_login_failure
from patron.api.models import LoginFailure
from tests.web.conftest import STAFF_PASSWORD


@dataclass(frozen=True)
class Attempt:
    """A login form post: the client (its session) and the answer."""

    client: Client
    response: HttpResponse

    @property
    def signed_in(self) -> bool:
        return "_auth_user_id" in self.client.session

    @property
    def text(self) -> str:
        return self.response.content.decode()


def log_in(password: str, username: str = "mei", address: str = "10.1.1.1") -> Attempt:
    """Post the login form (English pages) as ``address``."""
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    response = client.post(
        "/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )
    return Attempt(client, response)


def test_five_failures_lock_the_username_even_for_the_right_password(staff_user: User) -> None:
    # given: four wrong passwords are only wrong passwords
    for _ in range(4):
        attempt = log_in("wrong")
        assert "Please enter a correct username and password" in attempt.text
    # when: the fifth failure, then the right password
    fifth = log_in("wrong")
    right = log_in(STAFF_PASSWORD)
    # then: refused, with a message that says why and for how long
    for client in (fifth, right):
        assert client.response.status_code == 200
        assert not client.signed_in
        assert (
            "Too many failed logins for this username: it is locked for 15 more minutes, "
            "even with the right password." in client.text
        )
    assert LoginFailure.objects.filter(username="mei").count() == 5


def test_the_lockout_ends_after_its_time(staff_user: User) -> None:
    # given: five failures 16 minutes ago (the lockout lasts 15)
    past = timezone.now() - timedelta(minutes=16)
    for seconds in range(5):
        record_login_failure("mei", "10.1.1.1", now=past + timedelta(seconds=seconds))
    # when
    client = log_in(STAFF_PASSWORD)
    # then
    assert client.response.status_code == 302
    assert client.signed_in


def test_failures_spread_wider_than_the_window_do_not_lock(staff_user: User) -> None:
    # given: five failures over 20 minutes (the window is 15)
    now = timezone.now()
    for minutes in (20, 15, 10, 5, 0):
        record_login_failure("mei", None, now=now - timedelta(minutes=minutes))
    # then
    assert login_lockout("mei", None, now=now) is None


def test_a_successful_login_clears_the_failures(staff_user: User) -> None:
    # given: four failures, then a success
    for _ in range(4):
        log_in("wrong")
    assert log_in(STAFF_PASSWORD).signed_in
    # when: four more failures
    for _ in range(4):
        log_in("wrong")
    # then: not locked (the count started again), the right password still works
    assert LoginFailure.objects.filter(username="mei").count() == 4
    assert log_in(STAFF_PASSWORD).signed_in


def test_the_username_is_matched_without_regard_to_case(staff_user: User) -> None:
    for username in ("MEI", "Mei", "mei", "mEi", "MEi"):
        log_in("wrong", username=username)
    assert not log_in(STAFF_PASSWORD).signed_in


def test_one_address_trying_many_usernames_is_locked_out(staff_user: User) -> None:
    # given: 20 failures from one address, each for another (unknown) username
    for number in range(20):
        log_in("wrong", username=f"guess-{number}", address="10.6.6.6")
    # when: the right password from that address, and from another
    from_guesser = log_in(STAFF_PASSWORD, address="10.6.6.6")
    from_elsewhere = log_in(STAFF_PASSWORD, address="10.7.7.7")
    # then
    assert not from_guesser.signed_in
    assert "Too many failed logins from this address" in from_guesser.text
    assert from_elsewhere.signed_in


@override_settings(LOGIN_MAX_FAILURES=2, LOGIN_FAILURE_WINDOW_SECONDS=60, LOGIN_LOCKOUT_SECONDS=120)
def test_thresholds_and_durations_are_settings(staff_user: User) -> None:
    log_in("wrong")
    second = log_in("wrong")
    assert "locked for 2 more minutes" in second.text
    assert not log_in(STAFF_PASSWORD).signed_in


def test_every_refused_attempt_fires_user_login_failed(staff_user: User) -> None:
    # given: a receiver, as the audit log has
    failures: list[dict[str, object]] = []

    def receiver(sender: object, credentials: dict[str, object], **kwargs: object) -> None:
        failures.append(credentials)

    user_login_failed.connect(receiver)
    try:
        # when: five wrong passwords and one right one during the lockout
        for _ in range(5):
            log_in("wrong")
        log_in(STAFF_PASSWORD)
    finally:
        user_login_failed.disconnect(receiver)
    # then: six failures, the password never passed on
    assert len(failures) == 6
    assert all(credentials["username"] == "mei" for credentials in failures)
    assert all(credentials["password"] != STAFF_PASSWORD for credentials in failures)


def test_the_lockout_message_is_translated(staff_user: User) -> None:
    for _ in range(5):
        Client().post("/login/", {"username": "mei", "password": "wrong"})
    response = Client(HTTP_ACCEPT_LANGUAGE="zh-hans").post(
        "/login/", {"username": "mei", "password": STAFF_PASSWORD}
    )
    assert "登录失败次数过多".encode() in response.content


def test_the_admin_login_is_locked_out_too(staff_user: User) -> None:
    for _ in range(5):
        Client().post("/admin/login/", {"username": "mei", "password": "wrong"})
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    response = client.post("/admin/login/", {"username": "mei", "password": STAFF_PASSWORD})
    assert "_auth_user_id" not in client.session
    assert "Too many failed logins for this username" in response.content.decode()

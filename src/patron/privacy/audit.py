"""The append-only audit log: who read, exported, erased or changed what, from where.

:func:`record` writes one :class:`~patron.privacy.models.AuditEvent`; every part of Patron
that touches personal data or rights calls it (consent changes, manual points adjustments,
and later personal-data reads, exports and erasures). Logins, failed logins and changes of
roles (group membership) and permissions are recorded from Django's own signals
(:func:`connect_signals`, called by the app's ``ready``).

Who acted is taken from the arguments, else from the request being served (set by
:class:`AuditRequestMiddleware`), else left empty (a command or a job). ``details`` must
never hold plaintext personal data: keys naming personal fields are refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, User
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models import QuerySet
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.http import HttpRequest, HttpResponse

from patron.customers.models import Customer
from patron.privacy.choices import AuditActionChoices
from patron.privacy.models import AuditEvent

#: Keys ``details`` may not carry: they name personal data (DESIGN.md's data rules).
PERSONAL_DATA_KEYS = frozenset(
    {"name", "email", "e-mail", "phone", "mobile", "address", "birthday", "password"}
)
#: How many characters of a bearer token identify it in the log (the stored key prefix).
TOKEN_PREFIX_LENGTH = 8
_MAX_LABEL = 200
#: Session key of the role (group) names of the signed-in user, taken at login.
SESSION_ROLES_KEY = "patron_roles"

_current_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)


class AuditDetailsError(ValueError):
    """``details`` of an audit event named a personal-data field or was not JSON-ready."""


@dataclass(frozen=True)
class AuditActor:
    """Who acted: a user (by id and a readable label) and the address they came from."""

    user_id: int | None = None
    label: str = ""
    address: str | None = None
    token_prefix: str = ""


def bearer_token_prefix(request: HttpRequest) -> str:
    """The first characters of the request's bearer token (its stored key prefix), or ""."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return token.strip()[:TOKEN_PREFIX_LENGTH]


def request_address(request: HttpRequest) -> str | None:
    """The client's address as the server saw it (``REMOTE_ADDR``), or None."""
    address = request.META.get("REMOTE_ADDR") or None
    return str(address) if address else None


def request_actor(request: HttpRequest) -> AuditActor:
    """Who is acting in ``request``: the API token's user (``token ptn_abcd (alice)``) or the
    session's user, and the client's address."""
    user = getattr(request, "auth", None)
    if not isinstance(user, User):
        user = getattr(request, "user", None)
    prefix = bearer_token_prefix(request)
    authenticated = user is not None and user.is_authenticated
    username = user.get_username() if authenticated and user is not None else ""
    label = f"token {prefix} ({username})" if prefix else username
    return AuditActor(
        user_id=user.pk if authenticated and user is not None else None,
        label=label[:_MAX_LABEL],
        address=request_address(request),
        token_prefix=prefix,
    )


def current_actor() -> AuditActor | None:
    """The actor of the request being served, or None outside a request."""
    request = _current_request.get()
    return None if request is None else request_actor(request)


@contextmanager
def serving(request: HttpRequest) -> Iterator[None]:
    """Within the block, audit events without an explicit actor name ``request``'s user."""
    reset = _current_request.set(request)
    try:
        yield
    finally:
        _current_request.reset(reset)


class AuditRequestMiddleware:
    """Makes the request being served known to :func:`record`, so that events written deep
    in a domain function (a role change in the admin, a points adjustment) name who did it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with serving(request):
            return self.get_response(request)


def _check_details(value: Any, path: str = "details") -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise AuditDetailsError(f"{path}: keys must be text, not {key!r}")
            if key.lower() in PERSONAL_DATA_KEYS:
                raise AuditDetailsError(
                    f"{path}.{key}: audit details never hold personal data; name the field "
                    "that was read or changed instead of its value"
                )
            _check_details(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_details(item, f"{path}[{index}]")
    elif not (value is None or isinstance(value, str | int | float | bool)):
        raise AuditDetailsError(f"{path}: {type(value).__name__} is not JSON (use text)")


def record(
    action: str,
    *,
    actor: AuditActor | None = None,
    customer: Customer | None = None,
    details: Mapping[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
) -> AuditEvent:
    """Append an audit event of ``action`` (an :class:`AuditActionChoices` value).

    ``actor`` defaults to the request being served (none in commands and jobs). ``customer``
    is kept by id and external id. ``details`` is JSON without personal data: a key that
    names a personal field (:data:`PERSONAL_DATA_KEYS`) raises :class:`AuditDetailsError`.
    Written in the caller's transaction, so an action rolled back leaves no event behind.
    """
    if action not in AuditActionChoices.values:
        raise ValueError(
            f"unknown audit action {action!r}; use one of: {', '.join(AuditActionChoices.values)}"
        )
    details = dict(details or {})
    _check_details(details)
    actor = actor or current_actor() or AuditActor()
    fields: dict[str, Any] = {
        "action": action,
        "actor_user_id": actor.user_id,
        "actor_label": actor.label[:_MAX_LABEL],
        "actor_address": actor.address,
        "customer_pk": customer.pk if customer is not None else None,
        "customer_external_id": customer.external_id if customer is not None else "",
        "details": details,
    }
    if occurred_at is not None:
        fields["occurred_at"] = occurred_at
    return AuditEvent.objects.create(**fields)


def audit_events(
    *,
    action: str = "",
    actor: str = "",
    customer: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[AuditEvent]:
    """Audit events, newest first: of one ``action``; whose actor label contains ``actor``;
    about the customer with external id ``customer``; from ``since`` (inclusive) to
    ``until`` (exclusive). Empty filters select everything."""
    events = AuditEvent.objects.all()
    if action:
        events = events.filter(action=action)
    if actor:
        events = events.filter(actor_label__icontains=actor)
    if customer:
        events = events.filter(customer_external_id=customer)
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    if until is not None:
        events = events.filter(occurred_at__lt=until)
    return events.order_by("-occurred_at", "-id")


# --------------------------------------------------------------------------- auth signals


def _on_logged_in(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    address = request_address(request) if request is not None else None
    if request is not None and hasattr(request, "session"):
        # The navigation shows administrators' links from this, without a query per page;
        # the pages themselves check the roles again.
        request.session[SESSION_ROLES_KEY] = sorted(user.groups.values_list("name", flat=True))
    record(
        AuditActionChoices.LOGIN,
        actor=AuditActor(user_id=user.pk, label=user.get_username(), address=address),
    )


def _on_logged_out(
    sender: Any, request: HttpRequest | None, user: User | None, **kwargs: Any
) -> None:
    if user is None:
        return
    address = request_address(request) if request is not None else None
    record(
        AuditActionChoices.LOGOUT,
        actor=AuditActor(user_id=user.pk, label=user.get_username(), address=address),
    )


def _on_login_failed(
    sender: Any, credentials: Mapping[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Django has already masked the password in ``credentials``; only the name tried is kept.
    username = str(credentials.get("username", ""))[:150]
    address = request_address(request) if request is not None else None
    record(
        AuditActionChoices.LOGIN_FAILED,
        actor=AuditActor(label=username, address=address),
        details={"username_tried": username},
    )


_M2M_ACTIONS = {"post_add": "added", "post_remove": "removed", "pre_clear": "cleared"}


def _on_user_groups_changed(
    sender: Any,
    instance: Any,
    action: str,
    reverse: bool,
    model: Any,
    pk_set: set[int] | None,
    **kwargs: Any,
) -> None:
    if action not in _M2M_ACTIONS:
        return
    if reverse:  # group.user_set.add(user): instance is the group, pk_set the users
        users = list(User.objects.filter(pk__in=pk_set or ()).order_by("pk"))
        if action == "pre_clear":
            users = list(instance.user_set.order_by("pk"))
        for user in users:
            _record_role_change(user, _M2M_ACTIONS[action], [instance.name])
        return
    if action == "pre_clear":
        names = list(instance.groups.order_by("name").values_list("name", flat=True))
    else:
        names = list(
            Group.objects.filter(pk__in=pk_set or ())
            .order_by("name")
            .values_list("name", flat=True)
        )
    if names:
        _record_role_change(instance, _M2M_ACTIONS[action], names)


def _record_role_change(user: User, change: str, groups: list[str]) -> None:
    record(
        AuditActionChoices.ROLE_CHANGE,
        details={
            "user_id": user.pk,
            "username": user.get_username(),
            "change": change,
            "groups": groups,
        },
    )


def _on_permissions_changed(
    sender: Any,
    instance: Any,
    action: str,
    reverse: bool,
    model: Any,
    pk_set: set[int] | None,
    **kwargs: Any,
) -> None:
    if action not in _M2M_ACTIONS:
        return
    ids = sorted(pk_set or ())
    if isinstance(instance, User):
        holder: dict[str, Any] = {"user_id": instance.pk, "username": instance.get_username()}
        if action == "pre_clear":
            ids = sorted(instance.user_permissions.values_list("pk", flat=True))
    elif isinstance(instance, Group):
        holder = {"group": instance.name}
        if action == "pre_clear":
            ids = sorted(instance.permissions.values_list("pk", flat=True))
    else:  # permission.user_set / permission.group_set: pk_set names the holders
        holder = {"permission_id": instance.pk, "holder": model.__name__.lower()}
    record(
        AuditActionChoices.PERMISSION_CHANGE,
        details={
            **holder,
            "change": _M2M_ACTIONS[action],
            ("holder_ids" if reverse else "permission_ids"): ids,
        },
    )


#: Flags of a user that grant or take away rights: changing one is a permission change.
USER_PRIVILEGE_FLAGS = ("is_superuser", "is_staff", "is_active")


def _remember_user_flags(
    sender: Any, instance: User, update_fields: Any = None, **kwargs: Any
) -> None:
    if instance.pk is None or (
        update_fields is not None and not set(update_fields) & set(USER_PRIVILEGE_FLAGS)
    ):
        # A new user, or a save that cannot touch the flags (the last login on every login).
        instance._audit_flags_before = None  # type: ignore[attr-defined]
        return
    instance._audit_flags_before = (  # type: ignore[attr-defined]
        User.objects.filter(pk=instance.pk).values(*USER_PRIVILEGE_FLAGS).first()
    )


def _on_user_saved(sender: Any, instance: User, created: bool, **kwargs: Any) -> None:
    before = getattr(instance, "_audit_flags_before", None)
    instance._audit_flags_before = None  # type: ignore[attr-defined]
    if created:
        flags = {flag: getattr(instance, flag) for flag in USER_PRIVILEGE_FLAGS[:2]}
        if any(flags.values()):
            record(
                AuditActionChoices.PERMISSION_CHANGE,
                details={
                    "user_id": instance.pk,
                    "username": instance.get_username(),
                    "change": "created",
                    **flags,
                },
            )
        return
    if not before:
        return
    changed = {
        flag: [before[flag], getattr(instance, flag)]
        for flag in USER_PRIVILEGE_FLAGS
        if before[flag] != getattr(instance, flag)
    }
    if changed:
        record(
            AuditActionChoices.PERMISSION_CHANGE,
            details={
                "user_id": instance.pk,
                "username": instance.get_username(),
                "change": "flags",
                "flags": changed,
            },
        )


def connect_signals() -> None:
    """Record logins, logouts, failed logins and role and permission changes (groups,
    permissions, and the superuser, staff and active flags of a user; idempotent: each
    receiver is connected once, by its uid)."""
    user_logged_in.connect(_on_logged_in, dispatch_uid="privacy_audit_login")
    user_logged_out.connect(_on_logged_out, dispatch_uid="privacy_audit_logout")
    user_login_failed.connect(_on_login_failed, dispatch_uid="privacy_audit_login_failed")
    m2m_changed.connect(
        _on_user_groups_changed, sender=User.groups.through, dispatch_uid="privacy_audit_groups"
    )
    pre_save.connect(_remember_user_flags, sender=User, dispatch_uid="privacy_audit_user_flags")
    post_save.connect(_on_user_saved, sender=User, dispatch_uid="privacy_audit_user_saved")
    m2m_changed.connect(
        _on_permissions_changed,
        sender=User.user_permissions.through,
        dispatch_uid="privacy_audit_user_permissions",
    )
    m2m_changed.connect(
        _on_permissions_changed,
        sender=Group.permissions.through,
        dispatch_uid="privacy_audit_group_permissions",
    )

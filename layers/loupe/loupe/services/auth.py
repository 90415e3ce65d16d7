"""Registration, login, refresh-token rotation, logout, sessions, and password change and reset."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg.errors

from loupe import db
from loupe.config import get_settings
from loupe.errors import (
    Conflict,
    FieldIssue,
    InvalidInput,
    NotFound,
    NotPermitted,
    TooManyAttempts,
    Unauthenticated,
)
from loupe.models.auth import (
    LoginRequest,
    MeOut,
    PasswordChangeRequest,
    PasswordResetConfirm,
    PasswordResetRequest,
    RegisterRequest,
    SessionOut,
    TokenPair,
    UserOut,
)
from loupe.models.common import Page
from loupe.models.identity import Principal
from loupe.models.organizations import AcceptInvitationRequest
from loupe.notify import Mail, send
from loupe.repositories import invitations, login_attempts, password_resets, sessions, users
from loupe.repositories.users import Membership, UserRecord
from loupe.security import passwords, tokens
from loupe.services import audit, rate_limits

INVALID_LOGIN = "Invalid email or password"
INVALID_REFRESH = "Invalid or expired refresh token"
INVALID_INVITATION = "Invalid, expired or already used invitation"
INVALID_RESET = "Invalid, expired or already used reset token"
WRONG_PASSWORD = "The current password is wrong"  # noqa: S105  # a message, not a secret
RESET_TOKEN_TTL = timedelta(minutes=30)


@dataclass(frozen=True)
class Client:
    """Where a request came from, as recorded on the session it opens."""

    ip: str | None = None
    user_agent: str | None = None

    @classmethod
    def of(cls, ip: str | None, user_agent: str | None) -> Client:
        return cls(ip=ip, user_agent=user_agent[:512] if user_agent else None)


def _open_session(user: UserOut, client: Client) -> TokenPair:
    settings = get_settings()
    now = datetime.now(UTC)
    session_expires = now + timedelta(seconds=settings.refresh_token_ttl_seconds)
    session_id = sessions.create(user.organization_id, user.id, session_expires, client.user_agent, client.ip)
    refresh_token = tokens.new_secret_token(tokens.REFRESH_TOKEN_PREFIX)
    sessions.add_refresh_token(
        session_id, user.organization_id, tokens.digest(refresh_token), session_expires
    )
    return _token_pair(user, session_id, refresh_token)


def _token_pair(user: UserOut, session_id: UUID, refresh_token: str) -> TokenPair:
    settings = get_settings()
    access_token = tokens.issue_access_token(
        settings,
        tokens.AccessClaims(user_id=user.id, session_id=session_id, organization_id=user.organization_id),
    )
    return TokenPair(
        user=user,
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=settings.access_token_ttl_seconds,
    )


def register(request: RegisterRequest, client: Client) -> TokenPair:
    password_hash = passwords.hash_password(request.password)
    with db.transaction():
        if users.find_by_email(request.email) is not None:
            raise Conflict("An account with this email already exists")
        try:
            user = users.insert(request.email, request.name, password_hash)
        except psycopg.errors.UniqueViolation:
            raise Conflict("An account with this email already exists") from None
        organization_id = users.insert_organization(request.organization_name)
        users.add_membership(organization_id, user.id, "admin")
        out = UserOut(
            id=user.id, email=user.email, name=user.name, role="admin", organization_id=organization_id
        )
        return _open_session(out, client)


def _refuse_if_throttled(
    email: str, user: UserRecord | None, membership: Membership | None, client: Client
) -> None:
    """After LOUPE_LOGIN_MAX_FAILURES wrong passwords for the email within the window, 429 until the
    oldest of them leaves it (audited in the membership's organization, if any). Serializes attempts on
    the email for the rest of the transaction."""
    settings = get_settings()
    login_attempts.lock_email(email)
    failures, oldest = login_attempts.recent_failures(email, settings.login_failure_window_seconds)
    if failures >= settings.login_max_failures and oldest is not None:
        unlocks_at = oldest + timedelta(seconds=settings.login_failure_window_seconds)
        wait = math.ceil((unlocks_at - datetime.now(UTC)).total_seconds())
        if user and membership:
            audit.record(
                "auth.login_throttled",
                membership.organization_id,
                ip=client.ip,
                target_type="user",
                target_id=user.id,
            )
        raise TooManyAttempts(retry_after_seconds=wait, keep_changes=True)


def login(request: LoginRequest, client: Client) -> TokenPair:
    with db.transaction():
        user = users.find_by_email(request.email)
        membership = users.default_membership(user.id) if user else None
        _refuse_if_throttled(request.email, user, membership, client)
        # The same work and the same answer whether the email is unknown or the password wrong.
        if not passwords.verify_password(user.password_hash if user else None, request.password) or not (
            user and membership
        ):
            login_attempts.record(request.email, client.ip, succeeded=False)
            if user and membership:
                audit.record(
                    "auth.login_failed",
                    membership.organization_id,
                    ip=client.ip,
                    target_type="user",
                    target_id=user.id,
                )
            raise Unauthenticated(INVALID_LOGIN, keep_changes=True)
        login_attempts.record(request.email, client.ip, succeeded=True)
        users.mark_used(user.id, membership.organization_id)
        audit.record(
            "auth.login",
            membership.organization_id,
            ip=client.ip,
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
        )
        if passwords.needs_rehash(user.password_hash):
            users.set_password_hash(user.id, passwords.hash_password(request.password))
        out = UserOut(
            id=user.id,
            email=user.email,
            name=user.name,
            role=membership.role,
            organization_id=membership.organization_id,
        )
        return _open_session(out, client)


def accept_invitation(request: AcceptInvitationRequest, client: Client) -> TokenPair:
    """Join the invitation's organization with its role, and enter it: with a new account (the
    invitation's email, `name` and `password`), or, when the email has an account, by that account's
    password (a wrong one counts as a failed login and leaves the invitation pending)."""
    digest = tokens.digest(request.token)
    with db.transaction():
        pending = invitations.pending_by_token(digest)
        existing = users.find_by_email(pending.email) if pending is not None else None
        if pending is not None and existing is not None:
            _refuse_if_throttled(pending.email, existing, None, client)
            if not passwords.verify_password(existing.password_hash, request.password):
                login_attempts.record(pending.email, client.ip, succeeded=False)
                raise Unauthenticated(INVALID_LOGIN, keep_changes=True)
    password_hash = passwords.hash_password(request.password) if existing is None else None
    with db.transaction():
        # Claimed first so two concurrent accepts cannot both pass; a 409 below rolls the claim back.
        invitation = invitations.claim(digest)
        if invitation is None:
            raise Unauthenticated(INVALID_INVITATION)
        user = users.find_by_email(invitation.email)
        if user is None:
            if request.name is None or password_hash is None:
                raise InvalidInput(
                    "A new account needs a name", issues=[FieldIssue("name", "required for a new account")]
                )
            try:
                user = users.insert(invitation.email, request.name, password_hash)
            except psycopg.errors.UniqueViolation:
                raise Conflict("An account with this email already exists") from None
        elif users.membership(user.id, invitation.organization_id) is not None:
            raise Conflict("This account is already a member of the organization")
        elif existing is None or existing.id != user.id:
            # The account appeared between the password check and the claim: check its password first.
            raise Conflict("An account with this email was just created; accept the invitation again")
        users.add_membership(invitation.organization_id, user.id, invitation.role)
        users.mark_used(user.id, invitation.organization_id)
        audit.record(
            "invitation.accepted",
            invitation.organization_id,
            ip=client.ip,
            actor_id=user.id,
            target_type="invitation",
            target_id=invitation.id,
            metadata={
                "email": invitation.email,
                "role": invitation.role,
                "existing_account": existing is not None,
            },
        )
        out = UserOut(
            id=user.id,
            email=user.email,
            name=user.name,
            role=invitation.role,
            organization_id=invitation.organization_id,
        )
        return _open_session(out, client)


def switch_organization(principal: Principal, organization_id: UUID, client: Client) -> TokenPair:
    """Tokens of a new session in another of the user's organizations (the current session stays); the
    next login enters it too."""
    assert principal.user_id is not None
    with db.transaction():
        with db.as_system():
            found = users.membership(principal.user_id, organization_id)
        if found is None:
            raise NotFound("You are not a member of that organization")
        db.use_system_role()
        db.bind_tenant(organization_id)
        profile = users.profile(principal.user_id, organization_id)
        assert profile is not None
        users.mark_used(principal.user_id, organization_id)
        audit.record(
            "auth.organization_switched",
            organization_id,
            ip=client.ip,
            actor_id=principal.user_id,
            target_type="user",
            target_id=principal.user_id,
            metadata={"from": str(principal.organization_id)},
        )
        out = UserOut(
            id=profile.id,
            email=profile.email,
            name=profile.name,
            role=found.role,
            organization_id=organization_id,
        )
        return _open_session(out, client)


def refresh(refresh_token: str) -> TokenPair:
    """Rotate the refresh token to its successor. A spent token presented again within
    LOUPE_REFRESH_REUSE_GRACE_SECONDS (a second tab) gets the same successor; later, it was copied."""
    settings = get_settings()
    with db.transaction():
        use = sessions.spend_refresh_token(tokens.digest(refresh_token), settings.refresh_reuse_grace_seconds)
        if use is None or use.token_expired or not use.session_live:
            raise Unauthenticated(INVALID_REFRESH)
        issued = _issued_successor(use.session_id, refresh_token) if use.spent_within_grace else None
        if use.already_spent and issued is None:
            # A spent token presented again means it was copied: end the whole session.
            sessions.revoke(use.session_id)
            raise Unauthenticated(INVALID_REFRESH, keep_changes=True)
        profile = users.profile(use.user_id, use.organization_id)
        session = sessions.get(use.session_id)
        if profile is None or session is None:
            raise Unauthenticated(INVALID_REFRESH)
        successor = issued or tokens.refresh_successor(settings.signing_secret, refresh_token)
        if issued is None:
            sessions.add_refresh_token(
                use.session_id, use.organization_id, tokens.digest(successor), session.expires_at
            )
        sessions.touch(use.session_id)
        out = UserOut.model_validate(profile, from_attributes=True)
        return _token_pair(out, use.session_id, successor)


def _issued_successor(session_id: UUID, refresh_token: str) -> str | None:
    """The successor the token was rotated to, if the session still holds it. Derived under each
    signing key, the current and the retired ones, since a key may have rotated in between."""
    keys = get_settings().signing_keys
    candidates = {
        tokens.digest(successor): successor
        for successor in (
            tokens.refresh_successor(key, refresh_token)
            for key in (keys.current, *(retired.secret for retired in keys.previous))
        )
    }
    found = sessions.live_refresh_token(session_id, list(candidates))
    return candidates[found] if found is not None else None


def logout(principal: Principal, refresh_token: str) -> None:
    """End the session the refresh token belongs to, if it is the caller's; idempotent."""
    with db.transaction():
        db.use_system_role()
        session = sessions.session_of_refresh_token(tokens.digest(refresh_token))
        if session is not None and session.user_id == principal.user_id:
            sessions.revoke(session.id)


def logout_all(principal: Principal) -> None:
    if principal.user_id is None:
        raise Unauthenticated("Sessions belong to users; this credential is an API key")
    with db.transaction():
        db.use_system_role()
        sessions.revoke_all_for_user(principal.user_id)


def me(principal: Principal) -> MeOut:
    if principal.user_id is None:
        raise Unauthenticated("This credential is an API key, not a user")
    with db.transaction():
        profile = users.profile(principal.user_id, principal.organization_id)
        # The account's other organizations are outside the request's tenant.
        with db.as_system():
            memberships = users.memberships(principal.user_id)
    if profile is None:
        raise Unauthenticated("Invalid or expired credentials")
    # The profile is already validated: its fields (the model's __dict__) are copied as they are, not
    # serialized and read again.
    return MeOut.model_validate({**profile.__dict__, "memberships": memberships})


def list_sessions(principal: Principal, limit: int, offset: int) -> Page[SessionOut]:
    if principal.user_id is None:
        raise Unauthenticated("Sessions belong to users; this credential is an API key")
    with db.transaction():
        records, total = sessions.list_live(principal.user_id, principal.organization_id, limit, offset)
    items = [
        SessionOut(
            **record.model_dump(exclude={"organization_id", "user_id", "revoked_at"}),
            current=record.id == principal.session_id,
        )
        for record in records
    ]
    return Page[SessionOut](items=items, total=total, limit=limit, offset=offset)


def revoke_session(principal: Principal, session_id: UUID) -> None:
    with db.transaction():
        session = sessions.get(session_id)
        if session is None or session.user_id != principal.user_id:
            raise NotFound("No such session")
        sessions.revoke(session_id)


def change_password(principal: Principal, request: PasswordChangeRequest, client: Client) -> None:
    """Set a new password after checking the current one (wrong ones count as failed logins); every
    other session of the user ends."""
    if principal.user_id is None:
        raise Unauthenticated("Passwords belong to users; this credential is an API key")
    new_hash = passwords.hash_password(request.new_password)
    with db.transaction():
        db.use_system_role()
        user = users.get(principal.user_id)
        if user is None:
            raise Unauthenticated("Invalid or expired credentials")
        _refuse_if_throttled(user.email, user, users.default_membership(user.id), client)
        if not passwords.verify_password(user.password_hash, request.current_password):
            login_attempts.record(user.email, client.ip, succeeded=False)
            raise NotPermitted(WRONG_PASSWORD, keep_changes=True)
        users.set_password_hash(user.id, new_hash)
        sessions.revoke_others_of_user(user.id, principal.session_id)
        password_resets.spend_all_of_user(user.id)
        audit.record(
            "auth.password_changed",
            principal.organization_id,
            ip=client.ip,
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
        )


def request_password_reset(request: PasswordResetRequest, client: Client) -> None:
    """Mail a single-use reset token to the email if it has an account. The answer, and the time it
    takes (at least LOUPE_PASSWORD_RESET_MIN_MS), are the same either way."""
    started = time.monotonic()
    rate_limits.reset_email(request.email)
    token = tokens.new_secret_token(tokens.PASSWORD_RESET_PREFIX)
    with db.transaction():
        user = users.find_by_email(request.email)
        membership = users.default_membership(user.id) if user else None
        if user is not None and membership is not None:
            password_resets.create(user.id, tokens.digest(token), datetime.now(UTC) + RESET_TOKEN_TTL)
            send(_reset_mail(user.email, token))
            audit.record(
                "auth.password_reset_requested",
                membership.organization_id,
                ip=client.ip,
                target_type="user",
                target_id=user.id,
            )
    remaining = get_settings().password_reset_min_ms / 1000 - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)


def _reset_mail(email: str, token: str) -> Mail:
    template = get_settings().password_reset_url
    where = (
        f"Open this link within 30 minutes to choose a new password:\n\n{template.format(token=token)}"
        if template
        else f"Use this token within 30 minutes to choose a new password:\n\n{token}"
    )
    return Mail(
        to=email,
        subject="Reset your Loupe password",
        text=f"Someone asked to reset the password of the Loupe account {email}.\n\n{where}\n\n"
        "If it was not you, ignore this mail: your password stays as it is.\n",
    )


def confirm_password_reset(request: PasswordResetConfirm, client: Client) -> None:
    """Set the new password with a live reset token (spent by this); every session of the user ends."""
    new_hash = passwords.hash_password(request.new_password)
    with db.transaction():
        user_id = password_resets.spend(tokens.digest(request.token))
        user = users.get(user_id) if user_id else None
        if user is None:
            raise Unauthenticated(INVALID_RESET)
        users.set_password_hash(user.id, new_hash)
        password_resets.spend_all_of_user(user.id)
        sessions.revoke_all_for_user(user.id)
        # The owner proved control of the mailbox: earlier wrong passwords no longer lock the login.
        login_attempts.record(user.email, client.ip, succeeded=True)
        membership = users.default_membership(user.id)
        if membership is not None:
            audit.record(
                "auth.password_reset",
                membership.organization_id,
                ip=client.ip,
                actor_id=user.id,
                target_type="user",
                target_id=user.id,
            )

"""Routes of the auth function: registration, login, token refresh, logout, sessions, me, password
change and reset. Every POST here counts against the per-address limit (the function's request gate,
loupe.services.rate_limits.count_auth_request)."""

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from loupe.api.auth import User
from loupe.api.context import current_request
from loupe.api.openapi import conditional_read_responses
from loupe.api.prefix import API_PREFIX
from loupe.api.resolver import LoupeRouter
from loupe.api.responses import created, no_content, with_content_etag
from loupe.models.auth import (
    LoginRequest,
    LogoutRequest,
    MeOut,
    PasswordChangeRequest,
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshRequest,
    RegisterRequest,
    SessionOut,
    SwitchOrganization,
    TokenPair,
)
from loupe.models.common import Page
from loupe.models.organizations import AcceptInvitationRequest
from loupe.services import auth

router = LoupeRouter()
TAGS = ["auth"]


def _client() -> auth.Client:
    state = current_request()
    return auth.Client.of(state.client_ip, state.user_agent)


@router.post(
    "/auth/register",
    operation_id="register",
    authenticated=False,
    errors=(409, 413, 429),
    status_code=201,
    tags=TAGS,
    summary="Create an account and its organization, with the caller as admin",
)
def register(body: RegisterRequest) -> Response[TokenPair]:
    return created(auth.register(body, _client()), f"{API_PREFIX}/auth/me")


@router.post(
    "/auth/login", operation_id="login", authenticated=False, errors=(401, 429), tags=TAGS, summary="Log in"
)
def login(body: LoginRequest) -> TokenPair:
    return auth.login(body, _client())


@router.post(
    "/auth/accept-invitation",
    operation_id="acceptInvitation",
    authenticated=False,
    errors=(401, 409, 429),
    status_code=201,
    tags=TAGS,
    summary="Join an organization with an invitation token: with a new account, or an existing account's"
    " password; logs in there",
)
def accept_invitation(body: AcceptInvitationRequest) -> Response[TokenPair]:
    return created(auth.accept_invitation(body, _client()), f"{API_PREFIX}/auth/me")


@router.post(
    "/auth/refresh",
    operation_id="refreshTokens",
    authenticated=False,
    errors=(401, 429),
    tags=TAGS,
    summary="Rotate a refresh token",
)
def refresh(body: RefreshRequest) -> TokenPair:
    return auth.refresh(body.refresh_token)


@router.post(
    "/auth/password",
    operation_id="changePassword",
    status_code=204,
    errors=(403, 429),
    tags=TAGS,
    summary="Change the caller's password; the caller's other sessions end",
    description="A wrong current password is 403 and counts as a failed login of the account.",
)
def change_password(body: PasswordChangeRequest, caller: User) -> Response[None]:
    auth.change_password(caller, body, _client())
    return no_content()


@router.post(
    "/auth/password-reset/request",
    operation_id="requestPasswordReset",
    authenticated=False,
    status_code=202,
    errors=(429,),
    tags=TAGS,
    summary="Mail a password reset token, if the email has an account",
    description="Always 202, in the same time, whether or not the email has an account. The token is"
    " valid for 30 minutes, once.",
)
def request_password_reset(body: PasswordResetRequest) -> Response[None]:
    auth.request_password_reset(body, _client())
    return Response(status_code=202)


@router.post(
    "/auth/password-reset/confirm",
    operation_id="confirmPasswordReset",
    authenticated=False,
    status_code=204,
    errors=(401, 429),
    tags=TAGS,
    summary="Set a new password with a reset token; every session of the account ends",
)
def confirm_password_reset(body: PasswordResetConfirm) -> Response[None]:
    auth.confirm_password_reset(body, _client())
    return no_content()


@router.post(
    "/auth/logout",
    operation_id="logout",
    status_code=204,
    tags=TAGS,
    summary="End the session of a refresh token",
)
def logout(body: LogoutRequest, caller: User) -> Response[None]:
    auth.logout(caller, body.refresh_token)
    return no_content()


@router.post(
    "/auth/logout-all",
    operation_id="logoutAll",
    status_code=204,
    tags=TAGS,
    summary="End every session of the caller",
)
def logout_all(caller: User) -> Response[None]:
    auth.logout_all(caller)
    return no_content()


@router.get("/auth/sessions", operation_id="listSessions", tags=TAGS, summary="The caller's live sessions")
def list_sessions(
    caller: User,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[SessionOut]:
    return auth.list_sessions(caller, limit, offset)


@router.delete(
    "/auth/sessions/<session_id>",
    operation_id="revokeSession",
    errors=(404,),
    status_code=204,
    tags=TAGS,
    summary="End a session",
)
def revoke_session(session_id: UUID, caller: User) -> Response[None]:
    auth.revoke_session(caller, session_id)
    return no_content()


@router.post(
    "/auth/switch-organization",
    operation_id="switchOrganization",
    errors=(404,),
    tags=TAGS,
    summary="Tokens of a new session in another of your organizations; the next login enters it too",
)
def switch_organization(body: SwitchOrganization, caller: User) -> TokenPair:
    return auth.switch_organization(caller, body.organization_id, _client())


@router.get(
    "/auth/me",
    operation_id="getMe",
    tags=TAGS,
    summary="The caller's profile",
    responses=conditional_read_responses(MeOut, "profile"),
)
def me(caller: User) -> Response[Any]:
    # A profile has no updated_at of its own (it shows its organization's name): its version hashes it.
    return with_content_etag(auth.me(caller))

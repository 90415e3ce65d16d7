"""Cross-origin reads of the guest routes (/embed/): a page of the token's allowed origins reads each answer
to it, errors included; before a token is known (a 401), any page may read the error, which tells it only
why, so it can mint a new token."""

from http import HTTPStatus

from aws_lambda_powertools.event_handler import Response

from loupe.api.context import RequestState, current_request

GUEST_PATH = "/embed/"
EXPOSED_HEADERS = "X-Request-Id, Retry-After, Content-Disposition"
PREFLIGHT_SECONDS = 600
# Guest routes take an embed token or a share link, and nothing else.
GUEST_SECURITY: list[dict[str, list[str]]] = [{"guestToken": []}]


def guest_cors_headers(path: str, method: str, state: RequestState, status: int) -> dict[str, str]:
    """The CORS headers of a guest route's answer (preflights answer their own)."""
    if not path.startswith(GUEST_PATH) or method == "OPTIONS":
        return {}
    headers = {"Vary": "Origin"}
    origin = state.headers.get("origin")
    token = state.guest_token
    readable = origin in token["allowed_origins"] if token is not None else status == HTTPStatus.UNAUTHORIZED
    if origin is not None and readable:
        headers |= {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": EXPOSED_HEADERS}
    return headers


def guest_preflight() -> Response[None]:
    """Preflights carry no token: any page may ask; the actual response allows only the token's origins."""
    origin = current_request().headers.get("origin")
    headers = {
        "Access-Control-Allow-Methods": "GET, POST",
        "Access-Control-Allow-Headers": "Authorization, Content-Type",
        "Access-Control-Max-Age": str(PREFLIGHT_SECONDS),
        "Vary": "Origin",
    }
    if origin is not None:
        headers["Access-Control-Allow-Origin"] = origin
    return Response(status_code=204, headers=headers)

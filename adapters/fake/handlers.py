"""aiohttp applications of the fake upstream: one per Cloud Code endpoint, one for auth+admin."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from adapters.fake.answers import JSON_TYPE, Answer, preset
from adapters.fake.presets import INVALID_GRANT_BODY, PRESETS, google_error
from adapters.fake.specs import from_spec
from adapters.fake.state import BOOTSTRAP_PATHS, CALLS, GENERATE_PATHS, FakeState, RequestRecord

FAKE = web.AppKey("fake", FakeState)
ENDPOINT = web.AppKey("endpoint", str)

SCOPE = (
    "https://www.googleapis.com/auth/cloud-platform "
    "https://www.googleapis.com/auth/userinfo.email "
    "https://www.googleapis.com/auth/userinfo.profile "
    "https://www.googleapis.com/auth/cclog "
    "https://www.googleapis.com/auth/experimentsandconfigs"
)
PREFIX = "/v1internal:"


def _json_response(status: int, body: Any, record: RequestRecord | None = None) -> web.Response:
    text = body if isinstance(body, str) else json.dumps(body)
    if record is not None:
        record.status = status
    return web.Response(status=status, text=text, content_type="application/json")


def _bearer(request: web.Request) -> str | None:
    value = request.headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _drop(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


async def _serve_simple(
    request: web.Request, answer: Answer, record: RequestRecord
) -> web.StreamResponse:
    """error, drop_before and hang (without events) answers, on any path."""
    await _sleep(answer.latency)
    if answer.kind == "error":
        record.status = answer.status
        return web.Response(
            status=answer.status, body=answer.body.encode(), headers=CIMultiDict(answer.headers)
        )
    if answer.kind == "hang":
        await request.app[FAKE].wait_closing()
    _drop(request)
    return web.Response()


async def _serve_sse(
    request: web.Request, answer: Answer, record: RequestRecord
) -> web.StreamResponse:
    if answer.kind in ("error", "drop_before") or (
        answer.kind == "hang" and answer.hang_after is None
    ):
        return await _serve_simple(request, answer, record)
    await _sleep(answer.latency)
    headers = CIMultiDict({"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    headers.update(answer.headers)
    response = web.StreamResponse(status=200, headers=headers)
    await response.prepare(request)
    record.status = 200
    if answer.kind == "endless":
        closing = asyncio.ensure_future(request.app[FAKE].wait_closing())
        try:
            while not closing.done():  # ends when the fake stops or the client leaves
                await _sleep(answer.delay)
                await response.write(answer.frame(0))
        finally:
            closing.cancel()
        _drop(request)
        return response
    for index in range(len(answer.events)):
        await _sleep(answer.delay)
        await response.write(answer.frame(index))
    if answer.kind == "hang":
        await request.app[FAKE].wait_closing()
    if answer.kind in ("drop_after", "hang"):
        _drop(request)
        return response
    await response.write_eof()
    return response


async def _serve_unary(
    request: web.Request, answer: Answer, record: RequestRecord
) -> web.StreamResponse:
    if answer.kind in ("error", "drop_before", "hang", "endless"):
        if answer.kind == "endless":  # no endless unary body: it hangs
            await request.app[FAKE].wait_closing()
            _drop(request)
            return web.Response()
        return await _serve_simple(request, answer, record)
    await _sleep(answer.latency + answer.delay * len(answer.events))
    body = answer.unary.encode()
    headers = CIMultiDict({"Content-Type": JSON_TYPE})
    headers.update(answer.headers)
    record.status = 200
    if answer.kind != "drop_after":
        return web.Response(status=200, body=body, headers=headers)
    response = web.StreamResponse(status=200, headers=headers)
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    _drop(request)
    return response


def _bootstrap_body(state: FakeState, call: str, account: str, body: Any) -> dict[str, Any]:
    acct = state.account(account)
    if call == "fetchAvailableModels":
        return {"models": state.models_for(account)}
    if call == "onboardUser":
        operation = "operations/fake-" + secrets.token_hex(6)
        if not acct.onboarded and acct.onboard_polls > 0:
            acct.onboard_polls -= 1
            return {"name": operation, "done": False}
        acct.onboarded = True
        tier = body.get("tierId") if isinstance(body, dict) else None
        if isinstance(tier, str) and tier:
            acct.tier = tier
        project = {"id": acct.project, "name": acct.project}
        return {"name": operation, "done": True, "response": {"cloudaicompanionProject": project}}
    answer: dict[str, Any] = {
        "allowedTiers": [
            {"id": "free-tier", "name": "Free", "isDefault": True},
            {"id": "standard-tier", "name": "Standard"},
        ]
    }
    if acct.onboarded:
        answer["cloudaicompanionProject"] = acct.project
        answer["currentTier"] = {"id": acct.tier}
        if acct.paid_tier is not None:
            answer["paidTier"] = {"id": acct.paid_tier}
    return answer


async def _cloudcode(request: web.Request) -> web.StreamResponse:
    state = request.app[FAKE]
    call = request.path.removeprefix(PREFIX) if request.path.startswith(PREFIX) else "unknown"
    body = _parse_json(await request.read())
    account = state.account_for_access(_bearer(request))
    model = body.get("model") if isinstance(body, dict) else None
    record = state.record(
        endpoint=request.app[ENDPOINT],
        method=request.method,
        path=request.path,
        query=request.query_string,
        call=call,
        account=None if account is None else account.name,
        model=model if isinstance(model, str) else None,
        body=body,
        headers=request.headers,
    )
    try:
        if call not in (*GENERATE_PATHS, *BOOTSTRAP_PATHS) or request.method != "POST":
            record.outcome = "not_found"
            return _json_response(404, PRESETS["not_found_404"].body, record)
        if account is None:
            record.outcome = "unauthenticated"
            return _json_response(401, PRESETS["auth_401"].body, record)
        if call in BOOTSTRAP_PATHS:
            answer, record.scripted = state.take(account.name, record.endpoint, call)
            record.outcome = "ok" if answer.kind == "normal" else answer.label
            if answer.kind != "normal":
                return await _serve_simple(request, answer, record)
            await _sleep(answer.latency)
            return _json_response(200, _bootstrap_body(state, call, account.name, body), record)
        project = body.get("project") if isinstance(body, dict) else None
        if state.check_project and project != account.project:
            record.outcome = "wrong_project"
            message = f"Permission denied on resource project {project}."
            return _json_response(403, google_error(403, message), record)
        answer, record.scripted = state.take(account.name, record.endpoint, "generate")
        if not record.scripted and isinstance(model, str) and state.exhausted(account.name, model):
            answer = preset("quota_429")  # what Google answers once the quota is spent
        record.outcome = answer.label
        if call == "streamGenerateContent":
            return await _serve_sse(request, answer, record)
        return await _serve_unary(request, answer, record)
    finally:
        record.finished = time.monotonic()


def _oauth_error(error: str, description: str) -> str:
    return json.dumps({"error": error, "error_description": description})


async def _token(request: web.Request) -> web.StreamResponse:
    state = request.app[FAKE]
    form = await request.post()
    fields = {k: str(v) for k, v in form.items()}
    grant_type = fields.get("grant_type", "")
    if grant_type == "authorization_code":
        account = state.code_account(fields.get("code"))
    else:
        account = state.account_for_refresh(fields.get("refresh_token"))
    logged = {k: ("<redacted>" if k == "client_secret" else v) for k, v in fields.items()}
    record = state.record(
        endpoint="auth",
        method=request.method,
        path=request.path,
        query=request.query_string,
        call="token",
        account=None if account is None else account.name,
        model=None,
        body=logged,
        headers=request.headers,
    )
    try:
        if (state.client_id is not None and fields.get("client_id") != state.client_id) or (
            state.client_secret is not None and fields.get("client_secret") != state.client_secret
        ):
            record.outcome = "invalid_client"
            body = _oauth_error("invalid_client", "The OAuth client was not found.")
            return _json_response(401, body, record)
        if grant_type not in ("refresh_token", "authorization_code"):
            record.outcome = "unsupported_grant_type"
            body = _oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
            return _json_response(400, body, record)
        answer, record.scripted = state.take(
            None if account is None else account.name, "auth", "token"
        )
        if answer.kind != "normal":
            record.outcome = answer.label
            return await _serve_simple(request, answer, record)
        await _sleep(answer.latency)
        if grant_type == "authorization_code":
            if not fields.get("code_verifier"):
                record.outcome = "invalid_request"
                body = _oauth_error("invalid_request", "Missing code verifier.")
                return _json_response(400, body, record)
            account = state.redeem_code(fields.get("code", ""), fields["code_verifier"])
        if account is None or account.revoked:
            record.outcome = "invalid_grant"
            return _json_response(400, INVALID_GRANT_BODY, record)
        record.outcome = "grant"
        answer_body: dict[str, Any] = {
            "access_token": state.access_token(account.name),
            "expires_in": 3599,
            "scope": SCOPE,
            "token_type": "Bearer",
        }
        if grant_type == "authorization_code":
            answer_body["refresh_token"] = account.refresh_token
        return _json_response(200, answer_body, record)
    finally:
        record.finished = time.monotonic()


async def _userinfo(request: web.Request) -> web.StreamResponse:
    state = request.app[FAKE]
    account = state.account_for_access(_bearer(request))
    record = state.record(
        endpoint="auth",
        method=request.method,
        path=request.path,
        query=request.query_string,
        call="userinfo",
        account=None if account is None else account.name,
        model=None,
        body=None,
        headers=request.headers,
    )
    record.finished = time.monotonic()
    if account is None:
        record.outcome = "unauthenticated"
        return _json_response(401, PRESETS["auth_401"].body, record)
    record.outcome = "ok"
    user_id = str(int(hashlib.sha256(account.email.encode()).hexdigest()[:15], 16))
    info = {"id": user_id, "email": account.email, "verified_email": True}
    return _json_response(200, info, record)


# admin ------------------------------------------------------------------------------------


async def _admin_json(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"invalid JSON: {exc}"})) from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "expected a JSON object"}))
    return data


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def _admin_script(request: web.Request) -> web.Response:
    """`{"account": name|null, "endpoint": name|null, "call": "generate", "answers": [spec]}`
    (see `answers.from_spec`); answers `{"queued": n, "pending": m}`."""
    state = request.app[FAKE]
    data = await _admin_json(request)
    call = data.get("call", "generate")
    if call not in CALLS:
        return _bad(f"unknown call {call!r}")
    try:
        answers = [from_spec(spec) for spec in data.get("answers", [])]
        state.script(data.get("account"), answers, endpoint=data.get("endpoint"), call=call)
    except (KeyError, ValueError, TypeError) as exc:
        return _bad(str(exc))
    pending = state.pending(data.get("account"), endpoint=data.get("endpoint"), call=call)
    return web.json_response({"queued": len(answers), "pending": pending})


async def _admin_default(request: web.Request) -> web.Response:
    """`{"answer": spec}` sets the default generate answer."""
    state = request.app[FAKE]
    data = await _admin_json(request)
    try:
        state.set_default(from_spec(data["answer"]))
    except (KeyError, ValueError, TypeError) as exc:
        return _bad(str(exc))
    return web.json_response({"default": state.default.label})


async def _admin_log(request: web.Request) -> web.Response:
    """GET: `{"requests": [record]}` filtered by the query's account, path, endpoint, call;
    DELETE: clear the log."""
    state = request.app[FAKE]
    if request.method == "DELETE":
        state.clear_log()
        return web.json_response({"cleared": True})
    q = request.query
    found = state.requests(
        q.get("account"), q.get("path"), endpoint=q.get("endpoint"), call=q.get("call")
    )
    return web.json_response({"requests": [r.to_json() for r in found]})


async def _admin_quota(request: web.Request) -> web.Response:
    """`{"model", "remaining_fraction", "reset_time"?, "account"?}` sets one model's quota (for
    every account, or one); an account x model at 0 answers generate with a quota 429."""
    state = request.app[FAKE]
    data = await _admin_json(request)
    try:
        fraction = data.get("remaining_fraction")
        if fraction is not None and not isinstance(fraction, int | float):
            raise ValueError("remaining_fraction must be a number or null")
        state.set_quota(
            str(data["model"]),
            fraction,
            reset_time=data.get("reset_time"),
            account=data.get("account"),
        )
    except (KeyError, ValueError, TypeError) as exc:
        return _bad(str(exc))
    return web.json_response({"models": state.models_for(data.get("account"))})


async def _admin_accounts(request: web.Request) -> web.Response:
    """GET: the accounts; POST `{"name", "refresh_token"?, "project"?, "tier"?, ...}` adds one."""
    state = request.app[FAKE]
    if request.method == "POST":
        data = await _admin_json(request)
        try:
            state.add_account(**data)
        except (TypeError, ValueError) as exc:
            return _bad(str(exc))
    accounts = [
        {
            "name": a.name,
            "email": a.email,
            "refresh_token": a.refresh_token,
            "project": a.project,
            "tier": a.tier,
            "onboarded": a.onboarded,
            "revoked": a.revoked,
        }
        for a in state.accounts
    ]
    return web.json_response({"accounts": accounts})


def build_endpoint_app(state: FakeState, endpoint: str) -> web.Application:
    """The Cloud Code API as served on one base URL named `endpoint`."""
    app = web.Application()
    app[FAKE] = state
    app[ENDPOINT] = endpoint
    app.router.add_route("*", "/{tail:.*}", _cloudcode)
    return app


def build_auth_app(state: FakeState) -> web.Application:
    """Google's token and userinfo endpoints, plus the admin routes under /_fake/."""
    app = web.Application()
    app[FAKE] = state
    app[ENDPOINT] = "auth"
    app.router.add_post("/token", _token)
    app.router.add_get("/oauth2/v1/userinfo", _userinfo)
    app.router.add_post("/_fake/script", _admin_script)
    app.router.add_post("/_fake/default", _admin_default)
    app.router.add_get("/_fake/log", _admin_log)
    app.router.add_delete("/_fake/log", _admin_log)
    app.router.add_post("/_fake/quota", _admin_quota)
    app.router.add_get("/_fake/accounts", _admin_accounts)
    app.router.add_post("/_fake/accounts", _admin_accounts)
    return app

"""`GET /metrics` through the real proxy on the fake upstream: the counters move as requests
succeed and fail, the pool's gauges read the pool, and no label names a request or an account."""

from __future__ import annotations

import json

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from adapters.fake_upstream import preset, stream
from adapters.serve import Served
from adapters.server import PROXY
from tests.e2e import MODEL, post, proxy, run

A1, A2 = "account-1", "account-2"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def get(served: Served, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(served.url + path, headers=headers or {}) as response,
    ):
        return response.status, await response.text()


async def scrape(served: Served, headers: dict[str, str] | None = None) -> Samples:
    status, text = await get(served, "/metrics", headers)
    assert status == 200, text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def test_counters_move_as_a_request_switches_accounts_and_as_one_fails() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            assert served.fake is not None
            before = await scrape(served)
            assert value(before, "interlock_accounts", state="usable") == 2

            served.fake.script(A1, [preset("quota_429")])
            status, headers, _ = await post(served)
            assert status == 200
            ok_id = headers["request-id"]
            after = await scrape(served)
            assert total(after, "interlock_requests_total", status="200", outcome="ok") == 1
            assert (
                value(
                    after,
                    "interlock_upstream_attempts_total",
                    endpoint="daily",
                    result="quota_exhausted",
                )
                == 1
            )
            assert (
                value(after, "interlock_upstream_attempts_total", endpoint="daily", result="ok")
                == 1
            )
            switched = {"source": "Fetching", "trigger": "rate_limited", "dest": "Switching"}
            assert value(after, "interlock_transitions_total", **switched) == 1
            assert total(after, "interlock_request_duration_seconds_count") == 1
            assert total(after, "interlock_time_to_first_byte_seconds_count") == 1
            # account 1 rests for the model; account 2 still serves
            assert value(after, "interlock_accounts", state="resting") == 1
            assert value(after, "interlock_accounts", state="usable") == 1
            assert (
                value(after, "interlock_endpoint_breaker_state", endpoint="daily", state="closed")
                == 1
            )
            assert total(after, "interlock_endpoint_retry_budget_tokens") > 0

            served.fake.script(A2, [preset("quota_429")] * 10)
            status, headers, body = await post(served)
            assert (status, body["error"]["type"]) == (429, "rate_limit_error")
            failed_id = headers["request-id"]
            last = await scrape(served)
            assert total(last, "interlock_requests_total", outcome="ok") == 1  # unchanged
            assert (
                total(last, "interlock_requests_total", status="429", outcome="rate_limit_error")
                == 1
            )
            assert total(last, "interlock_upstream_attempts_total", result="quota_exhausted") >= 2
            assert total(last, "interlock_request_duration_seconds_count") == 2

            _, accounts = await get(served, "/accounts")
            secrets = {ok_id, failed_id, A1, A2} | {
                row["email"] for row in json.loads(accounts)["accounts"] if row["email"]
            }
            labels = {label for (_, ls) in last for (_, label) in ls}
            assert not labels & secrets
            assert not any("@" in label or "req-" in label for label in labels)

    run(scenario())


def test_with_an_api_key_set_metrics_needs_it() -> None:
    async def scenario() -> None:
        async with proxy(server={"api_key": "sk-right"}) as served:
            status, _ = await get(served, "/metrics")
            assert status == 401
            samples = await scrape(served, {"x-api-key": "sk-right"})
            assert value(samples, "interlock_accounts", state="usable") == 2

    run(scenario())


def test_two_apps_in_one_process_keep_separate_counters() -> None:
    async def scenario() -> None:
        async with proxy() as first, proxy() as second:
            status, _, _ = await post(first)
            assert status == 200
            assert total(await scrape(first), "interlock_requests_total") == 1
            assert total(await scrape(second), "interlock_requests_total") == 0

    run(scenario())


def test_quota_gauges_count_accounts_by_reported_level_per_model() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            assert served.fake is not None
            served.fake.set_quota(MODEL, 0.0, reset_time="2099-01-01T00:00:00Z", account=A1)
            served.fake.set_quota(MODEL, 0.05, account=A2)  # under the 10 % low threshold
            quota = served.runner.app[PROXY].quota
            assert quota is not None
            await quota.read_all()

            samples = await scrape(served)

            assert value(samples, "interlock_quota_accounts", model=MODEL, level="exhausted") == 1
            assert value(samples, "interlock_quota_accounts", model=MODEL, level="low") == 1
            assert value(samples, "interlock_quota_accounts", model=MODEL, level="ok") == 0
            assert value(samples, "interlock_quota_remaining", model=MODEL) == 0.05
            assert value(samples, "interlock_accounts", state="resting") == 1

    run(scenario())


def test_time_in_each_state_adds_up_what_requests_spent_there() -> None:
    async def scenario() -> None:
        async with proxy() as served:
            assert served.fake is not None
            served.fake.script(A1, [stream("slow", latency=0.3)])
            served.fake.script(A2, [stream("slow", latency=0.3)])

            status, _, _ = await post(served)
            assert status == 200
            samples = await scrape(served)

            fetching = value(samples, "interlock_state_seconds_total", state="Fetching")
            assert 0.3 <= fetching < 5
            assert value(samples, "interlock_state_seconds_total", state="Done") == 0

    run(scenario())

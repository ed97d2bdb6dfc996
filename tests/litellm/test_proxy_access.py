"""Who may force a tier, through a real LiteLLM proxy with real keys (the proxy's custom
auth, ``proxy_auth.py``): typed principals against the identity the proxy authenticated,
session pins scoped to the caller, and an unknown tier answered 400 with the ladder's names.
"""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any, Iterator

import openai
import pytest

from ._proc import litellm_proxy
from .conftest import CHEAP, FRONTIER, INVOICE_SCHEMA, MID, proxy_config, router_yaml

pytestmark = pytest.mark.proxy

JSON_GATE = [{"kind": "json_schema", "schema": INVOICE_SCHEMA}]
KEYS = ("sk-ops", "sk-app", "sk-alias-lookalike", "sk-user-lookalike")


@pytest.fixture(scope="module")
def image_host() -> Iterator[dict[str, Any]]:
    """An image server on loopback that answers every GET 404 and counts them: LiteLLM
    fetches an image URL itself (here allowed, as ``localhost``, by its SSRF policy)."""
    hits: list[str] = []

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the handler's name is http.server's
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://localhost:{server.server_address[1]}", "hits": hits}
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, emulator, image_host) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("proxy-access")
    team = router_yaml(work / "team.yaml", gates=JSON_GATE, telemetry={"sinks": []},
                       access={"allow_tier_request": ["team:ops-team"], "on_forbidden": "reject"})
    alias = router_yaml(work / "alias.yaml", gates=JSON_GATE, telemetry={"sinks": []},
                        access={"allow_tier_request": ["key_alias:ops-team"], "on_forbidden": "reject"})
    anyone = router_yaml(work / "anyone.yaml", gates=JSON_GATE, telemetry={"sinks": []},
                         access={"allow_tier_request": ["*"]})
    config = proxy_config(emulator.url, {"tiered": team, "tiered-alias": alias, "tiered-open": anyone},
                          callbacks=("tests.litellm.output_guard.mask",),
                          master_key="sk-ops", custom_auth="tests.litellm.proxy_auth.user_api_key_auth")
    config["litellm_settings"]["user_url_allowed_hosts"] = ["localhost"]  # the image host; 127.0.0.1 stays blocked
    with litellm_proxy(config, work) as running:
        yield running


@pytest.fixture(scope="module")
def clients(proxy) -> dict[str, openai.OpenAI]:
    return {key: openai.OpenAI(base_url=proxy["url"], api_key=key, max_retries=0, timeout=60) for key in KEYS}


def ask(client: openai.OpenAI, text: str, model: str = "tiered", **kwargs: Any):
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **kwargs)
    return raw.parse(), raw.headers


def frontier(**extra: str) -> dict[str, Any]:
    return {"extra_headers": {"x-tiered-router-tier": "frontier", **extra}}


def test_the_team_itself_may_force_the_frontier_tier(clients, emulator):
    emulator.clear_requests()
    response, headers = ask(clients["sk-ops"], "extract the invoice total", **frontier())
    assert headers["x-tiered-router-tier"] == "frontier"
    assert response.model_extra["tiered_router"]["start_reason"] == "requested by the caller"
    assert [r.model_id for r in emulator.requests] == [FRONTIER]


@pytest.mark.parametrize("key", ["sk-alias-lookalike", "sk-user-lookalike", "sk-app"])
def test_a_look_alike_of_the_team_is_refused(clients, emulator, key):
    """A key *aliased* ops-team, or a user *called* ops-team, is not the team ops-team."""
    emulator.clear_requests()
    with pytest.raises(openai.PermissionDeniedError) as info:
        ask(clients[key], "extract the invoice total", **frontier())
    body = json.dumps(info.value.body)
    assert "tier_not_allowed" in body and "team:app-team" in body
    assert emulator.requests == []


def test_identity_fields_sent_by_the_client_are_not_believed(clients, emulator):
    emulator.clear_requests()
    forged = {"user_api_key_team_id": "ops-team", "user_api_key_alias": "ops-key", "user_api_key_user_id": "ops-user",
              "tier": "frontier"}
    with pytest.raises(openai.PermissionDeniedError):
        ask(clients["sk-app"], "extract the invoice total", extra_body={"metadata": forged})
    assert emulator.requests == []


def test_a_key_alias_principal_matches_the_alias_only(clients):
    _, headers = ask(clients["sk-alias-lookalike"], "extract the invoice total", model="tiered-alias", **frontier())
    assert headers["x-tiered-router-tier"] == "frontier"
    with pytest.raises(openai.PermissionDeniedError):  # the team ops-team has no key aliased ops-team
        ask(clients["sk-ops"], "extract the invoice total", model="tiered-alias", **frontier())
    with pytest.raises(openai.PermissionDeniedError):  # nor is a user called ops-team that key alias
        ask(clients["sk-user-lookalike"], "extract the invoice total", model="tiered-alias", **frontier())


def test_a_pin_made_by_one_caller_never_starts_another_callers_request(clients, emulator):
    session = {"x-session-id": "shared-session"}
    _, first = ask(clients["sk-ops"], "extract the invoice total", **frontier(**session))
    assert first["x-tiered-router-tier"] == "frontier"
    _, again = ask(clients["sk-ops"], "and the invoice date?", extra_headers=session)
    assert again["x-tiered-router-start-tier"] == "frontier"  # the caller's own pin holds
    emulator.clear_requests()
    _, other = ask(clients["sk-app"], "and the invoice date?", extra_headers=session)
    assert other["x-tiered-router-start-tier"] == "cheap"  # same session id, another key: no pin
    assert [r.model_id for r in emulator.requests] == [CHEAP, MID]


def test_an_escalation_pin_stays_with_its_caller(clients, emulator):
    session = {"x-session-id": "escalated-session"}
    _, first = ask(clients["sk-app"], "extract the invoice total", extra_headers=session)
    assert first["x-tiered-router-tier"] == "mid"
    _, mine = ask(clients["sk-app"], "the invoice again", extra_headers=session)
    assert mine["x-tiered-router-start-tier"] == "mid"
    _, theirs = ask(clients["sk-alias-lookalike"], "the invoice again", extra_headers=session)
    assert theirs["x-tiered-router-start-tier"] == "cheap"


@pytest.mark.parametrize("asked", ["ultra", "FRONTIER"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_an_unknown_tier_is_a_400_naming_the_ladder(clients, emulator, asked, stream):
    emulator.clear_requests()
    with pytest.raises(openai.BadRequestError) as info:
        response = clients["sk-app"].chat.completions.create(
            model="tiered-open", messages=[{"role": "user", "content": "extract the invoice total"}],
            extra_headers={"x-tiered-router-tier": asked}, stream=stream)
        if stream:
            list(response)
    assert info.value.status_code == 400
    body = json.dumps(info.value.body)
    assert "unknown_tier" in body and "cheap, mid, frontier" in body
    if asked == "FRONTIER":
        assert "did you mean" in body
    assert emulator.requests == []


def test_a_clients_schema_the_router_cannot_run_is_a_400(clients, emulator):
    emulator.clear_requests()
    schema = {"type": "object", "properties": {"total": {"type": "string", "pattern": "(a)\\1"}}}
    with pytest.raises(openai.BadRequestError) as info:
        ask(clients["sk-app"], "extract the invoice total", model="tiered-open",
            response_format={"type": "json_schema", "json_schema": {"name": "invoice", "schema": schema}})
    assert "bad_response_format" in json.dumps(info.value.body) and "RE2" in json.dumps(info.value.body)
    assert emulator.requests == []



def test_a_keys_rate_limit_on_the_tiered_model_counts_its_calls_not_the_first_tiers(proxy):
    """Rate limits judge the model the client called: two calls a minute of ``tiered-open``
    for one key, whichever path serves them; a limit on ``cheap`` leaves them alone."""
    def statuses(key: str, n: int, **kwargs: Any) -> list[int]:
        client = openai.OpenAI(base_url=proxy["url"], api_key=key, max_retries=0, timeout=60)
        codes = []
        for i in range(n):
            try:
                ask(client, f"hello {i}", model="tiered-open", **kwargs)
                codes.append(200)
            except openai.APIStatusError as exc:
                codes.append(exc.status_code)
        return codes

    assert statuses("sk-rpm-tiered", 3) + statuses("sk-rpm-tiered", 1, stream=True) == [200, 200, 429, 429]
    assert statuses("sk-rpm-cheap", 3) == [200, 200, 200]


def test_an_image_url_litellm_cannot_fetch_is_the_clients_error_not_the_tiers(clients, emulator):
    """LiteLLM refuses to fetch a loopback URL (its SSRF policy) before any model call: a
    400 naming it, every time; the tiers' circuits stay closed for everyone else."""
    emulator.clear_requests()
    image = [{"type": "text", "text": "what is in this picture?"},
             {"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/cat.png"}}]
    for _ in range(6):  # more than the circuit's 5 failures in a row
        with pytest.raises(openai.BadRequestError) as info:
            clients["sk-app"].chat.completions.create(model="tiered-open", messages=[{"role": "user", "content": image}])
        body = json.dumps(info.value.body)
        assert "content_not_fetched" in body and "blocked address (127.0.0.1)" in body and "File" not in body
    assert emulator.requests == []
    response, headers = ask(clients["sk-app"], "extract the invoice total", model="tiered-open")
    assert headers["x-tiered-router-attempts"].split(",")[0] == "cheap:gate_failed"  # called, not skipped


@pytest.mark.parametrize("model", ["tiered-open", "tiered"])
def test_an_image_url_that_answers_404_is_the_clients_400_after_one_fetch(clients, emulator, image_host, model):
    """The image server's 404 to LiteLLM's GET is the client's error: one fetch, a 400
    naming the URL, never retried nor escalated (it was each tier twice: six fetches and
    a 500 or a 502 ``ladder_exhausted``), no tier called, and the circuits stay closed."""
    emulator.clear_requests()
    image_host["hits"].clear()
    url = f"{image_host['url']}/missing-{model}.png"
    image = [{"type": "text", "text": "what is in this picture?"}, {"type": "image_url", "image_url": {"url": url}}]
    for _ in range(6):  # more than the circuit's 5 failures in a row
        with pytest.raises(openai.BadRequestError) as info:
            clients["sk-ops"].chat.completions.create(model=model, messages=[{"role": "user", "content": image}])
        body = json.dumps(info.value.body)
        assert "content_not_fetched" in body and "404 Not Found" in body, body
    assert image_host["hits"] == [f"/missing-{model}.png"] * 6 and emulator.requests == []
    _, headers = ask(clients["sk-ops"], "extract the invoice total", model=model)
    assert headers["x-tiered-router-attempts"].split(",")[0] == "cheap:gate_failed"  # called, not skipped


def test_an_output_guardrail_reads_the_answer_the_client_gets(clients, emulator):
    """One-pass swaps the first tier's gate-failed answer for the served one: another
    callback's post-call step (an output guardrail) must see the served one, whole or
    streamed, not mask cheap's and let mid's through."""
    text = "extract the invoice total, mask my answer"
    response, headers = ask(clients["sk-ops"], text)
    assert headers["x-tiered-router-attempts"] == "cheap:gate_failed,mid:served"
    assert response.choices[0].message.content == '{"total": ##}'
    stream = clients["sk-ops"].chat.completions.create(
        model="tiered", stream=True, messages=[{"role": "user", "content": text}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == '{"total": ##}'


def test_a_call_id_a_client_reuses_never_mixes_two_routes(clients, emulator):
    """LiteLLM takes a request's call id from the client's ``x-litellm-call-id``: two
    requests at once with the same one each get their own route and answer."""
    import concurrent.futures

    emulator.inject("slow", model_id=CHEAP, times=2, seconds=0.5)  # both in flight at once
    same = {"extra_headers": {"x-litellm-call-id": "same-id-123"}}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        plain = pool.submit(ask, clients["sk-ops"], "hello there", **same)
        escalated = pool.submit(ask, clients["sk-app"], "extract the invoice total", **same)
        (hello, hello_headers), (invoice, invoice_headers) = plain.result(), escalated.result()
    assert json.loads(invoice.choices[0].message.content) == {"total": 12}
    assert invoice_headers["x-tiered-router-attempts"] == "cheap:gate_failed,mid:served"
    # "hello there" is no invoice: every tier fails the JSON gate, and it is served flagged
    assert hello_headers["x-tiered-router-attempts"] == "cheap:gate_failed,mid:gate_failed,frontier:gate_failed"
    assert hello_headers["x-tiered-router-request-id"] != invoice_headers["x-tiered-router-request-id"]
    assert hello.choices[0].message.content != invoice.choices[0].message.content

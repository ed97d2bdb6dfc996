"""Recorded Bedrock traffic, replayed with no emulator and no network.

Replay is the default (``record_mode="none"``): a request not in the cassette fails,
and every test checks ``cassette.all_played``. ``TIERED_ROUTER_RECORD=1`` re-records
from a local emulator; with ``TIERED_ROUTER_REAL_BEDROCK=1`` as well it records from
real Bedrock with the AWS profile named by ``TIERED_ROUTER_AWS_PROFILE`` into
``cassettes/langchain/real_bedrock/`` (replay those with ``TIERED_ROUTER_REAL_BEDROCK=1``;
exact-text assertions are then skipped, since real models answer in their own words). Requests match on method, path, query
and body, never host or port (the emulator's port changes each run). Credentials are
filtered from every request before it is written, and ``test_no_cassette_leaks``
reads every cassette back to prove it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlparse
from typing import Any, Iterator

import pytest
import vcr
import yaml

from langchain_tiered_router.core import LadderExhaustedError
from langchain_tiered_router.emulator import BedrockEmulator
from langchain_tiered_router.langchain import TieredChatBedrock

from .cassette_guard import cassette_files, leaks_in
from .scripts import CHEAP, FRONTIER, INVOICE, INVOICE_JSON, INVOICE_SCHEMA, MID, SCRIPT, config

RECORD = os.environ.get("TIERED_ROUTER_RECORD") == "1"
REAL = os.environ.get("TIERED_ROUTER_REAL_BEDROCK") == "1"
# Real Bedrock needs real credentials: the suite's conftest replaces AWS_* variables with
# fakes, so a named profile is read instead (an explicit profile ignores those variables).
REAL_PROFILE = os.environ.get("TIERED_ROUTER_AWS_PROFILE")
# Newer Claude models are served on demand only through an inference profile.
REAL_FRONTIER = f"us.{FRONTIER}"
pytestmark = [pytest.mark.enable_socket] if REAL and RECORD else []

REPO = Path(__file__).resolve().parents[2]
# Real recordings live apart, so the emulator's (exact-text) cassettes stay the default.
CASSETTES = REPO / "cassettes" / "langchain" / ("real_bedrock" if REAL else "")
NOWHERE = "http://127.0.0.1:9"  # replay: nothing listens here; vcrpy answers

SECRET_HEADERS = ["authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256",
                  "amz-sdk-invocation-id", "amz-sdk-request", "x-amzn-bedrock-api-key", "cookie",
                  "x-amz-sso_bearer_token", "x-api-key", "proxy-authorization"]


# an ARN's account id (a tier's inference profile in the path, URL-encoded): 000000000000 in
# every cassette, and in every request matched against one (vcrpy scrubs both alike)
_ACCOUNT = re.compile(r"(arn(?:%3A|:)aws[a-z-]*(?:%3A|:)[a-z0-9-]+(?:%3A|:)[a-z0-9-]*(?:%3A|:))\d{12}", re.IGNORECASE)
_ACCOUNT_BYTES = re.compile(_ACCOUNT.pattern.encode(), re.IGNORECASE)


def _scrub_request(request: Any) -> Any:
    """Drop credential-bearing headers whatever their case, str or bytes, and the
    account id of any ARN in the URL. Only Bedrock runtime calls (``/model/...``) are
    recorded: a profile's credential fetch (STS for an assumed role, SSO's portal) is
    dropped, whose reply holds working temporary credentials."""
    if not urlparse(request.uri).path.startswith("/model/"):
        return None  # vcrpy records nothing for it
    for name in list(request.headers):
        key = name.decode() if isinstance(name, bytes) else str(name)
        if key.lower() in SECRET_HEADERS:
            del request.headers[name]
    request.uri = _ACCOUNT.sub(r"\g<1>000000000000", request.uri)
    return request


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Drop cookies; a JSON body's ARN account ids (a prompt router's trace names the
    inference profile it used) become 000000000000, the same length, so its
    Content-Length holds. An event-stream body is left whole (its frames carry CRCs):
    ``test_no_cassette_leaks`` refuses one that names an account."""
    headers = response.get("headers") or {}
    for name in list(headers):
        if str(name).lower() in ("set-cookie",):
            del headers[name]
    body = response.get("body") or {}
    kind = " ".join(str(v) for k, vs in headers.items() if str(k).lower() == "content-type" for v in vs)
    if "json" in kind and isinstance(body.get("string"), bytes):
        body["string"] = _ACCOUNT_BYTES.sub(rb"\g<1>000000000000", body["string"])
    return response


def recorder(library: Path = CASSETTES, mode: str | None = None) -> vcr.VCR:
    return vcr.VCR(cassette_library_dir=str(library), record_mode=mode or ("all" if RECORD else "none"),
                   match_on=["method", "path", "query", "body"], filter_headers=SECRET_HEADERS,
                   before_record_request=_scrub_request, before_record_response=_scrub_response,
                   decode_compressed_response=True)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str | None]:
    """Where the recorded calls go: an emulator (recording), real Bedrock, or nowhere."""
    if RECORD and not REAL:
        with BedrockEmulator(SCRIPT) as emu:
            yield emu.url
    else:
        yield None if REAL else NOWHERE


def model(endpoint: str | None, **overrides: Any) -> TieredChatBedrock:
    cfg = config(endpoint or "", **overrides)
    if endpoint is None:  # real Bedrock
        cfg.pop("endpoint_url")
        cfg["tiers"][-1]["model_id"] = REAL_FRONTIER
    client = None
    if REAL and RECORD:
        import boto3

        if not REAL_PROFILE:
            pytest.fail("recording from real Bedrock needs TIERED_ROUTER_AWS_PROFILE (an AWS profile name)")
        session = boto3.Session(profile_name=REAL_PROFILE, region_name=cfg.get("region_name", "us-east-1"))
        # an assumed role's or SSO's credentials are fetched now, not inside the cassette
        credentials = session.get_credentials()
        if credentials is None:
            pytest.fail(f"the AWS profile {REAL_PROFILE!r} gives no credentials")
        credentials.get_frozen_credentials()
        client = session.client("bedrock-runtime")
    return TieredChatBedrock(config=cfg, telemetry=False, client=client)


def test_replayed_json_escalation(endpoint) -> None:
    llm = model(endpoint, gates=[{"kind": "json_schema", "schema": INVOICE_SCHEMA}])
    with recorder().use_cassette("json_escalation.yaml") as cassette:
        message = llm.invoke(INVOICE)
    assert RECORD or (cassette.all_played and cassette.play_count == len(cassette) == 3)
    if not REAL:
        assert message.content == INVOICE_JSON
        assert [a["model_id"] for a in message.response_metadata["routing"]["attempts"]] == [CHEAP, MID, FRONTIER]
        assert message.response_metadata["routing"]["cost_usd"] == "0.000221175"


def test_replayed_classifier_stream(endpoint) -> None:
    llm = model(endpoint, policy={"kind": "classifier", "classifier": {
        "kind": "rules", "rules": [{"tier": "frontier", "keywords": ["prove"]}]}})
    with recorder().use_cassette("classifier_stream.yaml") as cassette:
        chunks = list(llm.stream("Please prove it"))
    assert RECORD or (cassette.all_played and len(cassette) == 1)
    texts = [c.text for c in chunks if c.text]
    if not REAL:
        assert "".join(texts) == SCRIPT["models"][FRONTIER]["default"]
        assert len(texts) > 3
    assert [c.response_metadata["routing"]["tier"] for c in chunks if "routing" in c.response_metadata] == ["frontier"]


def test_replay_fails_on_an_unrecorded_request() -> None:
    if RECORD:
        pytest.skip("recording")
    llm = model(NOWHERE)
    with recorder().use_cassette("json_escalation.yaml"):
        with pytest.raises(LadderExhaustedError) as info:
            llm.invoke("a question nobody recorded")
    (error,) = info.value.exceptions  # not a transport error: no retry, no escalation
    assert "Can't overwrite existing cassette" in str(error)


def test_no_cassette_leaks() -> None:
    """Every cassette in the repo (all folders), every header decoded: no credentials."""
    files = cassette_files(REPO / "cassettes")
    assert {p.name for p in files} >= {"json_escalation.yaml", "classifier_stream.yaml"}
    leaks = [leak for path in files for leak in leaks_in(path)]
    assert leaks == []


def test_leak_guard_sees_base64_headers(tmp_path) -> None:
    """The guard itself: a cassette with a bytes Authorization header is caught."""
    import yaml

    leaked = {"interactions": [{"request": {"headers": {
        "Authorization": [b"AWS4-HMAC-SHA256 Credential=AKIAFAKEFAKEFAKEFAKE/20260101/us-east-1/bedrock/aws4_request"],
        "X-Amz-Security-Token": [b"fake-session-token-for-tests"]}, "body": None}}]}
    path = tmp_path / "leaky.yaml"
    path.write_text(yaml.dump(leaked))
    assert "!!binary" in path.read_text() and "AKIA" not in path.read_text()  # a grep would miss it
    assert len(leaks_in(path)) >= 3
    # a Bedrock API key, in a query string or a header the filter list did not name
    api_key = {"interactions": [{"request": {"uri": "https://bedrock-runtime.us-east-1.amazonaws.com/x?key=ABSK"
                                             + "QmVkcm9ja0FQSUtleS1leGFtcGxlLWtleQ==", "body": None,
                                             "headers": {"X-Api-Key": [b"bedrock-api-key-YmVkcm9jay5hbWF6b25hd3M="]}}}]}
    path.write_text(yaml.dump(api_key))
    assert len(leaks_in(path)) >= 3


def test_an_arns_account_id_is_scrubbed_from_a_recording_and_it_still_replays(tmp_path) -> None:
    """A tier named by an inference-profile ARN puts the account id in every call's URL:
    recorded as 000000000000, and a replay of the same ARN matches it."""
    arn = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{CHEAP}"

    def routed(url: str) -> TieredChatBedrock:
        cfg = config(url)
        cfg["tiers"][0].update(model_id=arn, provider="amazon")
        return TieredChatBedrock(config=cfg, telemetry=False)

    with BedrockEmulator(SCRIPT) as emu, recorder(tmp_path, "all").use_cassette("arn.yaml"):
        recorded = routed(emu.url).invoke("hello")
    text = (tmp_path / "arn.yaml").read_text()
    assert "123456789012" not in text and "000000000000" in text
    assert leaks_in(tmp_path / "arn.yaml") == []
    with recorder(tmp_path, "none").use_cassette("arn.yaml") as cassette:
        replayed = routed(NOWHERE).invoke("hello")
    assert cassette.all_played and replayed.content == recorded.content
    (tmp_path / "leaky.yaml").write_text(text.replace("000000000000", "123456789012"))
    assert any("arn" in leak for leak in leaks_in(tmp_path / "leaky.yaml"))  # the guard sees one


def test_an_assumed_roles_credential_fetch_is_never_recorded(tmp_path, monkeypatch) -> None:
    """Recording with an assume-role profile: botocore fetches the role's credentials at
    the first signed call, inside the cassette, and vcrpy wrote that STS exchange, whose
    reply holds working temporary credentials (and the account id). Only Bedrock runtime
    calls are recorded now."""
    import boto3
    from moto.server import ThreadedMotoServer

    sts = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    sts.start()
    host, port = sts.get_host_and_port()
    (tmp_path / "credentials").write_text("[base]\naws_access_key_id = AKIAZ7QWEXAMPLEKEY12\n"
                                          "aws_secret_access_key = a-source-secret-that-must-stay-home\n")
    (tmp_path / "config").write_text("[profile recorder]\nrole_arn = arn:aws:iam::123456789012:role/recorder\n"
                                     "source_profile = base\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f"http://{host}:{port}")
    try:
        with BedrockEmulator(SCRIPT) as emu:
            client = boto3.Session(profile_name="recorder").client("bedrock-runtime", endpoint_url=emu.url)
            llm = TieredChatBedrock(config=config(emu.url), telemetry=False, client=client)
            with recorder(tmp_path, mode="all").use_cassette("assumed.yaml"):
                llm.invoke("hello")
            role_key = client._request_signer._credentials.get_frozen_credentials().access_key
    finally:
        sts.stop()
    cassette = tmp_path / "assumed.yaml"
    assert role_key.startswith("ASIA") and role_key not in cassette.read_text()
    recorded = yaml.safe_load(cassette.read_text())["interactions"]
    assert [urlparse(i["request"]["uri"]).path for i in recorded] == [f"/model/{CHEAP.replace(':', '%3A')}/converse"]
    assert leaks_in(cassette) == []


def test_a_json_replys_account_id_is_scrubbed_and_the_guard_reads_base64_inside_text(tmp_path) -> None:
    """A prompt router's trace names the inference profile it used, account id included:
    scrubbed from a JSON reply (same length: Content-Length holds). And the guard finds
    a key in base64 inside other text (a stream chunk's ``bytes``), which it missed."""
    import base64
    import json

    arn = b"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0"
    body = b'{"trace": {"promptRouter": {"invokedModelId": "' + arn + b'"}}}'
    response = {"headers": {"Content-Type": ["application/json"]}, "body": {"string": body}}
    scrubbed = _scrub_response(response)["body"]["string"]
    assert b"123456789012" not in scrubbed and len(scrubbed) == len(body)
    chunk = base64.b64encode(json.dumps({"completion": "key AKIAZ7QWEXAMPLEKEY12"}).encode()).decode()
    leaky = tmp_path / "chunk.yaml"
    leaky.write_text(yaml.dump({"interactions": [{"response": {"body": {"string": json.dumps({"bytes": chunk})}}}]}))
    assert leaks_in(leaky)

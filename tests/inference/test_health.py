"""The endpoint check explains each failure in plain words: unreachable, API key, model name, unhealthy, OK."""

from __future__ import annotations

from pydantic import SecretStr

from inference import check_endpoint
from inference.health import server_root
from tests.fakes.openai_server import FakeOpenAIServer
from tests.inference.conftest import ANALYST, API_KEY, RISK, closed_port, model_settings


async def test_ok_reports_the_models_and_latency(server: FakeOpenAIServer) -> None:
    report = await check_endpoint(model_settings(server.base_url))
    assert report.ok and report.status == "ok"
    assert report.served_models == [ANALYST, RISK]
    assert report.latency_ms is not None and 0 < report.latency_ms < 2000
    assert f"127.0.0.1:{server.port}" in report.message and ANALYST in report.message
    # /health at the server root, /models under the base URL, with the key.
    paths = [(r.path, r.headers.get("authorization")) for r in server.requests]
    assert paths == [("/health", None), ("/v1/models", f"Bearer {API_KEY}")]


async def test_unreachable_names_host_and_port() -> None:
    port = closed_port()
    report = await check_endpoint(model_settings(f"http://127.0.0.1:{port}/v1"))
    assert not report.ok and report.status == "unreachable"
    assert f"127.0.0.1:{port}" in report.message
    assert "BASTION_MODEL__BASE_URL" in report.message and "host and port" in report.message


async def test_unresolvable_host_says_so() -> None:
    report = await check_endpoint(model_settings("http://no-such-gpu-host.invalid:8000/v1"), timeout_s=3.0)
    assert report.status == "unreachable"
    assert "'no-such-gpu-host.invalid' could not be resolved" in report.message


async def test_wrong_api_key_points_at_the_setting(server: FakeOpenAIServer) -> None:
    report = await check_endpoint(model_settings(server.base_url, api_key=SecretStr("sk-wrong-key-000000")))
    assert report.status == "unauthorized" and not report.ok
    assert "rejected the API key (HTTP 401)" in report.message
    assert "BASTION_MODEL__API_KEY" in report.message and "--api-key" in report.message
    assert "sk-wrong-key" not in report.model_dump_json()


async def test_missing_api_key_says_one_is_required(server: FakeOpenAIServer) -> None:
    report = await check_endpoint(model_settings(server.base_url, api_key=SecretStr("")))
    assert report.status == "unauthorized"
    assert "requires an API key, and none is set" in report.message


async def test_wrong_model_name_lists_what_is_served_and_which_setting_to_change(server: FakeOpenAIServer) -> None:
    report = await check_endpoint(model_settings(server.base_url, risk_model="qwen2.5-32b"))
    assert report.status == "model_missing" and not report.ok
    assert "BASTION_MODEL__RISK_MODEL='qwen2.5-32b'" in report.message
    assert f"It serves: {ANALYST}, {RISK}" in report.message
    assert "BASTION_MODEL__ANALYST_MODEL" not in report.message  # only the wrong one is named
    assert report.served_models == [ANALYST, RISK]


async def test_both_model_names_wrong_names_both_settings(server: FakeOpenAIServer) -> None:
    report = await check_endpoint(model_settings(server.base_url, analyst_model="a", risk_model="b"))
    assert "BASTION_MODEL__ANALYST_MODEL and BASTION_MODEL__RISK_MODEL" in report.message


async def test_base_url_without_v1_is_explained(server: FakeOpenAIServer) -> None:
    report = await check_endpoint(model_settings(server.url))
    assert report.status == "error"
    assert "ending in /v1" in report.message


async def test_unhealthy_engine_is_an_error(server: FakeOpenAIServer) -> None:
    server.health_status = 500
    report = await check_endpoint(model_settings(server.base_url))
    assert report.status == "error" and not report.ok
    assert "unhealthy" in report.message and "HTTP 500" in report.message


async def test_server_without_health_endpoint_is_ok_with_a_note(server: FakeOpenAIServer) -> None:
    server.health_status = 404  # llama.cpp-like servers
    report = await check_endpoint(model_settings(server.base_url))
    assert report.ok
    assert any("no /health endpoint" in note for note in report.notes)


async def test_not_configured_is_explained_without_a_request() -> None:
    report = await check_endpoint(model_settings(None))
    assert report.status == "not_configured" and not report.ok
    assert "offline model" in report.message


def test_server_root_strips_v1() -> None:
    assert server_root("http://gpu:8000/v1") == "http://gpu:8000"
    assert server_root("http://gpu:8000/v1/") == "http://gpu:8000"
    assert server_root("https://host/proxy/v1") == "https://host/proxy"
    assert server_root("http://gpu:8000") == "http://gpu:8000"

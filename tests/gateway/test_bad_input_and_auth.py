"""Every bad request is an OpenAI-shaped 4xx; keys are checked and never leak."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest
from structlog.testing import capture_logs

from tests.conftest import TRANSPORTS, backend_entry, standard_backends


def assert_openai_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    return error


@pytest.fixture()
def url(gateway_factory, upstream) -> str:
    base, _ = upstream
    return gateway_factory(standard_backends(base), max_body_bytes=20_000)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "auto"}, "messages"),
        ({"model": "auto", "messages": []}, "messages"),
        ({"model": "auto", "messages": "hello"}, "messages"),
        ({"model": "auto", "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"model": "auto", "messages": [{"content": "x"}]}, "messages.0.role"),
        ({"model": 7, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}, "max_tokens"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
        # found by the property test: LiteLLM's token counter raised on these, and the gateway answered 500
        ({"model": "auto", "messages": [{"role": "assistant", "tool_calls": {"a": []}}]}, "messages.0.tool_calls"),
        ({"model": "auto", "messages": [{"role": "assistant", "tool_calls": [None]}]}, "messages.0.tool_calls.0"),
        (
            {"model": "auto", "messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}]},
            "messages.0.tool_calls.0.function.arguments",
        ),
        ({"model": "auto", "messages": [{"role": "assistant", "function_call": []}]}, "messages.0.function_call"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x", "name": 3}]}, "messages.0.name"),
        ({"model": "auto", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages.0.content"),
        ({"model": "auto", "messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages.0.content"),
        (
            {"model": "auto", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": "x"}]}]},
            "messages.0.content",
        ),
        (
            {"model": "auto", "messages": [{"role": "user", "content": [{"type": "file", "file": {"filename": "a"}}]}]},
            "messages.0.content",
        ),
        # LiteLLM raised on these while building the call, and each backend counted a failure: a 502 for a bad request
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "tools": 5}, "tools"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "tools": [1]}, "tools.0"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "response_format": "x"}, "response_format"),
        # outside OpenAI's ranges: refused before the prompt is scored, as OpenAI's API refuses them
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "temperature": 2.5}, "temperature"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "top_p": -0.1}, "top_p"),
        ({"model": "cheap", "messages": [{"role": "user", "content": "x"}], "presence_penalty": 3}, "presence_penalty"),
        (
            {"model": "cheap", "messages": [{"role": "user", "content": "x"}], "frequency_penalty": "x"},
            "frequency_penalty",
        ),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "seed": 1.5}, "seed"),
    ],
)
def test_invalid_fields_are_400_naming_the_param(gateway_factory, upstream, body, param):
    base, control = upstream
    url = gateway_factory(standard_backends(base))
    error = assert_openai_error(httpx.post(f"{url}/v1/chat/completions", json=body), 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert control.received == []  # refused by the gateway, not by a backend


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe\x00", b""])
def test_malformed_json_is_a_400(url, raw):
    response = httpx.post(f"{url}/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert assert_openai_error(response, 400)["type"] == "invalid_request_error"


def test_unknown_model_is_a_404_listing_the_models(url):
    response = httpx.post(
        f"{url}/v1/chat/completions", json={"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}
    )
    error = assert_openai_error(response, 404)
    assert error["code"] == "model_not_found" and "auto, strong, mid, cheap" in error["message"]


def test_oversized_body_is_a_413_before_parsing(url):
    huge = {"model": "auto", "messages": [{"role": "user", "content": "x" * 50_000}]}
    assert assert_openai_error(httpx.post(f"{url}/v1/chat/completions", json=huge), 413)["code"] == "request_too_large"

    def chunks():  # no Content-Length: the limit applies while reading
        yield b'{"model": "auto", "messages": [{"role": "user", "content": "'
        for _ in range(30):
            yield b"y" * 1000
        yield b'"}]}'

    response = httpx.post(f"{url}/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
    assert_openai_error(response, 413)


def test_unknown_route_and_wrong_method_are_openai_errors(url):
    assert_openai_error(httpx.get(f"{url}/v1/nothing"), 404)
    assert_openai_error(httpx.get(f"{url}/v1/chat/completions"), 405)


def test_gateway_keys_are_required_when_configured(gateway_factory, upstream):
    base, _ = upstream
    url = gateway_factory(standard_backends(base), api_keys=["gw-secret-1", "gw-secret-2"])
    messages = [{"role": "user", "content": "hello"}]
    with pytest.raises(openai.AuthenticationError) as info:
        openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).chat.completions.create(
            model="cheap", messages=messages
        )
    assert info.value.body["type"] == "authentication_error"
    ok = openai.OpenAI(base_url=f"{url}/v1", api_key="gw-secret-2", max_retries=0)
    assert ok.chat.completions.create(model="cheap", messages=messages).model == "cheap"
    assert httpx.get(f"{url}/healthz").status_code == 200


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_upstream_key_reaches_the_backend_but_never_logs_errors_or_metrics(gateway_factory, upstream, transport):
    base, control = upstream
    secret = "sk-upstream-very-secret-123"
    backends = [
        backend_entry(
            "keyed", "gpt-4-1106-preview", f"{base}/b/keyed/v1", 1e-5, api_key_env="KEYED_KEY", transport=transport
        )
    ]
    control.behaviour["keyed"] = "error500"
    url = gateway_factory(backends, environ={"KEYED_KEY": secret})
    with capture_logs() as logs:
        response = httpx.post(
            f"{url}/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": "x"}]}
        )
    assert response.status_code == 502
    assert secret not in response.text
    assert secret not in repr(logs) and logs
    assert secret not in httpx.get(f"{url}/metrics").text
    assert secret not in httpx.get(f"{url}/readyz").text


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_body_fields_cannot_redirect_or_alter_the_upstream_call(gateway_factory, upstream, transport):
    """LiteLLM reads arguments like api_base and mock_response; a client's body must never supply them."""
    base, control = upstream
    secret = "sk-upstream-never-leaves"
    backends = [
        backend_entry(
            "keyed", "gpt-4-1106-preview", f"{base}/b/keyed/v1", 1e-5, api_key_env="KEYED_KEY", transport=transport
        )
    ]
    url = gateway_factory(backends, environ={"KEYED_KEY": secret})
    hostile = {
        "api_base": "http://127.0.0.1:9/evil/v1",
        "base_url": "http://127.0.0.1:9/evil/v1",
        "api_key": "client-key",
        "mock_response": "forged answer",
        "custom_llm_provider": "anthropic",
        "extra_headers": {"Authorization": "Bearer client"},
        "timeout": 0.0001,
    }
    response = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "keyed", "messages": [{"role": "user", "content": "x"}], **hostile},
        headers={"Host": "evil.example", "X-Api-Base": "http://127.0.0.1:9/"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "answer from keyed"
    name, body = control.received[-1]
    assert name == "keyed"
    assert "mock_response" in body and body["api_base"] == hostile["api_base"]  # travelled as inert JSON only
    assert "extra_headers" not in body
    assert control.authorization[-1] == f"Bearer {secret}"


def test_no_secret_in_any_log_record_even_at_debug(gateway_factory, upstream, caplog):
    """The gateway, LiteLLM and uvicorn all log through the standard library; no record may carry a key."""
    base, control = upstream
    secret, gateway_key = "sk-upstream-debug-secret", "gw-debug-secret"
    backends = [backend_entry("keyed", "gpt-4-1106-preview", f"{base}/b/keyed/v1", 1e-5, api_key_env="KEYED_KEY")]
    url = gateway_factory(backends, environ={"KEYED_KEY": secret}, api_keys=[gateway_key])
    caplog.set_level(logging.DEBUG)
    auth = {"Authorization": f"Bearer {gateway_key}"}
    body = {"model": "auto", "messages": [{"role": "user", "content": "x"}]}
    assert httpx.post(f"{url}/v1/chat/completions", json=body, headers=auth).status_code == 200
    control.behaviour["keyed"] = "error500"
    assert httpx.post(f"{url}/v1/chat/completions", json=body, headers=auth).status_code == 502
    assert (
        httpx.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": "Bearer wrong"}).status_code
        == 401
    )
    assert {"gateway.routes", "gateway.dispatch", "gateway.middleware"} <= {r.name for r in caplog.records}
    assert secret not in caplog.text and gateway_key not in caplog.text


def test_metrics_never_carry_prompt_text(gateway_factory, upstream):
    base, _ = upstream
    url = gateway_factory(standard_backends(base))
    marker = "zebra-marker-7731"
    for model in ("auto", "cheap", marker):
        httpx.post(
            f"{url}/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": marker}]}
        )
    httpx.post(f"{url}/v1/{marker}", json={})
    metrics = httpx.get(f"{url}/metrics").text
    assert "llmrank_requests_total" in metrics and marker not in metrics

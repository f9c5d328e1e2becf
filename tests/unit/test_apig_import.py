"""APIG export + plug-in JSON -> policy: the mapping of every extension, both OpenAPI versions alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from addon.tools.apig_import import ApigImportError, convert, plugins_from, read_document, to_json, to_yaml
from addon.tools.lint import lint
from addon.core.policy import PolicyError, parse_policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "apig"
CONTENT = {"allow_origin": "https://a.example.com", "allow_methods": "GET,PUT", "max_age": 600}


def fixture(name: str) -> Any:
    return read_document((FIXTURES / name).read_text(), name)


def imported(export: str = "export-swagger.json") -> dict[str, Any]:
    return convert(fixture(export), plugins_from([fixture("plugins.json")])).policy


def plugin(content: Any, kind: str = "cors", name: str = "web") -> dict[str, Any]:
    return {"plugin_id": "x", "plugin_name": name, "plugin_type": kind, "plugin_scope": "global",
            "plugin_content": content}


def swagger(operation: dict[str, Any], path: str = "/a", **root: Any) -> dict[str, Any]:
    return {"swagger": "2.0", "info": {"title": "g"}, "paths": {path: {"get": operation}}, **root}


def test_swagger_and_openapi3_exports_give_the_same_policy() -> None:
    assert imported("export-swagger.json") == imported("export-oas3.yaml")


def test_fixture_maps_every_extension() -> None:
    policy = imported()
    apis = {api["name"]: api for api in policy["apis"]}
    assert list(apis) == ["simple_get", "simple_put", "preflight", "files_any"]
    assert apis["simple_get"] == {"name": "simple_get", "group": "seed", "method": "GET", "path": "/simple",
                                  "match_mode": "NORMAL", "req_protocol": "HTTP", "cors": True, "auth": "none"}
    assert apis["simple_put"]["method"] == "PUT" and apis["simple_put"]["cors"] is True
    assert apis["preflight"] == {
        "name": "preflight", "group": "seed", "method": "OPTIONS", "path": "/", "match_mode": "SWA",
        "req_protocol": "HTTP", "cors": True,
        "auth": "none",
        "backend": {"type": "mock", "status": 200, "body": "", "headers": {"Content-Type": "application/json"}},
    }
    files = apis["files_any"]
    assert (files["method"], files["path"], files["auth"], files["cors"]) == ("ANY", "/files/{path+}", "app", False)
    assert files["plugins"] == ["files_cors", "resp_headers"]  # throttle (rate_limit) is left out
    assert "backend" not in files  # HTTP-VPC: the upstream behind the proxy
    assert policy["plugins"] == {"files_cors": {"type": "cors", "content": {
        "allow_origin": "http://www.cors.com,https://app.cors.example", "allow_methods": "GET,PUT,DELETE",
        "allow_headers": "Content-Type,Authorization,X-Sdk-Date", "expose_headers": "X-Request-Id", "max_age": 600,
        "allow_credentials": True}},
        "resp_headers": {"type": "set_resp_headers", "content": {"response_headers": [
            {"name": "Cache-Control", "value": "no-store", "action": "override"},
            {"name": "Server", "value": "", "action": "delete"}]}}}
    assert policy["gateway"] == {"request_id": True, "server": "api-gateway", "unmatched": "reject"}
    assert policy["groups"] == {"seed": {"domains": ["api.cors.example"]}}  # the export's host


def test_yaml_output_loads_and_lints_clean() -> None:
    result = convert(fixture("export-oas3.yaml"), plugins_from([fixture("plugins.json")]))
    text = to_yaml(result, ["imported for a test"])
    assert text.startswith("# imported for a test\n# note: plug-in 'throttle' is of type 'rate_limit'")
    loaded = parse_policy(text, "imported.yaml")
    assert [api.name for api in loaded.policy.apis] == ["simple_get", "simple_put", "preflight", "files_any"]
    origins = loaded.policy.plugins["files_cors"].content.allow_origin
    assert origins == ("http://www.cors.com", "https://app.cors.example")
    assert lint(text) == []


@pytest.mark.parametrize(
    ("content", "form"),
    [
        (json.dumps(CONTENT), None),  # what APIG stores: a JSON string
        (CONTENT, "a JSON object"),
        (json.dumps(json.dumps(CONTENT)), "a JSON string inside a string"),
        (json.dumps(CONTENT).replace('"', '\\"'), "JSON with escaped quotes"),  # the docs' double escaping
    ],
)
def test_plugin_content_in_every_form_apig_or_its_docs_use(content: Any, form: str | None) -> None:
    plugins = plugins_from([{"plugins": [plugin(content)]}])
    assert plugins.cors == {"web": {"type": "cors", "content": CONTENT}}
    assert plugins.notes == ((f"plug-in 'web': plugin_content was {form}, read as its JSON",) if form else ())


def test_plugin_documents_list_single_and_attached_forms() -> None:
    attached = {**plugin(json.dumps(CONTENT), name="b"), "env_name": "RELEASE", "plugin_attach_id": "1"}
    plugins = plugins_from([[plugin(json.dumps(CONTENT), name="a")], attached])
    assert sorted(plugins.cors) == ["a", "b"]


def test_unknown_cors_fields_are_left_out_with_a_note() -> None:
    plugins = plugins_from([plugin(json.dumps({**CONTENT, "allow_private": True}))])
    assert plugins.cors["web"]["content"] == CONTENT
    assert plugins.notes == ("plug-in 'web': fields allow_private are not CorsPluginContent, left out",)


def test_the_no_caller_origin_cors_export_writes_is_read_as_an_empty_list() -> None:
    plugins = plugins_from([plugin(json.dumps({**CONTENT, "allow_origin": "https://no-caller.invalid"}))])
    assert plugins.cors["web"]["content"] == {k: v for k, v in CONTENT.items() if k != "allow_origin"}
    assert len(plugins.notes) == 1 and "admits no origin" in plugins.notes[0]
    policy = parse_policy(to_yaml(convert(swagger({"x-apigateway-plugins": ["web"]}), plugins))).policy
    assert policy.plugins["web"].content.admits_no_origin


def test_bad_plugin_documents_are_refused() -> None:
    with pytest.raises(ApigImportError, match="not an APIG plug-in object"):
        plugins_from([{"name": "web"}])
    with pytest.raises(ApigImportError, match="plugin_content is not a JSON object"):
        plugins_from([plugin("allow_origin=*")])


def test_base_path_and_root_security() -> None:
    export = swagger({"operationId": "a"}, "/a/{id}", basePath="/v1/", security=[{"apig-auth-iam": []}])
    (api,) = convert(export).policy["apis"]
    assert (api["path"], api["auth"], api["match_mode"], api["cors"]) == ("/v1/a/{id}", "iam", "NORMAL", False)


def test_operation_security_overrides_root_and_empty_means_none() -> None:
    export = swagger({"operationId": "a", "security": []}, security=[{"apig-auth-app": []}])
    assert convert(export).policy["apis"][0]["auth"] == "none"


def test_custom_authorizer_is_imported_as_auth_none_with_a_note() -> None:
    export = swagger({"operationId": "a", "security": [{"my-authorizer": []}]},
                     securityDefinitions={"my-authorizer": {"type": "apiKey", "x-apigateway-auth-type": "AUTHORIZER"}})
    result = convert(export)
    assert result.policy["apis"][0]["auth"] == "none"
    assert result.notes == ("GET /a: security my-authorizer is neither App nor IAM auth, imported as auth none",)


def test_unknown_bound_plugin_and_unsupported_path_are_noted() -> None:
    export = swagger({"operationId": "a", "x-apigateway-plugins": ["missing"]})
    export["paths"]["/users/prefix-{name}"] = {"get": {"operationId": "b"}}
    result = convert(export)
    assert [api["name"] for api in result.policy["apis"]] == ["a"]
    assert "plugins" not in result.policy["apis"][0]
    assert result.notes[0] == "GET /a: bound plug-in 'missing' left out: give its JSON with --plugins"
    assert result.notes[1].startswith("GET /users/prefix-{name} left out: ")


def test_mock_body_function_backend_and_match_mode_case() -> None:
    export = swagger({"operationId": "m", "x-apigateway-match-mode": "swa",
                      "x-apigateway-backend": {"type": "MOCK", "mockEndpoints": {"result-content": '{"ok":true}'}}})
    export["paths"]["/f"] = {"post": {"operationId": "f", "x-apigateway-backend": {"type": "FUNCTION"}}}
    result = convert(export)
    mock, function = result.policy["apis"]
    assert mock["match_mode"] == "SWA" and mock["backend"]["body"] == '{"ok":true}'
    assert "backend" not in function
    assert result.notes == ("POST /f: backend type FUNCTION becomes the upstream behind the proxy",)


def test_not_an_export_is_refused() -> None:
    with pytest.raises(ApigImportError, match="not a Swagger 2.0 or OpenAPI 3.0 document"):
        convert({"plugins": []})
    with pytest.raises(ApigImportError, match="no operations"):
        convert({"swagger": "2.0", "paths": {}})
    with pytest.raises(ApigImportError, match="neither JSON nor YAML"):
        read_document("{: [", "broken.yaml")


def test_set_resp_headers_plugin_is_imported_and_system_parameters_left_out() -> None:
    content = {"response_headers": [
        {"name": "X-Frame-Options", "value": "DENY", "action": "Override"},
        {"name": "X-Cache", "value_type": "system_parameter", "value": "$context.cacheStatus", "action": "add"},
        {"name": "X-Custom", "value_type": "custom_value", "value": "1", "action": "append"}]}
    # APIG's own docs escape this plug-in's content twice: accepted, and said so.
    plugins = plugins_from([plugin(json.dumps(json.dumps(content)), kind="set_resp_headers", name="hdrs")])
    assert plugins.cors["hdrs"] == {"type": "set_resp_headers", "content": {"response_headers": [
        {"name": "X-Frame-Options", "value": "DENY", "action": "Override"},
        {"name": "X-Custom", "value": "1", "action": "append"}]}}
    assert any("'X-Cache' takes its value from a system parameter" in n for n in plugins.notes)
    assert any("a JSON string inside a string" in n for n in plugins.notes)
    policy = convert(swagger({"operationId": "a", "x-apigateway-plugins": ["hdrs"]}), plugins).policy
    loaded = parse_policy(json.dumps(policy))
    assert loaded.policy.apis[0].plugins == ("hdrs",)
    assert [h.action for h in loaded.policy.plugins["hdrs"].content.response_headers] == ["override", "append"]


@pytest.mark.parametrize(("schemes", "protocol"), [(["https"], "HTTPS"), (["http"], "HTTP"),
                                                   (["http", "https"], "BOTH"), (None, "BOTH")])
def test_req_protocol_from_swagger_schemes_and_openapi_servers(schemes: list[str] | None, protocol: str) -> None:
    operation: dict[str, Any] = {"operationId": "a"}
    if schemes is not None:
        operation["schemes"] = schemes
    assert convert(swagger(operation)).policy["apis"][0]["req_protocol"] == protocol
    oas3: dict[str, Any] = {"openapi": "3.0.0", "info": {"title": "g"}, "paths": {"/a": {"get": {"operationId": "a"}}},
                            "servers": [{"url": "https://api.g.example:8443"}]}
    if schemes is not None:
        oas3["paths"]["/a"]["get"]["servers"] = [{"url": f"{s}://api.g.example"} for s in schemes]
    converted = convert(oas3).policy
    assert converted["apis"][0]["req_protocol"] == (protocol if schemes is not None else "HTTPS")  # root servers
    assert converted["groups"] == {"g": {"domains": ["api.g.example"]}}


def test_group_domains_left_out_on_request() -> None:
    export = swagger({"operationId": "a"}, host="api.g.example")
    assert convert(export).policy["groups"] == {"g": {"domains": ["api.g.example"]}}
    assert "groups" not in convert(export, domains=False).policy
    assert "groups" not in convert(swagger({"operationId": "a"})).policy  # no host, no domains


def test_plugins_embedded_in_the_export_are_read_and_given_ones_win() -> None:
    export = swagger({"operationId": "a", "x-apigateway-plugins": ["web"]},
                     **{"x-corsgate-plugins": [plugin(json.dumps(CONTENT))]})
    result = convert(export)
    assert result.policy["apis"][0]["plugins"] == ["web"]
    assert result.policy["plugins"] == {"web": {"type": "cors", "content": CONTENT}}
    other = {**CONTENT, "allow_origin": "https://b.example.com"}
    result = convert(export, plugins_from([plugin(json.dumps(other))]))
    assert result.policy["plugins"]["web"]["content"] == other
    assert result.notes == ("plug-in 'web': the one given with --plugins replaces the export's x-corsgate-plugins",)
    with pytest.raises(ApigImportError, match="not an APIG plug-in object"):
        convert(swagger({"operationId": "a"}, **{"x-corsgate-plugins": [{"name": "web"}]}))


def test_json_output_for_imports_past_the_yaml_size_cap() -> None:
    plugins = plugins_from([plugin(json.dumps({**CONTENT, "allow_origin": ",".join(
        f"https://h{i}.example.com" for i in range(20000))}))])
    result = convert(swagger({"operationId": "a", "x-apigateway-plugins": ["web"]}), plugins)
    with pytest.raises(PolicyError, match="YAML policies are limited"):
        parse_policy(to_yaml(result), "imported.yaml")
    loaded = parse_policy(to_json(result), "imported.json")
    assert len(loaded.policy.plugins["web"].content.allow_origin) == 20000


def test_what_would_not_load_is_left_out_with_a_note() -> None:
    """Found by the cors-export round trip: each of these used to give a policy that does not load, or a crash."""
    plugins = plugins_from([plugin(json.dumps(CONTENT), name="one"), plugin(json.dumps(CONTENT), name="two")])
    export = swagger({"operationId": "a", "x-apigateway-plugins": ["one", "two", "one"], "security": 5}, "/a/{x}")
    export["paths"]["/a/{y}"] = {"get": {"operationId": "b"}}
    export["paths"]["/c"] = {"get": {"operationId": "c", "x-apigateway-plugins": 7}}
    result = convert(export, plugins)
    assert [(api["name"], api.get("plugins")) for api in result.policy["apis"]] == [("a", ["one"]), ("c", None)]
    assert result.notes == (
        "GET /a/{x}: plug-in 'two' left out: an API takes one cors plug-in, 'one'",
        "GET /a/{y} left out: it matches the same requests as API 'a'",
        "GET /c: x-apigateway-plugins is not a list of plug-in names, left out",
    )
    parse_policy(to_yaml(result))


@pytest.mark.parametrize("body", ["\x85", "a\u2028b", "\u2029 ", "x\x85\ny"])
def test_unicode_line_breaks_survive_the_yaml_output(body: str) -> None:
    """Found by test_any_strings_come_back_as_they_were: a mock body of NEL came back as a space."""
    result = convert(swagger({"operationId": "a", "x-apigateway-backend": {
        "type": "MOCK", "mockEndpoints": {"result-content": body}}}))
    assert parse_policy(to_yaml(result)).policy.apis[0].backend.body == body

"""The edges of the site: the root, HTML error pages, local API docs, the favicon, HEAD."""

import re


def test_the_root_leads_to_the_portal(world):
    response = world.client.get("/", follow_redirects=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert str(response.url).endswith("/portal/login")


def test_unknown_portal_and_public_paths_answer_an_html_page(world):
    for path in ("/portal/x", "/callnow/alice/nothing/here", "/nowhere"):
        response = world.client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html"), path
        assert "<h1>Not found</h1>" in response.text


def test_a_wrong_method_on_a_page_answers_an_html_page(world):
    response = world.client.put("/portal/login")
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("text/html")


def test_the_api_keeps_json_problems(world):
    response = world.client.get("/api/v1/nothing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"detail": "Not Found"}


def test_the_docs_name_no_external_address_and_their_assets_are_served_here(world):
    response = world.client.get("/docs")
    assert response.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", response.text)
    urls += re.findall(r"url: ?'([^']+)'", response.text)
    assert urls
    assert not [u for u in urls if "//" in u], urls
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"):
        assert world.client.get(asset).status_code == 200, asset


def test_a_favicon_exists(world):
    for path in ("/favicon.ico", "/static/favicon.svg"):
        response = world.client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("image/svg+xml")
        assert "<svg" in response.text


def test_head_works_wherever_get_does(world):
    for path in (
        "/portal/login",
        "/callnow/alice",
        "/api/v1/openapi.json",
        "/docs",
        "/favicon.ico",
    ):
        get = world.client.get(path)
        head = world.client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]


def test_head_on_an_event_stream_answers_the_headers_and_ends(world):
    from tests.web.test_portal import log_in

    log_in(world)
    for path in ("/portal/pending/events", "/portal/pending/count/events"):
        head = world.client.head(path)
        assert head.status_code == 200
        assert head.headers["content-type"].startswith("text/event-stream")
        assert head.content == b""


def test_the_form_posts_route_leaves_other_methods_to_the_pages_own_routes(world):
    """The public form's POST is matched ahead of every other route: any other method on its
    path is still refused by the page's route, which names GET among what it allows."""
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        answer = world.client.request(method, "/callnow/alice")
        assert answer.status_code == 405, method
        assert "GET" in {m.strip() for m in answer.headers["allow"].split(",")}, method
        assert answer.headers["x-content-type-options"] == "nosniff"

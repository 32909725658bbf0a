"""Tests for ``annotate.core.rendering`` (untrusted Markdown -> sanitized HTML).

Plain pytest, no database.  Runs standalone too:
``.venv/bin/python -m pytest tests/core/test_rendering.py -p no:django -q``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings

if not settings.configured:
    settings.configure()

from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from annotate.core import rendering
from annotate.core.rendering import pygments_css, render_markdown, render_plain
from tests.xss_payloads import XSS_MARKER, XSS_PAYLOADS

REPO_ROOT = Path(__file__).resolve().parents[2]
PYGMENTS_CSS_PATH = REPO_ROOT / "frontend" / "static" / "css" / "pygments.css"

# ---------------------------------------------------------------------------------------------------------
# An independent checker: parse the output with the stdlib parser and enforce the policy from the outside.
# ---------------------------------------------------------------------------------------------------------

FORBIDDEN_TAGS = frozenset(
    {
        "script",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "form",
        "input",
        "button",
        "textarea",
        "select",
        "svg",
        "math",
        "style",
        "link",
        "meta",
        "base",
        "img",
        "image",
        "picture",
        "source",
        "video",
        "audio",
        "noscript",
        "template",
        "html",
        "head",
        "body",
        "title",
    }
)

#: The complete set of attributes the renderer may emit, per tag.
EXPECTED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href", "title", "target", "rel"}),
    "ol": frozenset({"start"}),
    "th": frozenset({"align"}),
    "td": frozenset({"align"}),
    "code": frozenset({"class"}),
    "pre": frozenset({"class"}),
    "span": frozenset({"class"}),
    "div": frozenset({"class"}),
}
URL_ATTRIBUTES = frozenset(
    {"href", "src", "action", "formaction", "data", "poster", "background", "cite", "srcset", "xlink:href"}
)
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
# What a browser would consider a scheme, after it strips leading C0/space and removes tab/CR/LF (WHATWG URL).
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_CLASS_RE = re.compile(r"^[A-Za-z0-9_+#.\-]+$")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.other: list[str] = []  # comments, declarations, processing instructions

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.other.append(f"comment:{data}")

    def handle_decl(self, decl: str) -> None:
        self.other.append(f"decl:{decl}")

    def handle_pi(self, data: str) -> None:
        self.other.append(f"pi:{data}")

    def unknown_decl(self, data: str) -> None:
        self.other.append(f"unknown:{data}")


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector


def url_scheme(url: str) -> str | None:
    cleaned = url.strip("".join(chr(c) for c in range(0x21)))
    cleaned = re.sub(r"[\t\n\r]", "", cleaned)
    match = _SCHEME_RE.match(cleaned)
    return match.group(1).lower() if match else None


def assert_safe_html(html: str) -> None:
    """Raise AssertionError if ``html`` violates the rendering policy."""
    lowered = html.lower()
    for needle in ("<script", "<iframe", "<img", "<svg", "<math", "<style", "<object", "<embed"):
        assert needle not in lowered, f"raw {needle!r} in output: {html!r}"

    doc = parse(html)
    assert not doc.other, f"comments/declarations in output: {doc.other!r}"
    for tag, attrs in doc.elements:
        assert tag not in FORBIDDEN_TAGS, f"forbidden <{tag}> in {html!r}"
        assert tag in rendering.ALLOWED_TAGS, f"unexpected <{tag}> in {html!r}"
        for name, value in attrs.items():
            assert not name.startswith("on"), f"event handler {name}= on <{tag}> in {html!r}"
            assert name != "style", f"style= on <{tag}> in {html!r}"
            assert name in EXPECTED_ATTRIBUTES.get(tag, frozenset()), f"unexpected {name}= on <{tag}>"
            if name in URL_ATTRIBUTES:
                scheme = url_scheme(value or "")
                assert scheme is None or scheme in SAFE_SCHEMES, f"{name}={value!r} on <{tag}> in {html!r}"
            if name == "class":
                assert all(_CLASS_RE.match(c) for c in (value or "").split()), f"class={value!r}"
        if tag == "a":
            assert attrs.get("target") == "_blank", f"<a> without target=_blank in {html!r}"
            rel = (attrs.get("rel") or "").split()
            assert "noopener" in rel, f"<a> without rel=noopener in {html!r}"
            assert "noreferrer" in rel
            assert "nofollow" in rel


def elements(html: str, tag: str) -> list[dict[str, str | None]]:
    return [attrs for name, attrs in parse(html).elements if name == tag]


def text_of(html: str) -> str:
    return "".join(parse(html).text)


# ---------------------------------------------------------------------------------------------------------
# The checker itself must be able to fail.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_html",
    [
        "<script>alert(1)</script>",
        "<p><img src=x></p>",
        '<p onclick="x()">hi</p>',
        '<p style="color:red">hi</p>',
        '<a href="javascript:alert(1)" target="_blank" rel="noopener nofollow noreferrer">x</a>',
        '<a href=" jav&#x09;ascript:alert(1)" target="_blank" rel="noopener nofollow noreferrer">x</a>',
        '<a href="data:text/html,x" target="_blank" rel="noopener nofollow noreferrer">x</a>',
        '<a href="https://example.com">no target or rel</a>',
        '<a href="https://example.com" target="_blank" rel="nofollow">no noopener</a>',
        "<svg></svg>",
        "<math></math>",
        '<meta http-equiv="refresh" content="0">',
        '<base href="https://evil.example/">',
        "<form></form>",
        '<div hx-get="/logout" hx-trigger="load">x</div>',
        "<!-- comment -->",
    ],
)
def test_checker_rejects_unsafe_html(bad_html: str) -> None:
    with pytest.raises(AssertionError):
        assert_safe_html(bad_html)


def test_payloads_are_dangerous_without_the_safe_renderer() -> None:
    """Sanity check of the corpus: an html-enabled, unsanitized renderer fails the checker on most of them."""
    unsafe = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    failures = 0
    for payload in XSS_PAYLOADS:
        try:
            assert_safe_html(unsafe.render(payload))
        except AssertionError:
            failures += 1
    assert failures >= len(XSS_PAYLOADS) // 2


# ---------------------------------------------------------------------------------------------------------
# XSS corpus
# ---------------------------------------------------------------------------------------------------------


def test_payload_corpus_shape() -> None:
    assert XSS_MARKER == "__xss_marker"
    assert len(XSS_PAYLOADS) >= 24
    assert len(set(XSS_PAYLOADS)) == len(XSS_PAYLOADS)
    for index, payload in enumerate(XSS_PAYLOADS):
        calls = re.findall(r"(?:__xss_marker|alert)\((\d+)\)", payload)
        assert all(int(n) == index for n in calls), (index, payload)
        assert "\x00" not in payload  # payloads get stored in Postgres text columns by browser tests


@pytest.mark.parametrize("payload", XSS_PAYLOADS, ids=[f"payload{i}" for i in range(len(XSS_PAYLOADS))])
def test_render_markdown_neutralises_payload(payload: str) -> None:
    html = render_markdown(payload)
    assert isinstance(html, SafeString)
    assert_safe_html(html)
    assert not elements(html, "img")


@pytest.mark.parametrize("payload", XSS_PAYLOADS, ids=[f"payload{i}" for i in range(len(XSS_PAYLOADS))])
def test_render_plain_neutralises_payload(payload: str) -> None:
    html = render_plain(payload)
    assert isinstance(html, SafeString)
    assert parse(html).elements == []
    assert "<" not in html
    assert text_of(html) == payload


def test_all_payloads_in_one_document() -> None:
    html = render_markdown("\n\n".join(XSS_PAYLOADS))
    assert_safe_html(html)


@pytest.mark.parametrize(
    "source",
    [
        "[x](javascript:alert(1))",
        "[x](JAVASCRIPT:alert(1))",
        "[x](&#x6a;avascript:alert(1))",
        "[x](data:text/html,<script>alert(1)</script>)",
        "[x](vbscript:msgbox(1))",
        "<javascript:alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
    ],
)
def test_dangerous_link_schemes_never_become_hrefs(source: str) -> None:
    html = render_markdown(source)
    assert_safe_html(html)
    for attrs in elements(html, "a"):
        assert "javascript" not in (attrs.get("href") or "").lower()
        assert not (attrs.get("href") or "").lower().startswith(("data:", "vbscript:"))


# ---------------------------------------------------------------------------------------------------------
# Images: never <img>; a plain link with the alt text.
# ---------------------------------------------------------------------------------------------------------


def test_image_becomes_plain_link_with_alt_text() -> None:
    html = render_markdown('![a *cute* cat](https://example.com/cat.png "Cat")')
    assert_safe_html(html)
    assert not elements(html, "img")
    (link,) = elements(html, "a")
    assert link["href"] == "https://example.com/cat.png"
    assert link["title"] == "Cat"
    assert "a cute cat" in text_of(html)


def test_image_without_alt_gets_a_label() -> None:
    html = render_markdown("![](https://example.com/pixel.gif)")
    assert_safe_html(html)
    assert text_of(html).strip() == "image"


def test_data_image_has_no_href() -> None:
    html = render_markdown("![png](data:image/png;base64,iVBORw0KGgo=)")
    assert_safe_html(html)
    (link,) = elements(html, "a")
    assert "href" not in link
    assert text_of(html).strip() == "png"


def test_image_inside_link_is_text_only() -> None:
    html = render_markdown("[![badge](https://example.com/b.svg)](https://example.com/)")
    assert_safe_html(html)
    links = elements(html, "a")
    assert [link["href"] for link in links] == ["https://example.com/"]
    assert text_of(html).strip() == "badge"


# ---------------------------------------------------------------------------------------------------------
# Positive rendering
# ---------------------------------------------------------------------------------------------------------


def test_headings() -> None:
    html = render_markdown("# Title\n\n## Sub *title*\n\nSetext\n------\n")
    assert_safe_html(html)
    assert "<h1>Title</h1>" in html
    assert "<h2>Sub <em>title</em></h2>" in html
    assert "<h2>Setext</h2>" in html


def test_emphasis_and_strikethrough() -> None:
    html = render_markdown("**bold** _it_ ~~gone~~")
    assert "<strong>bold</strong>" in html
    assert "<em>it</em>" in html
    assert "<s>gone</s>" in html


def test_lists() -> None:
    html = render_markdown("- one\n- two\n\n3. three\n4. four\n")
    assert_safe_html(html)
    assert "<ul>" in html
    assert len(elements(html, "li")) == 4
    (ordered,) = elements(html, "ol")
    assert ordered["start"] == "3"


def test_blockquote_and_hr() -> None:
    html = render_markdown("> quoted\n\n---\n")
    assert "<blockquote>" in html
    assert "<hr>" in html or "<hr />" in html


def test_tables_with_alignment() -> None:
    html = render_markdown("| a | b | c |\n|:--|:-:|--:|\n| 1 | 2 | 3 |\n")
    assert_safe_html(html)
    for tag in ("table", "thead", "tbody", "tr", "th", "td"):
        assert elements(html, tag), tag
    assert [cell.get("align") for cell in elements(html, "th")] == ["left", "center", "right"]
    assert [cell.get("align") for cell in elements(html, "td")] == ["left", "center", "right"]
    assert "style" not in html


def test_inline_code_is_escaped() -> None:
    html = render_markdown("Use `a < b && c` here")
    assert "<code>a &lt; b &amp;&amp; c</code>" in html


def test_python_fence_is_highlighted_with_classes() -> None:
    html = render_markdown('```python\ndef greet(name):\n    return f"hi {name}"\n```\n')
    assert_safe_html(html)
    (pre,) = elements(html, "pre")
    assert pre["class"] == "highlight"
    (code,) = elements(html, "code")
    assert code["class"] == "language-python"
    span_classes = {attrs["class"] for attrs in elements(html, "span")}
    assert {"k", "nf"} <= span_classes  # keyword "def", function name "greet"
    assert "style" not in html
    assert text_of(html).rstrip("\n") == 'def greet(name):\n    return f"hi {name}"'


def test_language_alias_is_canonicalised() -> None:
    html = render_markdown("```py\nx = 1\n```\n")
    (code,) = elements(html, "code")
    assert code["class"] == "language-python"


def test_unknown_language_is_plain_escaped_text() -> None:
    html = render_markdown("```nosuchlanguage\n<b>x</b> = 1\n```\n")
    assert_safe_html(html)
    assert not elements(html, "span")
    (code,) = elements(html, "code")
    assert "class" not in code
    assert "&lt;b&gt;x&lt;/b&gt; = 1" in html


def test_missing_language_is_not_guessed() -> None:
    html = render_markdown("```\ndef clearly_python():\n    return 1\n```\n")
    assert not elements(html, "span")
    assert elements(html, "pre") == [{}]


def test_indented_code_block() -> None:
    html = render_markdown("    <script>x</script>\n")
    assert_safe_html(html)
    assert "<pre><code>&lt;script&gt;x&lt;/script&gt;\n</code></pre>" in html


def test_fence_language_injection_is_harmless() -> None:
    html = render_markdown('```python" onmouseover="alert(1)\nx\n```\n')
    assert_safe_html(html)
    assert "onmouseover" not in str(elements(html, "code"))


def test_link_gets_rel_and_target() -> None:
    html = render_markdown('[docs](https://example.com/docs "The docs")')
    assert_safe_html(html)
    (link,) = elements(html, "a")
    assert link == {
        "href": "https://example.com/docs",
        "title": "The docs",
        "target": "_blank",
        "rel": "noopener nofollow noreferrer",
    }


def test_autolink_and_mailto() -> None:
    html = render_markdown("<https://example.com> and [mail](mailto:a@example.com) and <b@example.com>")
    assert_safe_html(html)
    assert [link["href"] for link in elements(html, "a")] == [
        "https://example.com",
        "mailto:a@example.com",
        "mailto:b@example.com",
    ]


def test_bare_urls_are_not_linkified() -> None:
    html = render_markdown("see https://example.com now")
    assert not elements(html, "a")


def test_relative_links_are_kept() -> None:
    html = render_markdown("[next](/tasks/2/)")
    assert_safe_html(html)
    assert elements(html, "a")[0]["href"] == "/tasks/2/"


def test_raw_html_is_shown_as_text() -> None:
    html = render_markdown("Some <b>x</b> and <div onclick='y'>z</div>")
    assert_safe_html(html)
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert not elements(html, "b")
    assert not elements(html, "div")
    assert "<b>x</b>" in text_of(html)


def test_html_block_is_shown_as_text() -> None:
    html = render_markdown("<div>\n<script>alert(1)</script>\n</div>\n")
    assert_safe_html(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_entities_stay_text() -> None:
    html = render_markdown("&lt;script&gt; &amp; &copy;")
    assert_safe_html(html)
    assert text_of(html).strip() == "<script> & \u00a9"


def test_template_syntax_is_literal() -> None:
    html = render_markdown("{{ 7*7 }} {% debug %}")
    assert "{{ 7*7 }} {% debug %}" in html
    assert "49" not in html


def test_empty_and_whitespace() -> None:
    assert render_markdown("") == ""
    assert isinstance(render_markdown(""), SafeString)
    assert render_markdown("   \n\n").strip() == ""


def test_nul_and_control_characters_do_not_crash() -> None:
    html = render_markdown("a\x00b\x01c\u202ed")
    assert_safe_html(html)
    assert "\x00" not in html


def test_deep_nesting_is_bounded() -> None:
    html = render_markdown(">" * 5000 + " deep\n\n" + "- " * 500 + "x\n")
    assert_safe_html(html)


def test_oversized_input_falls_back_to_plain_text() -> None:
    big = "# not a heading <b>\n" * (rendering.MAX_MARKDOWN_CHARS // 20 + 1)
    assert len(big) > rendering.MAX_MARKDOWN_CHARS
    html = render_markdown(big)
    assert_safe_html(html)
    assert not elements(html, "h1")
    assert [tag for tag, _ in parse(html).elements] == ["pre"]
    assert text_of(html) == big


def test_render_is_deterministic_and_cached() -> None:
    source = "# Cached\n\n```python\nx = 1\n```\n"
    first = render_markdown(source)
    second = render_markdown(source)
    assert first == second
    assert first == rendering._render_uncached(source)


def test_render_cache_is_bounded() -> None:
    cache = rendering._RenderCache(max_total_chars=30, max_input_chars=5)
    cache.put("aaaaa", "1234567890")  # 15 chars
    cache.put("bbbbb", "1234567890")  # 30 chars total
    assert cache.get("aaaaa") is not None  # now most recently used
    cache.put("ccccc", "1234567890")  # evicts "bbbbb"
    assert cache.get("bbbbb") is None
    assert cache.get("aaaaa") == cache.get("ccccc") == "1234567890"
    cache.put("toolong", "x")  # input above max_input_chars is not cached
    assert cache.get("toolong") is None
    cache.clear()
    assert cache.get("aaaaa") is None


def test_markdown_parser_is_module_level_singleton() -> None:
    assert isinstance(rendering._MD, MarkdownIt)
    assert rendering._MD.options["html"] is False
    assert rendering._MD.options["linkify"] is False
    assert rendering._cleaner() is rendering._cleaner()


def test_large_mixed_document() -> None:
    """Structure check on a ~20 KB response (no timing assertions)."""
    section = (
        "## Section {i}\n\nSome *text* with a [link](https://example.com/{i}) and `code`.\n\n"
        "| a | b |\n|---|--:|\n| {i} | <b>x</b> |\n\n"
        "```python\ndef f_{i}(x):\n    return x * {i}\n```\n\n![img {i}](https://example.com/{i}.png)\n\n"
    )
    source = "".join(section.format(i=i) for i in range(100))
    assert len(source) >= 20_000
    html = render_markdown(source)
    assert_safe_html(html)
    assert len(elements(html, "h2")) == 100
    assert len(elements(html, "table")) == 100
    assert len(elements(html, "pre")) == 100
    assert len(elements(html, "a")) == 200
    assert not elements(html, "img")


# ---------------------------------------------------------------------------------------------------------
# render_plain
# ---------------------------------------------------------------------------------------------------------


def test_render_plain_escapes_and_keeps_newlines() -> None:
    html = render_plain("line 1 <b>bold</b>\nline 2 & \"quotes\" 'single'\n\n# not a heading")
    assert isinstance(html, SafeString)
    assert html == (
        "line 1 &lt;b&gt;bold&lt;/b&gt;\n"
        "line 2 &amp; &quot;quotes&quot; &#x27;single&#x27;\n\n# not a heading"
    )


def test_render_plain_escapes_even_safe_strings() -> None:
    assert render_plain(mark_safe("<script>x</script>")) == "&lt;script&gt;x&lt;/script&gt;"


def test_render_plain_empty() -> None:
    assert render_plain("") == ""
    assert isinstance(render_plain(""), SafeString)


# ---------------------------------------------------------------------------------------------------------
# Pygments stylesheet
# ---------------------------------------------------------------------------------------------------------


def test_pygments_css_is_scoped_and_generated() -> None:
    css = pygments_css()
    lines = css.splitlines()
    assert "python -m annotate.core.rendering --css" in lines[0]
    rules = [line for line in lines if not line.startswith("/*")]
    assert rules
    assert all(rule.startswith(".highlight") for rule in rules), [r for r in rules if not r.startswith(".h")]


def test_committed_pygments_css_is_up_to_date() -> None:
    assert PYGMENTS_CSS_PATH.read_text(encoding="utf-8") == pygments_css(), (
        "regenerate with: python -m annotate.core.rendering --css > frontend/static/css/pygments.css"
    )


def test_main_prints_css(capsys: pytest.CaptureFixture[str]) -> None:
    assert rendering._main(["--css"]) == 0
    assert capsys.readouterr().out == pygments_css()
    assert rendering._main([]) == 2

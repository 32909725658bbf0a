"""Server-side rendering of untrusted text (prompts and model responses).

Everything that reaches these functions must be treated as hostile.  The pipeline is:

1. markdown-it-py (CommonMark + tables + strikethrough) with raw HTML *disabled*, so any HTML in the
   source is escaped and shown as visible text.  Markdown images are rendered as plain links (never
   ``<img>``) so that viewing a task cannot make the annotator's browser fetch a remote URL.
2. Fenced code blocks with a known language are highlighted by Pygments using CSS classes only
   (see ``frontend/static/css/pygments.css``); unknown/missing languages are escaped as plain text.
3. The resulting HTML is sanitized by nh3 (ammonia) with an explicit allow-list as defence in depth.

Regenerate the stylesheet with ``python -m annotate.core.rendering --css > frontend/static/css/pygments.css``.
"""

from __future__ import annotations

import functools
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Final

import nh3
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from pygments import highlight as pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_all_lexers, get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_TAGS",
    "ALLOWED_URL_SCHEMES",
    "LINK_REL",
    "MAX_MARKDOWN_CHARS",
    "PYGMENTS_STYLE",
    "pygments_css",
    "render_markdown",
    "render_plain",
]

# ----------------------------------------------------------------------------------------------------
# Policy
# ----------------------------------------------------------------------------------------------------

PYGMENTS_STYLE: Final = "friendly"
HIGHLIGHT_CSS_CLASS: Final = "highlight"
LINK_REL: Final = "noopener nofollow noreferrer"
LINK_TARGET: Final = "_blank"
ALLOWED_URL_SCHEMES: Final[frozenset[str]] = frozenset({"http", "https", "mailto"})

#: Inputs longer than this are not parsed as Markdown at all but shown as escaped plain text in ``<pre>``:
#: markdown-it-py is pure Python (pathological 20 KB inputs take ~0.5 s here), so this bounds CPU per render.
MAX_MARKDOWN_CHARS: Final = 200_000
#: Code blocks larger than this are not highlighted (plain escaped text instead) to bound CPU time.
MAX_HIGHLIGHT_CHARS: Final = 100_000
#: Info strings longer than this are never treated as a language name.
_MAX_LANG_CHARS: Final = 40

ALLOWED_TAGS: Final[frozenset[str]] = frozenset(
    {
        "p",
        "br",
        "hr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "strong",
        "em",
        "b",
        "i",
        "s",
        "del",
        "code",
        "pre",
        "span",
        "div",
        "blockquote",
        "ul",
        "ol",
        "li",
        "a",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    }
)

#: Tags whose *content* is dropped too (they can never be produced with html=False, this is belt and braces).
_CLEAN_CONTENT_TAGS: Final[frozenset[str]] = frozenset({"script", "style"})

#: Attributes allowed per tag (nothing else survives: no ``on*``, no ``style``, no ``id``).  ``rel`` and
#: ``target`` on ``<a>`` are *forced* by the cleaner (``link_rel`` / ``set_tag_attribute_values``),
#: never copied from the input.  ``class`` is handled separately through ``_ALLOWED_CLASSES``.
ALLOWED_ATTRIBUTES: Final[dict[str, frozenset[str]]] = {
    "a": frozenset({"href", "title"}),
    "ol": frozenset({"start"}),
}

#: Attributes restricted to a fixed set of values (table column alignment; see ``_table_align_rule``).
_ATTRIBUTE_VALUES: Final[dict[str, dict[str, set[str]]]] = {
    "th": {"align": {"left", "center", "right"}},
    "td": {"align": {"left", "center", "right"}},
}


def _language_classes() -> set[str]:
    return {
        f"language-{alias.lower()}"
        for _name, aliases, _files, _mimes in get_all_lexers()
        for alias in aliases
    }


_PYGMENTS_CLASSES: Final[frozenset[str]] = frozenset(
    {cls for cls in STANDARD_TYPES.values() if cls} | {"hll"}
)

#: The only class names that survive, per tag: Pygments token classes on ``<span>``, the wrapper class on
#: ``<pre>``/``<div>`` and ``language-<pygments alias>`` on ``<code>``.  Uses nh3's native ``allowed_classes``
#: (no Python callback per attribute), which matters for large highlighted blocks.
_ALLOWED_CLASSES: Final[dict[str, frozenset[str]]] = {
    "span": _PYGMENTS_CLASSES,
    "pre": frozenset({HIGHLIGHT_CSS_CLASS}),
    "div": frozenset({HIGHLIGHT_CSS_CLASS}),
    "code": frozenset(_language_classes()),
}
_TABLE_ALIGN_RE: Final = re.compile(r"text-align:\s*(left|center|right)")


@functools.cache
def _cleaner() -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(_CLEAN_CONTENT_TAGS),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        strip_comments=True,
        link_rel=LINK_REL,
        generic_attribute_prefixes=set(),
        tag_attribute_values=_ATTRIBUTE_VALUES,
        set_tag_attribute_values={"a": {"target": LINK_TARGET}},
        url_schemes=set(ALLOWED_URL_SCHEMES),
        allowed_classes={tag: set(classes) for tag, classes in _ALLOWED_CLASSES.items()},
    )


# ----------------------------------------------------------------------------------------------------
# Pygments
# ----------------------------------------------------------------------------------------------------

_FORMATTER: Final = HtmlFormatter(nowrap=True, cssclass=HIGHLIGHT_CSS_CLASS)


@functools.lru_cache(maxsize=256)
def _lexer_for(lang: str) -> Lexer | None:
    """Look a lexer up by exact alias only; never guess from content."""
    try:
        return get_lexer_by_name(lang)
    except ClassNotFound:
        return None


def _highlight(code: str, lang: str, _attrs: str) -> str:
    """markdown-it ``highlight`` hook for fenced blocks.

    The result starts with ``<pre`` so markdown-it uses it verbatim.  Known language: Pygments spans and
    ``language-<canonical alias>``.  Anything else (unknown language, overlong info string, huge block):
    plain escaped text without a class -- we never guess a lexer from the content.
    """
    lang = lang.strip().lower()
    if not lang:
        return ""  # markdown-it's default: <pre><code>escaped</code></pre>
    lexer = _lexer_for(lang) if len(lang) <= _MAX_LANG_CHARS else None
    if lexer is None or len(code) > MAX_HIGHLIGHT_CHARS:
        return f"<pre><code>{escapeHtml(code)}</code></pre>"
    body = pygments_highlight(code, lexer, _FORMATTER)
    canonical = lexer.aliases[0].lower() if lexer.aliases else lang
    code_class = f"language-{escapeHtml(canonical)}"
    return f'<pre class="{HIGHLIGHT_CSS_CLASS}"><code class="{code_class}">{body}</code></pre>'


def pygments_css() -> str:
    """Stylesheet for highlighted code, every rule scoped under ``.highlight`` (no global ``pre`` rules)."""
    formatter = HtmlFormatter(style=PYGMENTS_STYLE, cssclass=HIGHLIGHT_CSS_CLASS)
    selector = f".{HIGHLIGHT_CSS_CLASS}"
    lines = [
        f"/* Generated by `python -m annotate.core.rendering --css` (Pygments style {PYGMENTS_STYLE!r}). */",
        "/* Do not edit by hand. */",
        *formatter.get_background_style_defs(selector),
        # Without Pygments' "/* Token.Name */" note on every rule: a third of the file, sent with every page.
        *(re.sub(r"\s*/\*[^*]*\*/$", "", rule) for rule in formatter.get_token_style_defs(selector)),
    ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------------
# markdown-it
# ----------------------------------------------------------------------------------------------------


def _render_image(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """Render ``![alt](url)`` as ``<a href="url">alt</a>`` — never an ``<img>`` (no remote fetches/tracking).

    Inside a link (``[![alt](img)](href)``) only the alt text is emitted, to avoid nested anchors.
    """
    token = tokens[idx]
    label = self.renderInlineAsText(token.children or [], options, env).strip() or "image"
    if token.meta.get("inside_link"):
        return escapeHtml(label)
    src = str(token.attrGet("src") or "")
    title = token.attrGet("title")
    title_attr = f' title="{escapeHtml(str(title))}"' if title else ""
    return f'<a href="{escapeHtml(src)}"{title_attr}>{escapeHtml(label)}</a>'


def _table_align_rule(state: StateCore) -> None:
    """Turn markdown-it's ``style="text-align:x"`` on table cells into ``align="x"`` (``style`` is banned)."""
    for token in state.tokens:
        if token.type not in ("th_open", "td_open"):
            continue
        style = token.attrGet("style")
        if style is None:
            continue
        del token.attrs["style"]
        match = _TABLE_ALIGN_RE.fullmatch(str(style).strip())
        if match:
            token.attrSet("align", match.group(1))


def _mark_images_in_links_rule(state: StateCore) -> None:
    """Flag images nested in a link (``meta["inside_link"]``) in one linear pass, for ``_render_image``."""
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        depth = 0
        for token in block.children:
            if token.type == "link_open":
                depth += 1
            elif token.type == "link_close":
                depth -= 1
            elif token.type == "image" and depth > 0:
                token.meta["inside_link"] = True


def _build_markdown() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark",
        {"html": False, "linkify": False, "typographer": False, "highlight": _highlight},
    )
    md.enable(["table", "strikethrough"])
    # With html=False these rules already emit nothing; disabling them makes the intent explicit.
    md.disable(["html_block", "html_inline"])
    md.add_render_rule("image", _render_image)
    md.core.ruler.push("table_align", _table_align_rule)
    md.core.ruler.push("mark_images_in_links", _mark_images_in_links_rule)
    return md


_MD: Final[MarkdownIt] = _build_markdown()


# ----------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------


class _RenderCache:
    """Thread-safe LRU of rendered HTML, bounded by the total number of cached *output* characters.

    Rendering is pure (same text -> same HTML) and the same prompt/response is typically shown to many
    annotators, so repeated renders become a dict lookup.  Large inputs bypass the cache.
    """

    def __init__(self, max_total_chars: int, max_input_chars: int) -> None:
        self.max_total_chars = max_total_chars
        self.max_input_chars = max_input_chars
        self._data: OrderedDict[str, str] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: str, value: str) -> None:
        size = len(key) + len(value)
        if len(key) > self.max_input_chars or size > self.max_total_chars:
            return
        with self._lock:
            previous = self._data.pop(key, None)
            if previous is not None:
                self._total -= len(key) + len(previous)
            self._data[key] = value
            self._total += size
            while self._total > self.max_total_chars and self._data:
                old_key, old_value = self._data.popitem(last=False)
                self._total -= len(old_key) + len(old_value)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._total = 0


#: ~8M characters of input+output per process; inputs above 64K characters are rendered every time.
_CACHE: Final = _RenderCache(max_total_chars=8_000_000, max_input_chars=64_000)


def _render_uncached(text: str) -> str:
    if len(text) > MAX_MARKDOWN_CHARS:
        return f"<pre>{escape(text)}</pre>"
    return _cleaner().clean(_MD.render(text))


def render_markdown(text: str) -> SafeString:
    """Render untrusted Markdown to sanitized HTML that is safe to insert into a page."""
    if not text:
        return SafeString("")
    text = str(text)
    html = _CACHE.get(text)
    if html is None:
        html = _render_uncached(text)
        _CACHE.put(text, html)
    return mark_safe(html)  # sanitized by nh3 with an explicit allow-list


def render_plain(text: str) -> SafeString:
    """Escape untrusted text for the "raw text" view; newlines are kept as-is (display with pre-wrap).

    ``escape`` (not ``conditional_escape``) is deliberate: an input that happens to be a ``SafeString``
    is still escaped, because prompt/response text is never trusted.
    """
    return escape(str(text) if text else "")


def _main(argv: Sequence[str]) -> int:
    if list(argv) == ["--css"]:
        sys.stdout.write(pygments_css())
        return 0
    sys.stderr.write("usage: python -m annotate.core.rendering --css\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))

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
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_TAGS",
    "ALLOWED_URL_SCHEMES",
    "LINK_REL",
    "PYGMENTS_STYLE",
    "pygments_css",
    "render_markdown",
    "render_plain",
]

# --------------------------------------------------------------------------------------------------------------
# Policy
# --------------------------------------------------------------------------------------------------------------

PYGMENTS_STYLE: Final = "friendly"
HIGHLIGHT_CSS_CLASS: Final = "highlight"
LINK_REL: Final = "noopener nofollow noreferrer"
LINK_TARGET: Final = "_blank"
ALLOWED_URL_SCHEMES: Final[frozenset[str]] = frozenset({"http", "https", "mailto"})

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

#: Free-form attributes per tag.  ``rel`` and ``target`` on ``<a>`` are *forced* (see ``_cleaner``), never
#: copied from the input.  ``class`` values are further filtered by ``_attribute_filter``.
ALLOWED_ATTRIBUTES: Final[dict[str, frozenset[str]]] = {
    "a": frozenset({"href", "title"}),
    "ol": frozenset({"start"}),
    "code": frozenset({"class"}),
    "pre": frozenset({"class"}),
    "span": frozenset({"class"}),
    "div": frozenset({"class"}),
}

#: Attributes restricted to a fixed set of values (table column alignment; see ``_table_align_rule``).
_ATTRIBUTE_VALUES: Final[dict[str, dict[str, set[str]]]] = {
    "th": {"align": {"left", "center", "right"}},
    "td": {"align": {"left", "center", "right"}},
}

#: Class names we ever emit: Pygments short token classes, the wrapper class, plus ``language-<name>``.
_ALLOWED_CLASSES: Final[frozenset[str]] = frozenset(
    {cls for cls in STANDARD_TYPES.values() if cls} | {HIGHLIGHT_CSS_CLASS, "hll"}
)
_LANGUAGE_CLASS_RE: Final = re.compile(r"language-[A-Za-z0-9_+#.-]{1,%d}" % _MAX_LANG_CHARS)
_DIGITS_RE: Final = re.compile(r"[0-9]{1,9}")
_TABLE_ALIGN_RE: Final = re.compile(r"text-align:\s*(left|center|right)")


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    """nh3 callback: narrow ``class`` to known class names and ``start`` to an integer."""
    if attr == "class":
        kept = [c for c in value.split() if c in _ALLOWED_CLASSES or _LANGUAGE_CLASS_RE.fullmatch(c)]
        return " ".join(kept) if kept else None
    if attr == "start":
        return value if _DIGITS_RE.fullmatch(value) else None
    return value


@functools.cache
def _cleaner() -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(_CLEAN_CONTENT_TAGS),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_attribute_filter,
        strip_comments=True,
        link_rel=LINK_REL,
        generic_attribute_prefixes=set(),
        tag_attribute_values=_ATTRIBUTE_VALUES,
        set_tag_attribute_values={"a": {"target": LINK_TARGET}},
        url_schemes=set(ALLOWED_URL_SCHEMES),
    )


# --------------------------------------------------------------------------------------------------------------
# Pygments
# --------------------------------------------------------------------------------------------------------------

_FORMATTER: Final = HtmlFormatter(nowrap=True, cssclass=HIGHLIGHT_CSS_CLASS)


@functools.lru_cache(maxsize=256)
def _lexer_for(lang: str) -> Lexer | None:
    """Look a lexer up by exact alias only; never guess from content."""
    try:
        return get_lexer_by_name(lang)
    except ClassNotFound:
        return None


def _highlight(code: str, lang: str, _attrs: str) -> str:
    """markdown-it ``highlight`` hook.  Returning ``""`` makes markdown-it escape the block itself."""
    lang = lang.strip().lower()
    if not lang or len(lang) > _MAX_LANG_CHARS or len(code) > MAX_HIGHLIGHT_CHARS:
        return ""
    lexer = _lexer_for(lang)
    if lexer is None:
        return ""
    body = pygments_highlight(code, lexer, _FORMATTER)
    # Starts with "<pre" so markdown-it uses it verbatim.  ``lang`` is escaped (and nh3 re-validates classes).
    return f'<pre class="{HIGHLIGHT_CSS_CLASS}"><code class="language-{escapeHtml(lang)}">{body}</code></pre>'


def pygments_css() -> str:
    """Stylesheet for highlighted code, every rule scoped under ``.highlight`` (no global ``pre`` rules)."""
    formatter = HtmlFormatter(style=PYGMENTS_STYLE, cssclass=HIGHLIGHT_CSS_CLASS)
    selector = f".{HIGHLIGHT_CSS_CLASS}"
    lines = [
        f"/* Generated by `python -m annotate.core.rendering --css` (Pygments style {PYGMENTS_STYLE!r}). */",
        "/* Do not edit by hand. */",
        *formatter.get_background_style_defs(selector),
        *formatter.get_token_style_defs(selector),
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------------------
# markdown-it
# --------------------------------------------------------------------------------------------------------------


def _render_image(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """Render ``![alt](url)`` as ``<a href="url">alt</a>`` — never an ``<img>`` (no remote fetches/tracking).

    Inside a link (``[![alt](img)](href)``) only the alt text is emitted, to avoid nested anchors.
    """
    token = tokens[idx]
    label = self.renderInlineAsText(token.children or [], options, env).strip() or "image"
    depth = 0
    for previous in tokens[:idx]:
        if previous.type == "link_open":
            depth += 1
        elif previous.type == "link_close":
            depth -= 1
    if depth > 0:
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
    return md


_MD: Final[MarkdownIt] = _build_markdown()


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------


def render_markdown(text: str) -> SafeString:
    """Render untrusted Markdown to sanitized HTML that is safe to insert into a page."""
    if not text:
        return SafeString("")
    html = _MD.render(str(text))
    return mark_safe(_cleaner().clean(html))  # noqa: S308 - sanitized by nh3 with an explicit allow-list


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

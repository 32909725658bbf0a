"""Hostile inputs for the untrusted-text renderer (prompts and model responses).

Shared by the unit tests (``tests/core/test_rendering.py``) and the browser tests, so this module must stay
free of Django (and any other third-party) imports.

Every payload that could execute script calls ``window.__xss_marker(N)`` where ``N`` is the payload's index
in ``XSS_PAYLOADS``; a browser test installs ``window.__xss_marker`` before rendering and fails if it is ever
called.  Indices are filled in automatically (``{N}`` in the templates below; ``{N64}`` is the base64 of
``<script>window.__xss_marker(N)</script>``), so entries can be reordered or added without renumbering.
"""

from __future__ import annotations

import base64

XSS_MARKER = "__xss_marker"

_TEMPLATES: tuple[str, ...] = (
    # --- plain HTML script / event handlers (must be escaped: raw HTML is off) --------------------
    "<script>window.__xss_marker({N})</script>",
    "<img src=x onerror=window.__xss_marker({N})>",
    '<svg onload="window.__xss_marker({N})"></svg>',
    "<svg><script>window.__xss_marker({N})</script></svg>",
    '<details open ontoggle="window.__xss_marker({N})"><summary>x</summary></details>',
    '<input autofocus onfocus="window.__xss_marker({N})">',
    '<body onload="window.__xss_marker({N})">',
    '<video><source onerror="window.__xss_marker({N})"></video>'
    "<audio src=x onerror=window.__xss_marker({N})>",
    '<div style="background:url(javascript:window.__xss_marker({N}))" onmouseover="window.__xss_marker({N})">'
    "hover</div>",
    # --- javascript:/data:/vbscript: links, markdown and HTML -------------------------------------
    "[click me](javascript:window.__xss_marker({N}))",
    '<a href="javascript:window.__xss_marker({N})">click me</a>',
    "[click](JaVaScRiPt:window.__xss_marker({N})) [angle](<javascript:window.__xss_marker({N})>) "
    "<javascript:window.__xss_marker({N})>",
    "[data](data:text/html,%3Cscript%3Ewindow.__xss_marker({N})%3C/script%3E)",
    "[data64](data:text/html;base64,{N64}) "
    '<a href="data:text/html,<script>window.__xss_marker({N})</script>">d</a>',
    "[vb](vbscript:window.__xss_marker({N})) [file](file:///etc/passwd)",
    "[ref link][evil]\n\n[evil]: javascript:window.__xss_marker({N})",
    '[title breakout](https://example.com "t\\" onmouseover=\\"window.__xss_marker({N})")',
    # --- markdown images (must never become <img>) ------------------------------------------------
    "![img](javascript:window.__xss_marker({N}))",
    "![svg](data:image/svg+xml,%3Csvg%20onload=window.__xss_marker({N})%3E) "
    "![png](data:image/png;base64,iVBORw0KGgo=)",
    '![x" onerror="window.__xss_marker({N})](https://example.com/a.png)',
    '![x](https://example.com/a.png "t\\" onerror=\\"window.__xss_marker({N})") '
    "![tracker](https://tracker.example/pixel.gif?u=annotator)",
    "[![nested](https://example.com/i.png)](javascript:window.__xss_marker({N}))",
    # --- entities and encodings -------------------------------------------------------------------
    "&lt;script&gt;window.__xss_marker({N})&lt;/script&gt; "
    "&#60;script&#62;window.__xss_marker({N})&#60;/script&#62;",
    "[x](&#x6a;avascript:window.__xss_marker({N})) [y](&#106;&#97;vascript&#58;window.__xss_marker({N}))",
    '<a href="&#x6a;avascript:window.__xss_marker({N})">x</a> '
    '<a href="jav&#x09;ascript:window.__xss_marker({N})">y</a>',
    "[tab](jav\tascript:window.__xss_marker({N})) [nl](java\nscript:window.__xss_marker({N})) "
    "[sp](  javascript:window.__xss_marker({N}))",
    "[u](\\u006aavascript:window.__xss_marker({N})) [pct](%6Aavascript:window.__xss_marker({N})) "
    "\uff1cscript\uff1ewindow.__xss_marker({N})\uff1c/script\uff1e",
    "<scr\u200bipt>window.__xss_marker({N})</scr\u200bipt> \u202e<script>window.__xss_marker({N})</script>",
    # --- broken / nested / mutation-XSS markup ----------------------------------------------------
    "<scr<script>ipt>window.__xss_marker({N})</scr</script>ipt>",
    "<<script>script>window.__xss_marker({N})<</script>/script> "
    "<script\n>window.__xss_marker({N})</script\n>",
    '<noscript><p title="</noscript><img src=x onerror=window.__xss_marker({N})>"></noscript>',
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss_marker({N})></style></mglyph>"
    "</table></mtext></math>",
    '<!--<img src="--><img src=x onerror=window.__xss_marker({N})//">',
    '<iframe srcdoc="&lt;script&gt;window.__xss_marker({N})&lt;/script&gt;"></iframe>'
    '<iframe src="javascript:window.__xss_marker({N})"></iframe>',
    '<object data="javascript:window.__xss_marker({N})"></object>'
    '<embed src="javascript:window.__xss_marker({N})">',
    '<form action="javascript:window.__xss_marker({N})"><button type=submit>Submit</button></form>',
    "<style>@import 'javascript:window.__xss_marker({N})'; body{background:red}</style>",
    '<meta http-equiv="refresh" content="0;url=javascript:window.__xss_marker({N})">',
    '<base href="javascript:window.__xss_marker({N})//"> [relative](/annotate/next)',
    '<link rel=stylesheet href="javascript:window.__xss_marker({N})">',
    # --- attribute / context breakouts ------------------------------------------------------------
    '"><script>window.__xss_marker({N})</script>',
    "' onmouseover='window.__xss_marker({N})' x='",
    "</textarea></title></style><script>window.__xss_marker({N})</script>",
    "`<script>window.__xss_marker({N})</script>` and ``<img src=x onerror=window.__xss_marker({N})>``",
    # --- framework attributes (htmx / Alpine / Vue) and template injection ------------------------
    '<div hx-get="/accounts/logout/" hx-trigger="load" hx-on:htmx:load="window.__xss_marker({N})">x</div>',
    '<div x-data x-init="window.__xss_marker({N})" @click="window.__xss_marker({N})">x</div>',
    "{{7*7}} {{constructor.constructor('window.__xss_marker({N})')()}} {% debug %} {{ request.user }}",
    "{% load static %}{% include 'admin/base.html' %}${7*7} #{7*7} <%= 7*7 %>",
    # --- fenced / indented code -------------------------------------------------------------------
    "```python\n</code></pre><script>window.__xss_marker({N})</script>\n```",
    "```\n</code></pre><img src=x onerror=window.__xss_marker({N})>\n```",
    '```"><script>window.__xss_marker({N})</script>\n</code></pre><script>window.__xss_marker({N})</script>\n```',
    "```html\n<script>window.__xss_marker({N})</script>\n<img src=x onerror=alert({N})>\n```",
    "    </code></pre><script>window.__xss_marker({N})</script>",
    # --- tables -----------------------------------------------------------------------------------
    "| a | b |\n|---|---|\n| <img src=x onerror=window.__xss_marker({N})> | [x](javascript:alert({N})) |",
)


def _fill(template: str, index: int) -> str:
    script = f"<script>window.{XSS_MARKER}({index})</script>"
    encoded = base64.b64encode(script.encode()).decode("ascii")
    return template.replace("{N64}", encoded).replace("{N}", str(index))


XSS_PAYLOADS: list[str] = [_fill(template, index) for index, template in enumerate(_TEMPLATES)]

__all__ = ["XSS_MARKER", "XSS_PAYLOADS"]

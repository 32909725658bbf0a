"""Hostile prompts and responses (tests/xss_payloads.py) shown in a real browser: nothing runs, nothing is
fetched from elsewhere, and the payloads read as text, rendered and raw."""

from __future__ import annotations

from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import Workbench, item_with
from tests.xss_payloads import XSS_MARKER, XSS_PAYLOADS

PER_ITEM = 11  # 2 + 2 + 2 in a three-turn conversation, 3 + 2 in the responses

INIT = f"window.__xss_calls = []; window.{XSS_MARKER} = (n) => window.__xss_calls.push(n);"

DANGEROUS_DOM = """() => {
  const root = document.getElementById('workbench');
  const bad = [];
  for (const el of root.querySelectorAll('*')) {
    const tag = el.tagName.toLowerCase();
    if (['script', 'iframe', 'img', 'object', 'embed', 'svg', 'math', 'video', 'audio', 'base', 'meta',
         'link', 'style', 'noscript'].includes(tag)) bad.push(tag);
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      if (name.startsWith('on') || name === 'style' || name === 'srcdoc' || name.startsWith('hx-')
          || name.startsWith('x-') || name.startsWith('@')) bad.push(tag + '[' + name + ']');
      if (['href', 'src', 'action', 'formaction', 'data'].includes(name)
          && /^\\s*(javascript|data|vbscript|file):/i.test(attr.value)) {
        bad.push(tag + '[' + name + '=' + attr.value + ']');
      }
    }
  }
  return bad;
}"""


def _plain_html(payload: str) -> bool:
    """A payload of HTML only (no Markdown syntax, no entities): it must read exactly as it was sent."""
    return payload.startswith("<") and payload.isascii() and not any(c in payload for c in "&`[*\n\\")


def _spread(payloads: list[str]) -> tuple[list[dict[str, str]], list[str]]:
    p = payloads + [""] * (PER_ITEM - len(payloads))
    conversation = [
        {"role": "user", "content": f"{p[0]}\n\n{p[1]}"},
        {"role": "assistant", "content": f"{p[2]}\n\n{p[3]}"},
        {"role": "user", "content": f"{p[4]}\n\n{p[5]}"},
    ]
    return conversation, [f"{p[6]}\n\n{p[7]}\n\n{p[8]}", f"{p[9]}\n\n{p[10]}"]


def test_hostile_text_never_runs_and_reads_as_text(wb: Workbench) -> None:
    user = factories.annotator(username="sam", tracks=["helpfulness"])
    batch = factories.BatchFactory(guidelines="")
    chunks = [XSS_PAYLOADS[i : i + PER_ITEM] for i in range(0, len(XSS_PAYLOADS), PER_ITEM)]
    contents = []
    for n, chunk in enumerate(chunks):
        conversation, responses = _spread(chunk)
        conversation[0]["content"] += f"\n\nItem {n}."  # distinct conversations
        item_with(batch, conversation, responses)
        contents.append((conversation, responses))
    page = wb.page
    page.add_init_script(INIT)
    wb.login(user, start=f"/b/{batch.pk}/")

    seen = checked = 0
    while page.locator("#workbench[data-state=item]").count():
        assignment = wb.assignment_id()
        expect(page.locator(".conversation .turn")).to_have_count(3)
        raw_texts = [page.locator(".conversation .turn .raw").nth(i).text_content() for i in range(3)]
        conversation = next(c for c, _ in contents if c[0]["content"] == raw_texts[0])
        responses = next(r for c, r in contents if c is conversation)
        assert raw_texts == [m["content"] for m in conversation]

        # The payloads read as text: each conversation paragraph and each response, as sent.
        for message in conversation:
            for payload in (p for p in message["content"].split("\n\n") if p in XSS_PAYLOADS):
                if _plain_html(payload):
                    rendered = page.locator(".conversation .turn .rendered")
                    expect(rendered.get_by_text(payload, exact=True).first).to_be_visible()
                    checked += 1
        for body in page.locator("#responses .response-body.rendered").all():
            body.hover()
        assert page.evaluate(DANGEROUS_DOM) == []

        page.keyboard.press("t")  # raw text everywhere: exactly the characters that were sent
        for card in page.locator("#responses > .response-card").all():
            raw = card.locator(".response-body.raw")
            expect(raw).to_be_visible()
            assert raw.text_content() in responses
        expect(page.locator(".conversation .turn .raw").first).to_be_visible()
        page.keyboard.press("t")
        expect(page.locator(".conversation .turn .raw").first).to_be_hidden()
        assert page.evaluate("window.__xss_calls") == []

        page.keyboard.press("a")
        page.keyboard.press("r")
        page.keyboard.press("Enter")
        wb.wait_for_new_item(assignment)
        seen += 1

    assert seen == len(chunks)
    assert checked >= 10
    expect(page.locator("#workbench[data-state=done]")).to_be_visible()
    assert page.evaluate("window.__xss_calls") == []
    assert page.evaluate("typeof window.__xss_marker") == "function"  # the trap was armed all along

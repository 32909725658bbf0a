"""One screenshot of each page kind, saved to test-artifacts/ for a human to look at."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from annotate.core.choices import Mode, Track
from tests import factories
from tests.browser.conftest import Workbench, item_with

CONVERSATION = [
    {
        "role": "user",
        "content": "I keep getting `KeyError` when I read a CSV with pandas. What am I doing wrong?",
    },
    {
        "role": "assistant",
        "content": "Could you share the line that fails and the first rows of the file?",
    },
    {
        "role": "user",
        "content": "Here it is:\n\n```python\ndf = pd.read_csv('sales.csv')\nprint(df['Total'])\n```\n\n"
        "The header row is `date;region;total`.",
    },
]

ANSWER_A = """Two things are going on:

1. The file uses **semicolons**, so pandas reads one single column.
2. The column is `total`, not `Total` — names are case-sensitive.

```python
df = pd.read_csv("sales.csv", sep=";")
print(df["total"].sum())
```

| option | meaning |
|---|---|
| `sep=";"` | the field separator |
| `usecols` | read only some columns |

> Tip: `df.columns.tolist()` shows what pandas actually found.
"""

ANSWER_B = """You should use `df.get('Total')` which returns `None` instead of raising.

That avoids the error. You can also wrap the access in a `try`/`except KeyError` block and print a
message so the script continues. Consider upgrading pandas too, since older versions had different
behaviour for missing columns in some cases.
"""


def _shot(wb: Workbench, folder: Path, name: str, *, full_page: bool = True) -> None:
    path = folder / f"browser-{name}.png"
    wb.page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 5_000


def test_screenshots_of_every_page_kind(wb: Workbench, artifacts_dir: Path) -> None:
    user = factories.annotator(username="wren", tracks=["helpfulness", "safety"])
    pairwise = factories.BatchFactory(name="Helpfulness · week 32", description="Coding and data questions.")
    item_with(pairwise, CONVERSATION, [ANSWER_A, ANSWER_B])
    ranking = factories.ready_batch(
        items=1, name="Ranking · K=4", mode=Mode.RANKING, responses_per_item=4, guidelines=""
    )
    safety = factories.ready_batch(items=1, name="Red-team · week 32", track=Track.SAFETY, guidelines="")
    page = wb.page

    wb.goto("/accounts/login/")
    _shot(wb, artifacts_dir, "login")
    wb.login(user)
    expect(page.locator(".batch-card")).to_have_count(3)
    _shot(wb, artifacts_dir, "home")

    wb.goto(f"/b/{pairwise.pk}/")
    expect(page.locator(".guidelines")).to_be_visible()
    _shot(wb, artifacts_dir, "guidelines")
    page.get_by_role("button", name="I have read the guidelines, start").click()
    expect(page.locator("#workbench[data-state=item]")).to_be_visible()
    page.keyboard.press("a")
    page.keyboard.press("w")
    page.focus("#rationale")
    page.keyboard.type("A finds both causes and shows the fix.")
    page.keyboard.press("Escape")
    _shot(wb, artifacts_dir, "pairwise-item")
    page.keyboard.press("?")
    expect(page.locator("#help-dialog")).to_be_visible()
    _shot(wb, artifacts_dir, "help", full_page=False)
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    expect(page.locator("#workbench[data-state=done]")).to_be_visible()
    _shot(wb, artifacts_dir, "done")

    wb.goto(f"/b/{ranking.pk}/")
    page.keyboard.press("3")
    page.keyboard.press("ArrowUp")
    _shot(wb, artifacts_dir, "ranking-item")

    wb.goto(f"/b/{safety.pk}/")
    for key in "bzmq":
        page.keyboard.press(key)
    expect(page.locator("#confirm-unsafe")).to_be_visible()
    _shot(wb, artifacts_dir, "safety-item")

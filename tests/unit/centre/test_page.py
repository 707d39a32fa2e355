"""The page is accessible and escapes what it shows: its language is declared, every control
has a label, groups have a legend, hints are tied to their controls, data cannot inject markup."""
from __future__ import annotations

from html.parser import HTMLParser

from streams.centre.choices import CHANNELS, TOPICS, Choices
from streams.centre.page import forbidden_page, preference_page


class Outline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag: str) -> list[dict]:
        return [attrs for t, attrs in self.tags if t == tag]


def _outline(html: str) -> Outline:
    parsed = Outline()
    parsed.feed(html)
    return parsed


CHOICES = Choices({ch: ch == "push" for ch in CHANNELS}, "21:00-08:00", 3, ("electric",),
                  {"push": 1_790_000_000_000})
MESSAGES = [{"at_ms": 1_790_000_000_000, "channel": "push", "rule": "r",
             "why": "<script>alert(1)</script> & more"}]


def _page(lang="en", **more) -> str:
    return preference_page(lang=lang, choices=CHOICES, topics=TOPICS, csrf="c\"srf",
                           action="/p/tok", messages=MESSAGES, **more)


def test_every_control_has_a_label_and_every_group_a_legend():
    for lang in ("en", "fr"):
        page = _outline(_page(lang, notice=("status", "ok")))
        assert page.all("html") == [{"lang": lang}]
        assert len(page.all("h1")) == 1 and page.all("main")
        labelled = {attrs["for"] for attrs in page.all("label")}
        controls = [a for a in page.all("input") if a.get("type") != "hidden"]
        assert len(controls) == len(CHANNELS) + len(TOPICS) + 3
        assert all(a["id"] in labelled for a in controls)
        assert len(page.all("fieldset")) == len(page.all("legend")) == 3
        ids = {a["id"] for _t, a in page.tags if "id" in a}
        described = [a["aria-describedby"] for _t, a in page.tags if "aria-describedby" in a]
        assert described and all(d in ids for d in described)
        assert [a["role"] for _t, a in page.tags if "role" in a] == ["status"]
        checked = [a["value"] for a in controls if "checked" in a]
        assert checked == ["push", "electric"]


def test_data_is_escaped():
    html = _page()
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp; more" in html
    assert 'value="c&quot;srf"' in html


def test_the_refusal_page_says_nothing_of_the_person():
    for lang in ("en", "fr"):
        page = forbidden_page(lang)
        assert f'lang="{lang}"' in page and "<form" not in page

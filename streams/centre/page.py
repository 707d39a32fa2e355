"""The preference page, as HTML text: one form, readable without CSS or JavaScript.

Accessibility: the document says its language; every control has a `<label>`; the channels and
the topics are `<fieldset>`s with a `<legend>`; hints are tied to their controls with
`aria-describedby`; the outcome of a save is a `role="status"` (or `role="alert"`) message at the
top of the form; the page has one `<h1>` and a `<main>`. Everything that comes from data is
escaped (`html.escape`), and the page loads nothing but its own stylesheet.
"""
from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from streams.centre.choices import CHANNELS, MAX_PER_DAY, Choices
from streams.centre.texts import TEXTS

__all__ = ["STYLE", "forbidden_page", "preference_page"]

STYLE = """body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;
line-height:1.5;color:#1b1b1b}fieldset{border:1px solid #767676;margin:1rem 0;padding:.5rem 1rem}
legend{font-weight:600}label{display:inline-block;margin:.25rem 0}.hint{color:#4a4a4a;margin:0}
input[type=time],input[type=number]{font-size:1rem}button{font-size:1rem;padding:.5rem 1rem}
[role=status]{border-left:4px solid #0a7a2f;padding:.25rem .75rem}
[role=alert]{border-left:4px solid #b00020;padding:.25rem .75rem}
.since{color:#4a4a4a;font-size:.9rem}li{margin:.5rem 0}
:focus{outline:3px solid #1a5fb4;outline-offset:2px}
"""


def _when(ms: int | None, lang: str) -> str:
    if not ms:
        return ""
    moment = datetime.fromtimestamp(ms / 1000, timezone.utc)
    return moment.strftime("%d/%m/%Y %H:%M UTC" if lang == "fr" else "%Y-%m-%d %H:%M UTC")


def _head(lang: str, title: str) -> list[str]:
    return ['<!doctype html>', f'<html lang="{lang}">', '<head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="referrer" content="same-origin">',
            f'<title>{escape(title)}</title>',
            '<link rel="stylesheet" href="/static/centre.css"></head>', '<body><main>',
            f'<h1>{escape(title)}</h1>']


def forbidden_page(lang: str) -> str:
    t = TEXTS[lang]
    return "\n".join([*_head(lang, t["forbidden_title"]), f'<p>{escape(t["forbidden"])}</p>',
                      "</main></body></html>"])


def preference_page(*, lang: str, choices: Choices, topics: tuple[str, ...], csrf: str,
                    action: str, messages: list[dict] | None, notice: tuple[str, str] | None = None
                    ) -> str:
    """The page for `choices`. `action`: the form's own URL (the link). `messages`: the last
    messages sent ({at_ms, channel, why}); None when they cannot be read. `notice`: (kind, text)
    with kind "status" or "alert"."""
    t = TEXTS[lang]
    other = t["language_code"]
    out = _head(lang, t["title"])
    out.append(f'<p><a href="?lang={other}" lang="{other}" hreflang="{other}">'
               f'{escape(t["language"])}</a></p>')
    out.append(f'<p>{escape(t["intro"])}</p>')
    if notice:
        kind, text = notice
        out.append(f'<p role="{"alert" if kind == "alert" else "status"}" id="notice">'
                   f'{escape(text)}</p>')
    out.append(f'<form method="post" action="{escape(action)}">')
    out.append(f'<input type="hidden" name="csrf" value="{escape(csrf)}">')
    out.append(f'<input type="hidden" name="lang" value="{lang}">')
    out.append('<fieldset aria-describedby="channels-hint">'
               f'<legend>{escape(t["channels"])}</legend>'
               f'<p class="hint" id="channels-hint">{escape(t["channels_hint"])}</p>')
    for ch in CHANNELS:
        checked = " checked" if choices.channels[ch] else ""
        since = _when(choices.since.get(ch), lang)
        note = (f' <span class="since">{escape(t["since"].format(when=since))}</span>'
                if since else "")
        out.append(f'<div><input type="checkbox" name="channel" value="{ch}" id="channel-{ch}"'
                   f'{checked}> <label for="channel-{ch}">{escape(t["channel." + ch])}</label>'
                   f'{note}</div>')
    out.append("</fieldset>")
    start, _, end = choices.quiet_hours.partition("-")
    out.append('<fieldset aria-describedby="quiet-hint">'
               f'<legend>{escape(t["quiet"])}</legend>'
               f'<p class="hint" id="quiet-hint">{escape(t["quiet_hint"])}</p>'
               f'<label for="quiet-start">{escape(t["quiet_start"])}</label> '
               f'<input type="time" name="quiet_start" id="quiet-start" value="{escape(start)}"> '
               f'<label for="quiet-end">{escape(t["quiet_end"])}</label> '
               f'<input type="time" name="quiet_end" id="quiet-end" value="{escape(end)}">'
               '</fieldset>')
    out.append(f'<p><label for="max-per-day">{escape(t["max"])}</label> '
               f'<input type="number" name="max_per_day" id="max-per-day" min="0" '
               f'max="{MAX_PER_DAY}" step="1" required value="{choices.max_per_day}" '
               f'aria-describedby="max-hint"> <span class="hint" id="max-hint">'
               f'{escape(t["max_hint"])}</span></p>')
    if topics:
        out.append(f'<fieldset><legend>{escape(t["topics"])}</legend>')
        for topic in topics:
            checked = " checked" if topic in choices.topics else ""
            label = t.get("topic." + topic, topic.replace("_", " "))
            out.append(f'<div><input type="checkbox" name="topic" value="{escape(topic)}" '
                       f'id="topic-{escape(topic)}"{checked}> '
                       f'<label for="topic-{escape(topic)}">{escape(label)}</label></div>')
        out.append("</fieldset>")
    out.append(f'<p><button type="submit" id="save">{escape(t["save"])}</button></p></form>')
    out.append(f'<h2>{escape(t["messages"])}</h2>')
    if messages is None:
        out.append(f'<p>{escape(t["messages_unknown"])}</p>')
    elif not messages:
        out.append(f'<p>{escape(t["messages_none"])}</p>')
    else:
        out.append('<ul id="messages">')
        for m in messages:
            channel = t.get("channel." + m["channel"], m["channel"])
            sent = t["on"].format(channel=channel, when=_when(m["at_ms"], lang))
            out.append(f'<li>{escape(sent)}<br>{escape(t["because"].format(why=m["why"]))}</li>')
        out.append("</ul>")
    out.append("</main></body></html>")
    return "\n".join(out)

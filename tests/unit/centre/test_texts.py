"""The page's words: both languages say everything, and a request gets its language."""
from __future__ import annotations

from streams.centre.choices import CHANNELS, TOPICS
from streams.centre.texts import TEXTS, language


def test_french_and_english_have_the_same_texts_and_placeholders():
    assert TEXTS["en"].keys() == TEXTS["fr"].keys()
    for key, english in TEXTS["en"].items():
        assert english.count("{") == TEXTS["fr"][key].count("{"), key
    for name in [*(f"channel.{c}" for c in CHANNELS), *(f"topic.{t}" for t in TOPICS)]:
        assert TEXTS["en"][name] and TEXTS["fr"][name]


def test_the_language_of_a_request():
    assert language("fr", "en-GB") == "fr"
    assert language(None, "fr-FR,fr;q=0.9,en;q=0.8") == "fr"
    assert language(None, "de-DE,en;q=0.5,fr;q=0.7") == "fr"
    assert language(None, "de") == language(None, None) == language("xx", "") == "en"
    assert language(None, "fr;q=bad,en") == "en"

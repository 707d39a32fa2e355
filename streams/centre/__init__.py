"""The preference centre: people see and change what they welcome, by a signed link.

Reading guide:
- `tokens.py`: the signed, expiring links (`sign`, `verify`) and the form's CSRF token;
- `choices.py`: a person's choices as plain data; the only ways in (`from_form`, `from_json`);
  what a change becomes (`records`, preference records on the `preferences` topic); the current
  choices folded from their touchpoints (`current`);
- `state.py`: where the page's state comes from (ClickHouse, plus this server's own saves);
- `app.py`: the aiohttp application (page, API, CSRF, rate limits, headers); `page.py` and
  `texts.py` are its HTML and its words in English and French; `limits.py` its rate limiter;
- `settings.py`: the environment variables. The commands are `parcours serve` and
  `parcours preferences link` (streams/cli/serve.py, streams/cli/preferences.py).

`tokens`, `choices`, `texts`, `page` and `limits` are plain code over plain data, like the rest
of the functional core; `state` and `app` are the shell.
"""

"""The resident service: a JSON API and a web page over one `Client` (`mmsearch serve`).

`app` has the routes, `service` what they do, `auth` who is calling, `tokens` the API
tokens, `reads` single-row reads under RLS, `files` media and thumbnails, `server` the
process, `discovery` how a local CLI finds it and `remote` the CLI's side of the API.
"""

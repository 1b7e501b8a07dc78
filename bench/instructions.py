#!/usr/bin/env python3
"""Fixed-count /flags client for bench/instructions.sh (stdlib only).

Usage: instructions.py URL TOKEN N
Sends N `POST /flags/?v=2` requests one after another on one keep-alive connection, with the
body bench/flags.lua sends (posthog-python's shape, a fresh distinct id per request), and checks
that each is answered 200 (a ceiling answers any path).
"""
import http.client
import sys
import urllib.parse

BODY = (
    '{"token":"%s","distinct_id":"user-%d","groups":{"company":"acme-%d"},'
    '"person_properties":{"email":"user%d@example.com","plan":"pro","country":"US","age":34,'
    '"$app_version":"3.4.1","$browser":"Chrome","utm_source":"newsletter",'
    '"signup_date":"2025-06-01","beta_opt_in":true,"seats":12},'
    '"group_properties":{"company":{"seats":42,"industry":"saas"}},"geoip_disable":true}'
)


def main():
    url, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    headers = {"Content-Type": "application/json", "User-Agent": "posthog-python/7.91.1"}
    for i in range(n):
        body = BODY % (token, i, i % 97, i)
        conn.request("POST", "/flags/?v=2", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            sys.exit(f"request {i}: HTTP {resp.status}")
    conn.close()


if __name__ == "__main__":
    main()

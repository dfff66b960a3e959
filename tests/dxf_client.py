#!/usr/bin/env python3
"""A registry client built on python-dxf, driven by tests/python_dxf.rs.

python-dxf does Docker token auth itself: on a 401 it calls our `auth` callback with the
response, and `DXF.authenticate(user, password, response=...)` reads the Bearer challenge
(realm, service, scope), fetches a token from the realm with Basic credentials and retries.

Usage:
    dxf_client.py HOST:PORT REPO USER PASSWORD CA_FILE push-blob FILE
    dxf_client.py HOST:PORT REPO USER PASSWORD CA_FILE pull-blob DIGEST OUT_FILE
    dxf_client.py HOST:PORT REPO USER PASSWORD CA_FILE push-blob-expect-denied FILE

push-blob prints the blob's digest; pull-blob writes the blob to OUT_FILE (python-dxf checks
its digest while reading) and prints the digest; push-blob-expect-denied exits 0 only when
the push fails with HTTP 401 or 403 (and prints what the registry answered). Every failure
exits non-zero with a message on stderr.
"""

import sys

try:
    import requests
    from dxf import DXF
    from dxf.exceptions import DXFError, DXFUnauthorizedError
except ImportError as e:  # pragma: no cover - reported to the Rust test
    sys.stderr.write(
        "dxf_client: python-dxf is not installed (%s); run `python3 -m pip install python-dxf`\n" % e
    )
    sys.exit(3)


def log(message):
    sys.stderr.write("dxf_client: %s\n" % message)
    sys.stderr.flush()


def describe_response(response):
    """Status, WWW-Authenticate and body of a failed request."""
    return "HTTP %d for %s %s; WWW-Authenticate: %s; body: %s" % (
        response.status_code,
        response.request.method if response.request is not None else "?",
        response.url,
        response.headers.get("WWW-Authenticate", "-"),
        response.text.strip()[:500],
    )


class Client(object):
    """A DXF client that remembers the last response it got.

    python-dxf raises DXFUnauthorizedError (without the response) when a request is still
    401 after authenticating; the remembered response says what the registry answered.
    """

    def __init__(self, host, repo, user, password, ca_file):
        self.last = None

        def auth(dxf, response):
            challenge = response.headers.get("WWW-Authenticate", "-")
            log("%s %s -> %d, challenge: %s" % (
                response.request.method, response.url, response.status_code, challenge))
            dxf.authenticate(user, password, response=response)
            log("got a token from the realm")

        self.dxf = DXF(host, repo, auth=auth, tlsverify=ca_file, timeout=60)

    def __enter__(self):
        self.dxf.__enter__()
        # The requests.Session python-dxf opened for this context: record every response.
        session = self.dxf._sessions[0]  # pylint: disable=protected-access
        session.hooks["response"].append(self._record)
        return self.dxf

    def __exit__(self, *args):
        return self.dxf.__exit__(*args)

    def _record(self, response, *_args, **_kwargs):
        self.last = response
        return response

    def describe_failure(self, error):
        """What went wrong, with the registry's answer when there was one."""
        response = getattr(error, "response", None)
        if response is None and isinstance(error, DXFUnauthorizedError):
            response = self.last
        if response is None:
            return "%s: %s" % (type(error).__name__, error)
        return "%s: %s" % (type(error).__name__, describe_response(response))


def main(argv):
    if len(argv) < 7:
        sys.stderr.write(__doc__)
        return 2
    host, repo, user, password, ca_file, action = argv[1:7]
    rest = argv[7:]
    client = Client(host, repo, user, password, ca_file)
    failures = (requests.exceptions.RequestException, DXFError, OSError)

    if action == "push-blob" and len(rest) == 1:
        try:
            with client as dxf:
                digest = dxf.push_blob(rest[0])
        except failures as e:
            log("push failed: " + client.describe_failure(e))
            return 1
        print(digest)
        return 0

    if action == "pull-blob" and len(rest) == 2:
        digest, out = rest
        try:
            with client as dxf, open(out, "wb") as f:
                for chunk in dxf.pull_blob(digest):
                    f.write(chunk)
        except failures as e:
            log("pull failed: " + client.describe_failure(e))
            return 1
        print(digest)
        return 0

    if action == "push-blob-expect-denied" and len(rest) == 1:
        try:
            with client as dxf:
                digest = dxf.push_blob(rest[0])
        except failures as e:
            detail = client.describe_failure(e)
            response = getattr(e, "response", None) or client.last
            if isinstance(e, (DXFUnauthorizedError, requests.exceptions.HTTPError)) \
                    and response is not None and response.status_code in (401, 403):
                print("denied: " + detail)
                return 0
            log("push failed, but not with 401/403: " + detail)
            return 1
        log("push was NOT denied: the registry accepted %s" % digest)
        return 1

    sys.stderr.write("dxf_client: unknown action or wrong arguments: %r\n" % (argv[6:],))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""A relying party built on Authlib's OAuth 2.0 client, driven by tests/api/op.rs.

Same protocol as rp.mjs: prints {"port": N} when ready; /start?client_id=&client_secret=
discovers, redirects with PKCE S256, state and nonce; /cb exchanges the code
(client_secret_basic), validates the ID token against the JWKS (iss, aud, exp, nonce),
calls userinfo, refreshes, prints {"event": "signed_in", ...}.
"""
import json
import secrets
import sys
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import requests
from authlib.integrations.requests_client import OAuth2Session

warnings.simplefilter("ignore")
from authlib.jose import JsonWebKey, jwt  # noqa: E402
from authlib.oidc.core import CodeIDToken  # noqa: E402

ISSUER = sys.argv[1]
SCOPE = sys.argv[2] if len(sys.argv) > 2 else "openid email profile roles"
FLOWS = {}
LOCK = threading.Lock()


def emit(obj):
    with LOCK:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body="", location=None):
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body.encode())

    def do_GET(self):
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        port = self.server.server_address[1]
        redirect_uri = f"http://127.0.0.1:{port}/cb"
        try:
            if url.path == "/start":
                meta = requests.get(ISSUER + "/.well-known/openid-configuration", timeout=10).json()
                session = OAuth2Session(
                    q["client_id"],
                    q.get("client_secret"),
                    scope=SCOPE,
                    redirect_uri=redirect_uri,
                    code_challenge_method="S256",
                    token_endpoint_auth_method="client_secret_basic",
                )
                verifier = secrets.token_urlsafe(48)
                nonce = secrets.token_urlsafe(16)
                uri, state = session.create_authorization_url(
                    meta["authorization_endpoint"], nonce=nonce, code_verifier=verifier
                )
                FLOWS[state] = (session, meta, verifier, nonce, q["client_id"])
                return self.answer(302, location=uri)
            if url.path == "/cb":
                session, meta, verifier, nonce, client_id = FLOWS[q["state"]]
                token = session.fetch_token(
                    meta["token_endpoint"],
                    authorization_response=f"http://127.0.0.1:{port}{self.path}",
                    code_verifier=verifier,
                )
                jwks = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
                claims = jwt.decode(
                    token["id_token"],
                    jwks,
                    claims_cls=CodeIDToken,
                    claims_options={"iss": {"essential": True, "value": ISSUER}},
                    claims_params={"nonce": nonce, "client_id": client_id},
                )
                claims.validate()
                userinfo = session.get(meta["userinfo_endpoint"]).json()
                refreshed = session.refresh_token(
                    meta["token_endpoint"], refresh_token=token["refresh_token"]
                )
                emit({
                    "event": "signed_in",
                    "claims": dict(claims),
                    "userinfo": userinfo,
                    "refreshed_new_token": refreshed["refresh_token"] != token["refresh_token"],
                    "iss": q.get("iss"),
                })
                return self.answer(200, '<!doctype html><p id="rp-done">Signed in to the app</p>')
            return self.answer(404)
        except Exception as e:  # noqa: BLE001
            emit({"event": "error", "message": repr(e)})
            return self.answer(500, f'<!doctype html><p id="rp-error">{e!r}</p>')


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
emit({"port": server.server_address[1]})
server.serve_forever()

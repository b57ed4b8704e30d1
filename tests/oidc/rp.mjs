// A relying party built on the certified `openid-client` library, driven by tests/api/op.rs.
//
// It listens on loopback and prints one JSON line when ready ({"port": N}). A browser then
// visits /start?client_id=...&client_secret=...&auth=post|basic|none: discovery, a redirect to
// the authorization endpoint with PKCE S256, state and nonce. /cb runs the code grant (ID token
// checked against the JWKS, the nonce, the state and RFC 9207 `iss`), userinfo and a refresh,
// prints {"event": "signed_in", ...} and sends the browser to the end-session endpoint;
// /logged-out prints {"event": "logged_out", ...}. Failures print {"event": "error", ...}.
import http from 'node:http';
import * as client from 'openid-client';

const issuer = process.argv[2];
const scope = process.argv[3] || 'openid email profile roles';
const flows = new Map();
let port;

const print = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

async function configure(clientId, secret, auth) {
  const authMethod =
    auth === 'none' ? client.None() :
    auth === 'basic' ? client.ClientSecretBasic(secret) : client.ClientSecretPost(secret);
  return client.discovery(new URL(issuer), clientId, undefined, authMethod, {
    execute: [client.allowInsecureRequests],
  });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, `http://127.0.0.1:${port}`);
  try {
    if (url.pathname === '/start') {
      const clientId = url.searchParams.get('client_id');
      const config = await configure(clientId, url.searchParams.get('client_secret'), url.searchParams.get('auth') || 'post');
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      flows.set(state, { config, verifier, nonce });
      const params = {
        redirect_uri: `http://127.0.0.1:${port}/cb`,
        scope,
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
      };
      if (url.searchParams.get('prompt')) params.prompt = url.searchParams.get('prompt');
      if (url.searchParams.get('max_age')) params.max_age = url.searchParams.get('max_age');
      res.writeHead(302, { location: client.buildAuthorizationUrl(config, params).href });
      return res.end();
    }
    if (url.pathname === '/cb') {
      const flow = flows.get(url.searchParams.get('state'));
      if (!flow) throw new Error(`unknown state in ${url.search}`);
      const { config, verifier, nonce } = flow;
      const tokens = await client.authorizationCodeGrant(config, url, {
        pkceCodeVerifier: verifier,
        expectedState: url.searchParams.get('state'),
        expectedNonce: nonce,
        idTokenExpected: true,
      });
      const claims = tokens.claims();
      const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
      const refreshedClaims = refreshed.claims();
      print({
        event: 'signed_in',
        claims,
        userinfo,
        refreshed_sub: refreshedClaims && refreshedClaims.sub,
        refreshed_new_token: refreshed.refresh_token !== tokens.refresh_token,
        scope: tokens.scope,
        code: url.searchParams.get('code'),
        iss: url.searchParams.get('iss'),
      });
      const end = client.buildEndSessionUrl(config, {
        id_token_hint: tokens.id_token,
        post_logout_redirect_uri: `http://127.0.0.1:${port}/logged-out`,
        state: 'bye',
      });
      res.writeHead(302, { location: end.href });
      return res.end();
    }
    if (url.pathname === '/logged-out') {
      print({ event: 'logged_out', state: url.searchParams.get('state') });
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end('<!doctype html><p id="rp-done">Signed out of the app</p>');
    }
    res.writeHead(404);
    res.end();
  } catch (e) {
    print({ event: 'error', message: String(e && e.message || e), code: e && (e.code || e.error) });
    res.writeHead(500, { 'content-type': 'text/html' });
    res.end(`<!doctype html><p id="rp-error">${String(e)}</p>`);
  }
});

server.listen(0, '127.0.0.1', () => {
  port = server.address().port;
  print({ port });
});

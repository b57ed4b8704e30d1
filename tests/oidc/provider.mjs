// A real OpenID provider (the certified `oidc-provider` package) on a free loopback port, for
// tests/api/oauth.rs. Usage: node provider.mjs CLIENT_ID CLIENT_SECRET REDIRECT_URI
// Prints one JSON line {"issuer": "http://127.0.0.1:PORT"} once it listens.
//
// Sign-in is driven by plain HTTP: the login interaction signs in the account named by the
// authorization request's `login_hint` (no form), and consent is granted at once. An account
// `NAME` has the email NAME@example.com, verified unless NAME ends in `.unverified`.
// `GET /__test/forge?mode=newkid|samekid` makes the next token response carry an ID token signed
// with a key that is not the provider's (under a new key id, or under the provider's own).
import http from 'node:http';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const [clientId, clientSecret, redirectUri] = process.argv.slice(2);
if (!redirectUri) {
  console.error('usage: node provider.mjs CLIENT_ID CLIENT_SECRET REDIRECT_URI');
  process.exit(2);
}

const signing = await jose.generateKeyPair('RS256', { extractable: true });
const publicJwk = { ...(await jose.exportJWK(signing.privateKey)), kid: 'provider-key', alg: 'RS256', use: 'sig' };
const foreign = await jose.generateKeyPair('RS256');
let forge = null;

async function forged(idToken) {
  const payload = jose.decodeJwt(idToken);
  const kid = forge === 'samekid' ? 'provider-key' : 'forged-key';
  return new jose.SignJWT(payload)
    .setProtectedHeader({ alg: 'RS256', kid })
    .sign(foreign.privateKey);
}

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [publicJwk] },
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  features: { devInteractions: { enabled: false } },
  cookies: { keys: ['gatehouse-test-cookie-key'] },
  async findAccount(ctx, id) {
    const name = id.replace(/\.unverified$/, '');
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${name}@example.com`, email_verified: !id.endsWith('.unverified'), name };
      },
    };
  },
});

provider.use(async (ctx, next) => {
  await next();
  if (forge && ctx.path === '/token' && ctx.body && ctx.body.id_token) {
    ctx.body = { ...ctx.body, id_token: await forged(ctx.body.id_token) };
    forge = null;
  }
});

const callback = provider.callback();
server.on('request', async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (url.pathname === '/__test/forge') {
      forge = url.searchParams.get('mode') || 'newkid';
      res.end('ok');
      return;
    }
    if (url.pathname.startsWith('/interaction/')) {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        const accountId = details.params.login_hint;
        if (!accountId) {
          res.statusCode = 400;
          res.end('send login_hint');
          return;
        }
        await provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
        return;
      }
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    callback(req, res);
  } catch (e) {
    res.statusCode = 500;
    res.end(String(e));
  }
});

console.log(JSON.stringify({ issuer }));

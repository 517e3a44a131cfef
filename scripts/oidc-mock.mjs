// A real OpenID provider for tests and the README walk: the npm package oauth2-mock-server 8.x
// (discovery, JWKS, authorization code with PKCE, signed ID tokens, end_session_endpoint).
//
//   CITYDATA_OIDC_MOCK=~/.cache/citydata-oidc-mock node scripts/oidc-mock.mjs [port] [--serve]
//
// OIDC_MOCK_CLAIMS (JSON) sets the first claims added to every ID token. Without `--serve` the
// provider stops when its stdin closes (the tests drive it through stdin); with `--serve` it
// keeps running (the README walk: start it in the background).
// CITYDATA_OIDC_MOCK is the npm prefix the package was installed into
// (`npm install --prefix DIR oauth2-mock-server@8`). Prints one JSON line
// {"issuer", "port", "kid"} once listening, then reads commands, one JSON object a line on
// stdin, and answers each with one JSON line:
//   {"cmd":"claims","claims":{...}}  claims added to every ID token from now on
//   {"cmd":"next","mode":"..."}      the next ID token only: "wrong_nonce", "wrong_aud",
//                                    "expired" (exp an hour ago) or "tamper" (payload changed
//                                    after signing)
//   {"cmd":"rotate"}                 a new signing key with a new kid; the old one is gone
//   {"cmd":"stop"}                   stop listening (the provider is down)
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import readline from 'node:readline';

const prefix = process.env.CITYDATA_OIDC_MOCK;
if (!prefix) {
  console.error('CITYDATA_OIDC_MOCK must name the npm prefix oauth2-mock-server is installed in');
  process.exit(2);
}
const require = createRequire(`${prefix.replace(/\/$/, '')}/`);
const { OAuth2Server } = await import(pathToFileURL(require.resolve('oauth2-mock-server')).href);

const host = '127.0.0.1';
const args = process.argv.slice(2);
const serve = args.includes('--serve');
let port = Number(args.find((a) => a !== '--serve') ?? 0);
let claims = JSON.parse(process.env.OIDC_MOCK_CLAIMS ?? '{}');
let next = null;
let server = null;
let kid = null;

function isIdToken(payload) {
  return 'aud' in payload && !('scope' in payload);
}

async function start() {
  server = new OAuth2Server();
  const key = await server.issuer.keys.generate('RS256');
  kid = key.kid;
  server.service.on('beforeTokenSigning', (token) => {
    if (!isIdToken(token.payload)) return;
    Object.assign(token.payload, claims);
    const now = Math.floor(Date.now() / 1000);
    if (next === 'wrong_nonce') token.payload.nonce = 'not-the-nonce-we-were-given';
    if (next === 'wrong_aud') token.payload.aud = 'another-client';
    if (next === 'expired') {
      token.payload.iat = now - 7200;
      token.payload.nbf = now - 7200;
      token.payload.exp = now - 3600;
    }
  });
  server.service.on('beforeResponse', (response) => {
    const idToken = response.body?.id_token;
    if (next === 'tamper' && typeof idToken === 'string') {
      // Change the claims after signing: the signature no longer matches.
      const [h, p, s] = idToken.split('.');
      const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
      payload.sub = 'someone-else';
      response.body.id_token = [h, Buffer.from(JSON.stringify(payload)).toString('base64url'), s].join('.');
    }
    if (idToken !== undefined) next = null;
  });
  await server.start(port, host);
  port = server.address().port;
}

await start();
console.log(JSON.stringify({ issuer: server.issuer.url, port, kid }));

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch {
    console.log(JSON.stringify({ ok: false, error: 'not JSON' }));
    return;
  }
  try {
    switch (cmd.cmd) {
      case 'claims':
        claims = cmd.claims ?? {};
        break;
      case 'next':
        next = cmd.mode ?? null;
        break;
      case 'rotate':
        // A new server on the same port with a new key: the old key is no longer published.
        await server.stop();
        await start();
        break;
      case 'stop':
        await server.stop();
        break;
      default:
        throw new Error(`unknown command ${cmd.cmd}`);
    }
    console.log(JSON.stringify({ ok: true, kid }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: String(e) }));
  }
});
rl.on('close', async () => {
  if (serve) return;
  try {
    await server.stop();
  } catch {
    // already stopped
  }
  process.exit(0);
});

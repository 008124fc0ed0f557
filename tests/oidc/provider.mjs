// A real OpenID Connect provider for the tests: the certified `oidc-provider` package, run as
// a local process on loopback (tests/oidc_provider.py starts it; docs/portal-login.md).
//
//   node provider.mjs --client-id aif --client-secret S \
//     --redirect-uri http://127.0.0.1:8000/portal/login/callback [--redirect-uri ...] \
//     [--port 0] [--accounts accounts.json]
//
// It listens on 127.0.0.1 (port 0: any free port), then prints one line,
// "listening <issuer>", which is the issuer URL. One confidential client; the authorization
// code flow with PKCE (S256) required; the device authorization grant.
//
// Accounts: any login name signs in, with any password, through the package's own
// development pages (a login form, then a consent form). The claims come from the login name
// ("nora" -> sub "nora", nora@uni.example, "Nora Example"); the accounts file, a JSON object
// {"nora": {"email": "...", "organisation": "...", ...}}, is read again at every use, so a
// test changes what the provider says about an account by rewriting it.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'client-id': { type: 'string', default: 'aifactories' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true, default: [] },
    accounts: { type: 'string' },
  },
});
if (!args['client-secret'] || args['redirect-uri'].length === 0) {
  console.error('usage: node provider.mjs --client-secret S --redirect-uri URI [--redirect-uri URI] '
    + '[--client-id ID] [--port N] [--accounts FILE]');
  process.exit(2);
}

// What the accounts file says about a login name (nothing if there is no file or no entry).
function overrides(login) {
  if (!args.accounts) return {};
  try {
    const all = JSON.parse(readFileSync(args.accounts, 'utf8'));
    return all[login] ?? {};
  } catch (error) {
    if (error.code === 'ENOENT') return {};
    throw error;
  }
}

function claimsOf(login) {
  const shown = login.charAt(0).toUpperCase() + login.slice(1);
  return {
    name: `${shown} Example`,
    email: `${login}@uni.example`,
    email_verified: true,
    preferred_username: login,
    ...overrides(login),
  };
}

// The account id is the login name (what the development login form gives), and the
// provider makes it the `sub` claim; the accounts file may give another preferred_username.
async function findAccount(ctx, id) {
  return {
    accountId: id,
    async claims() {
      return claimsOf(id);
    },
  };
}

// Fresh signing and cookie keys at every start: nothing secret is kept in the repository.
const signingKey = {
  ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  use: 'sig',
  alg: 'RS256',
  kid: randomBytes(8).toString('hex'),
};

const configuration = {
  clients: [{
    client_id: args['client-id'],
    client_name: 'aifactories',
    client_secret: args['client-secret'],
    redirect_uris: args['redirect-uri'],
    grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  // a confidential client too must send a PKCE challenge (S256 is the only method offered)
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'organisation'],
  },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
  },
  findAccount,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  ttl: {
    // what a real provider would give, long enough for a slow test machine
    AuthorizationCode: 300,
    DeviceCode: 600,
    IdToken: 3600,
    AccessToken: 3600,
    Interaction: 3600,
    Session: 86400,
    Grant: 86400,
  },
};

let handle;
const server = createServer((req, res) => handle(req, res));
server.listen(Number(args.port), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration);
  // The package's development pages import a web font from Google: the tests (and CI) are
  // offline, and a browser test must see no request to any other host. Drop that import.
  provider.use(async (ctx, next) => {
    await next();
    if (typeof ctx.body === 'string' && ctx.body.includes('fonts.googleapis.com')) {
      ctx.body = ctx.body.replace(/@import url\(https:\/\/fonts\.googleapis\.com[^)]*\);?/g, '');
    }
  });
  handle = provider.callback();
  console.log(`listening ${issuer}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}

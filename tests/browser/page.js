// The browser test's page: what a browser app does with authcell through the official Momento
// web SDK (@gomomento/sdk-web, unmodified). It refreshes its SDK key, then mints a disposable
// token with the refreshed key, and posts what happened back to the page's own origin
// (`POST /result`), where the test reads it. The server address, key and refresh token come in
// the URL fragment (never sent to any server).
import {
  AuthClient,
  CredentialProvider,
  DisposableTokenScopes,
  ExpiresIn,
  GenerateDisposableToken,
  RefreshApiKey,
} from '@gomomento/sdk-web';

const params = new URLSearchParams(location.hash.slice(1));
const server = params.get('server');
// Every SDK endpoint is authcell itself, in plain http on loopback.
const endpointOverrides = {
  controlEndpoint: server,
  cacheEndpoint: server,
  tokenEndpoint: server,
};

// The SDK's own credential format: base64 of {endpoint, api_key} (what its responses carry).
const wrap = (apiKey) => btoa(JSON.stringify({ endpoint: server, api_key: apiKey }));

function client(wrappedKey) {
  return new AuthClient({
    credentialProvider: CredentialProvider.fromString({ apiKey: wrappedKey, endpointOverrides }),
  });
}

function failure(response) {
  return { code: response.errorCode(), message: response.message() };
}

async function run() {
  const out = {};
  const refreshed = await client(wrap(params.get('key'))).refreshApiKey(params.get('refresh'));
  if (!(refreshed instanceof RefreshApiKey.Success)) {
    out.refreshError = failure(refreshed);
    return out;
  }
  out.refreshed = {
    apiKey: refreshed.apiKey,
    refreshToken: refreshed.refreshToken,
    expiresAt: refreshed.expiresAt.epoch(),
  };
  const minted = await client(refreshed.apiKey).generateDisposableToken(
    DisposableTokenScopes.cacheKeyReadOnly('sessions', 'user:42'),
    ExpiresIn.minutes(10),
    { tokenId: 'browser-1' },
  );
  if (!(minted instanceof GenerateDisposableToken.Success)) {
    out.mintError = failure(minted);
    return out;
  }
  out.minted = { authToken: minted.authToken, expiresAt: minted.expiresAt.epoch() };
  return out;
}

run()
  .catch((e) => ({ exception: String(e) }))
  .then((out) => {
    document.getElementById('status').textContent = 'done';
    return fetch('/result', { method: 'POST', body: JSON.stringify(out) });
  });

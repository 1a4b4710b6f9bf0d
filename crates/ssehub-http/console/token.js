// The tokens the console uses when the hub has keys (README, "Authorization").
//
// A link may carry a token in its fragment (`/#token=…`, what `ssehub serve --demo` prints):
// the fragment never leaves the browser, and the console moves it to sessionStorage at once
// and takes it out of the address bar. Tokens live in sessionStorage only: gone with the tab.

const KEYS = { subscriber: 'ssehub-subscriber-token', publisher: 'ssehub-publisher-token' };

/** Takes `#token=…` (a subscriber token) out of the address bar into sessionStorage. */
export function adoptTokenFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get('token');
  if (token) {
    setToken('subscriber', token);
    fragment.delete('token');
    const rest = fragment.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
  }
}

/** The token of `role` ('subscriber' or 'publisher'), or ''. */
export function getToken(role) {
  return sessionStorage.getItem(KEYS[role]) ?? '';
}

/** Keeps (or, when empty, forgets) the token of `role`. */
export function setToken(role, token) {
  if (token) sessionStorage.setItem(KEYS[role], token.trim());
  else sessionStorage.removeItem(KEYS[role]);
}

/** Headers for fetch() with the token of `role`, if any. */
export function authHeaders(role) {
  const token = getToken(role);
  return token ? { authorization: `Bearer ${token}` } : {};
}

// Signing test tokens (HS256 JWTs with Mercure claims) with node:crypto alone.

import crypto from 'node:crypto';

const b64url = (text) => Buffer.from(text).toString('base64url');

/**
 * An HS256 JWT of `claims` signed with `secret`: `header.payload.signature`, each part
 * base64url without padding (RFC 7515).
 */
export function signHs256(secret, claims) {
  const signing = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  const signature = crypto.createHmac('sha256', secret).update(signing).digest('base64url');
  return `${signing}.${signature}`;
}

/** Mercure claims: `{"mercure": {"publish": [...], "subscribe": [...]}}`. */
export function mercureClaims({ publish, subscribe } = {}) {
  const mercure = {};
  if (publish) mercure.publish = publish;
  if (subscribe) mercure.subscribe = subscribe;
  return { mercure };
}

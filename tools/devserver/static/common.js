// Teleperson admin, Users tab: what every part of the page shares. The API helper (bearer
// token of the "Signed in as" identity, problem+json errors), the words for each error code,
// the page's state and small DOM and formatting helpers. Plain ES module, no build step.

export const MAX_SUBJECT = 200;
export const MAX_BODY = 10000;
// A token is fetched anew when it has less than this left (seconds).
const TOKEN_MARGIN_S = 60;
export const NOBODY = '';

export const TABLE_LABELS = {
  transactions: 'Transactions',
  followed_companies: 'Followed companies',
  billing_records: 'Billing records',
  sessions: 'Sessions',
  help_requests: 'Help requests',
  admin_messages: 'Messages received',
};

// What each stable error code means, in words for the person at the keyboard.
export const ERROR_TEXT = {
  unauthenticated: 'You are not signed in, or your account no longer has access. Choose who you are in “Signed in as”.',
  forbidden_role: 'Only admins and owners can do this.',
  self_deletion: 'You can’t delete your own account here. Use the account-deletion flow in your profile instead.',
  privileged_target: 'Only an owner can delete an admin or an owner.',
  user_not_found: 'This user no longer exists.',
  user_deleted: 'This user has been deleted.',
  acknowledgement_required: 'Deleting an administrator needs the “I understand this removes an administrator” box ticked.',
  no_email_address: 'This user has no email address on file, so they can’t be messaged.',
  invalid_user_id: 'That user id is not valid.',
  invalid_cursor: 'The list could not be continued from where it was. Reload the page to start again.',
  invalid_body: 'The request was not understood. Reload the page and try again.',
  subject_invalid: `The subject must be 1–${MAX_SUBJECT} characters, on one line.`,
  body_invalid: `The message must be between 1 and ${MAX_BODY.toLocaleString('en-US')} characters.`,
  payload_too_large: 'The message is too large to send (the limit is 64 KiB).',
  // 409: the first request with this Idempotency-Key is still in flight (with Retry-After).
  request_in_progress: 'This message is still being sent by an earlier attempt. Press Send again in a moment to see how it went: it will not be sent twice.',
  // 422: the key was used for another message; the composer takes a new key for the next try.
  idempotency_key_reused: 'This send was already used for a different message, so nothing was sent. Press Send again to send this one.',
  last_owner: 'This is the last active owner, who can’t be deleted. Make another user an owner first.',
  rate_limited: 'You are doing that too often.',
  mail_rejected: 'The email provider refused this message. Check the address, or try again later.',
  dependency_unavailable: 'A service we depend on is unavailable right now. Please try again in a moment.',
  recipient_undeliverable: 'The last message to this user bounced or was marked as spam, so nothing was sent.',
  // 422 with `reason` (BOUNCE | COMPLAINT) and `last_update_time`: the composer says which.
  recipient_suppressed: 'This address is on the mail provider’s suppression list (an earlier message bounced or was marked as spam), so nothing was sent.',
};

export const state = {
  user: NOBODY,
  identities: [],
  q: '',
  cursor: null,
  shown: 0,
  listSeq: 0,
  openComposer: null,
  drafts: new Map(),
  names: new Map(),
  deleting: new Map(),
  dialog: null,
  openingDialog: false,
};

export const $ = (sel, root = document) => root.querySelector(sel);
export const els = {};

// ---------------------------------------------------------------------------------------
// small helpers
// ---------------------------------------------------------------------------------------

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (typeof v === 'boolean') el[k] = v;
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/**
 * The message line and the foot (a count, a hidden "Load more" button) of a paged table, put
 * right after `table`; `ids` names the three: `{ message, count, more }`.
 */
export function addTableFoot(table, ids) {
  table.after(
    h('div', { id: ids.message, class: 'table-message', hidden: true }),
    h(
      'div',
      { class: 'table-foot' },
      h('span', { id: ids.count, role: 'status', 'aria-live': 'polite' }),
      h('button', { id: ids.more, type: 'button', class: 'btn secondary', hidden: true }, 'Load more'),
    ),
  );
}

/** Shows `title` (and `text` under it) in a table's message line `el`; no title hides the line. */
export function showTableMessage(el, title, text) {
  if (!title) {
    el.hidden = true;
    el.replaceChildren();
    return;
  }
  el.hidden = false;
  el.replaceChildren(h('strong', { text: title }), text ? h('span', { text }) : null);
}

export const svg = (markup) => {
  const t = document.createElement('template');
  t.innerHTML = markup.trim();
  return t.content.firstChild;
};
export const trashIcon = () =>
  svg('<svg width="16" height="16" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M3 6h18"/><path d="M8 6V4a2 2 0 0 1 2-2h4a2 2 0 0 1 2 2v2"/><path d="M19 6l-1 14a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2L5 6"/><path d="M10 11v6M14 11v6"/></svg>');
export const warnIcon = () =>
  svg('<svg width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" aria-hidden="true"><path d="M12 9v4"/><path d="M12 17h.01"/><path d="M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z"/></svg>');

export const dateFmt = new Intl.DateTimeFormat('en-US', { year: 'numeric', month: 'short', day: 'numeric' });
export const dateTimeFmt = new Intl.DateTimeFormat('en-US', { month: 'short', day: 'numeric', year: 'numeric', hour: 'numeric', minute: '2-digit' });
export const fmtDate = (iso, f = dateFmt) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : f.format(d);
};
export const plural = (n, one, many = `${one}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
export const initials = (name) =>
  name.split(/\s+/).filter(Boolean).slice(0, 2).map((p) => p[0].toUpperCase()).join('') || '?';
const AVATAR_COLORS = ['#3451d1', '#0f766e', '#b45309', '#7c3aed', '#be185d', '#0369a1', '#4d7c0f', '#9f1239'];
export const avatarColor = (id) => AVATAR_COLORS[[...id].reduce((a, c) => (a * 31 + c.charCodeAt(0)) >>> 0, 7) % AVATAR_COLORS.length];
/** "12" → "12", "10000+" → "10,000+". */
export const fmtCount = (text) => {
  const m = /^(\d+)(\+?)$/.exec(String(text));
  return m ? `${Number(m[1]).toLocaleString('en-US')}${m[2]}` : String(text);
};
export const isPrivileged = (role) => role === 'admin' || role === 'owner';
export const enc = encodeURIComponent;

export function toast(text) {
  const t = h('div', { class: 'toast', text });
  els.toasts.append(t);
  setTimeout(() => t.remove(), 6000);
}

// ---------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem?.detail || problem?.title || problem?.message || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code || null;
    this.title = problem?.title || problem?.message || null;
    this.detail = problem?.detail || null;
    this.retryAfter = retryAfter ? Number(retryAfter) : null;
    // recipient_undeliverable: what became of the last message (bounced | complained).
    this.lastStatus = problem?.last_status || null;
    // recipient_suppressed: why the address is on the suppression list (BOUNCE | COMPLAINT), since when.
    this.reason = problem?.reason || null;
    this.lastUpdateTime = problem?.last_update_time || null;
  }
}

/** The access token of `userId` (none for "Nobody"), fetched anew when it is about to expire. */
export async function tokenFor(userId) {
  if (!userId) return null;
  let identity = state.identities.find((i) => i.user_id === userId);
  if (!identity || identity.expires_at - TOKEN_MARGIN_S < Date.now() / 1000) {
    await fetchIdentities();
    identity = state.identities.find((i) => i.user_id === userId);
  }
  return identity?.access_token || null;
}

/** `cache: 'no-store'` keeps the request (and its URL) out of the browser's HTTP cache. */
export async function api(method, path, { body, headers = {}, as = state.user, cache } = {}) {
  const h2 = { Accept: 'application/json, application/problem+json', ...headers };
  const token = await tokenFor(as);
  if (token) h2.Authorization = `Bearer ${token}`;
  const init = { method, headers: h2 };
  if (cache) init.cache = cache;
  if (body !== undefined) {
    h2['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, { title: 'Network error', detail: 'Could not reach the server. Check that the dev server is running and try again.' });
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiError(res.status, data || {}, res.headers.get('Retry-After'));
  return { status: res.status, data };
}

/** The error in words: the friendly sentence for its code, else the API's own detail/title. */
export function describe(err) {
  if (!(err instanceof ApiError)) return 'Something went wrong. Please try again.';
  // API Gateway's own refusals ({"message": "Unauthorized" | "Forbidden"}) carry no code.
  const code = err.code || (err.status === 401 ? 'unauthenticated' : null);
  let text = (code && ERROR_TEXT[code]) || err.detail || err.title;
  if (!text) text = err.status >= 500 ? 'The server had a problem. Please try again.' : `The request failed (HTTP ${err.status}).`;
  if (err.retryAfter) text += ` Try again in ${plural(err.retryAfter, 'second')}.`;
  return text;
}

export function errorNotice(err, heading) {
  return h('div', { class: 'notice error', role: 'alert' }, h('strong', { text: heading }), describe(err));
}

// ---------------------------------------------------------------------------------------
// identity picker
// ---------------------------------------------------------------------------------------

export const currentIdentity = () => state.identities.find((i) => i.user_id === state.user) || null;

/** The demo identities, each with a fresh access token. */
export async function fetchIdentities() {
  let items = [];
  try {
    const res = await fetch('/dev/identities', { cache: 'no-store' });
    items = (await res.json()).items || [];
  } catch {
    items = [];
  }
  state.identities = items;
  return items;
}

// Teleperson admin, Users tab: the audit trail. A user's "Activity" (in the composer panel,
// next to the message history), the "Audit log" view with its filters, and "Was this person
// erased?" (GET /admin/erasures). Plain ES module, no build step; see common.js for the API
// helper and app.js for the rest of the page.
//
// The erasure lookup's address lives in its input only: it is sent once (in the request's
// query, as the API asks, with `cache: 'no-store'`), never put in the page URL, storage or the
// console, and never shown back; the answer shows the hash the server echoes.

import { TABLE_LABELS, state, $, els, h, fmtDate, plural, api, describe, errorNotice, addTableFoot, showTableMessage } from './common.js';

const ACTIVITY_LIMIT = 20;
const LOG_LIMIT = 50;
const VIEW_PARAM = 'view';

/** The event types of the audit log, in words. */
export const EVENT_LABELS = {
  admin_sent_user_message: 'Message sent',
  admin_deleted_user: 'Deletion started',
  admin_deletion_completed: 'Deletion completed',
  admin_action_denied: 'Refused',
  admin_looked_up_erasure: 'Erasure looked up',
};

// The policy actions a refusal names (`details.action`).
const ACTION_LABELS = {
  send_message: 'send a message',
  view_messages: 'view messages',
  delete_user: 'delete a user',
  view_deletion: 'view a deletion',
  list_users: 'list the users',
  read_audit: 'read the audit log',
};

const timeFmt = new Intl.DateTimeFormat('en-US', {
  month: 'short',
  day: 'numeric',
  year: 'numeric',
  hour: 'numeric',
  minute: '2-digit',
  second: '2-digit',
});

const log = { cursor: null, seq: 0, shown: 0, filters: { actor: '', target: '', type: '' } };
const erasure = { seq: 0, busy: false };

// ---------------------------------------------------------------------------------------
// rendering an audit row
// ---------------------------------------------------------------------------------------

const timeEl = (iso) => h('time', { datetime: iso, title: iso, text: fmtDate(iso, timeFmt) || iso || '' });
const num = (n) => Number(n || 0).toLocaleString('en-US');

/** A user id: the name when the page knows it, and the id itself. */
function who(id, none = 'No signed-in caller') {
  if (!id) return h('span', { class: 'who none', text: none });
  const name = state.names.get(id);
  return h('span', { class: 'who', dataset: { id } }, name ? h('span', { class: 'who-name', text: name }) : null, h('code', { text: id }));
}

const targetOf = (id) => (id === '*' || !id ? h('span', { class: 'who none', dataset: { id: '*' }, text: 'No single target' }) : who(id));

/** Tables in the cascade's order, then any others. */
const tableNames = (counts) => [
  ...Object.keys(TABLE_LABELS).filter((n) => n in counts),
  ...Object.keys(counts).filter((n) => !(n in TABLE_LABELS)).sort(),
];
const sum = (counts) => Object.values(counts || {}).reduce((a, n) => a + Number(n || 0), 0);

/** Rows per table, with their total. */
function countsTable(counts, caption) {
  const names = tableNames(counts || {});
  return h(
    'table',
    { class: 'counts' },
    h('caption', { class: 'visually-hidden', text: caption }),
    h(
      'tbody',
      {},
      names.map((n) => h('tr', { dataset: { table: n } }, h('th', { scope: 'row', text: TABLE_LABELS[n] || n }), h('td', { class: 'n', text: num(counts[n]) }))),
      h('tr', { class: 'total' }, h('th', { scope: 'row', text: 'Total' }), h('td', { class: 'n', text: num(sum(counts)) })),
    ),
  );
}

const detail = (key, label, ...value) => h('div', { class: 'd', dataset: { key } }, h('span', { class: 'k', text: label }), ' ', ...value);
const shortHash = (hex) => h('code', { class: 'hash', title: hex, text: hex && hex.length > 16 ? `${hex.slice(0, 12)}…` : hex });

/** What matters of one row's details, in words; anything else as it is. */
function detailsOf(e) {
  const d = { ...(e.details || {}) };
  const out = [];
  const take = (k) => {
    const v = d[k];
    delete d[k];
    return v;
  };
  switch (e.event_type) {
    case 'admin_sent_user_message': {
      const id = take('message_id');
      if (id) out.push(detail('message_id', 'Message', h('code', { text: id })));
      break;
    }
    case 'admin_deleted_user': {
      const job = take('job_id');
      const role = take('target_role');
      const hash = take('target_email_sha256');
      if (job) out.push(detail('job_id', 'Job', h('code', { text: job })));
      if (role) out.push(detail('target_role', 'Role', role));
      if (hash) out.push(detail('target_email_sha256', 'Email hash', shortHash(hash)));
      break;
    }
    case 'admin_deletion_completed': {
      const job = take('job_id');
      if (job) out.push(detail('job_id', 'Job', h('code', { text: job })));
      break;
    }
    case 'admin_action_denied': {
      const action = take('action');
      const reason = take('reason');
      const refusals = Number(take('refusals') || 0);
      if (action) out.push(detail('action', 'Tried to', ACTION_LABELS[action] || action));
      if (reason) out.push(detail('reason', 'Reason', h('code', { text: reason })));
      if (refusals > 1) out.push(detail('refusals', 'Counts', `${plural(refusals, 'refusal')} in that minute`));
      break;
    }
    case 'admin_looked_up_erasure': {
      const found = take('found');
      const hash = take('email_sha256');
      if (found !== undefined) out.push(detail('found', 'Found', plural(Number(found) || 0, 'receipt')));
      if (hash) out.push(detail('email_sha256', 'Email hash', shortHash(hash)));
      break;
    }
    default:
      break;
  }
  for (const [k, v] of Object.entries(d)) out.push(detail(k, k, String(v)));
  if (e.deleted) out.push(h('div', { class: 'd counts-wrap', dataset: { key: 'deleted' } }, h('span', { class: 'k', text: 'Rows erased' }), countsTable(e.deleted, 'Rows erased per table')));
  return out;
}

const rowData = (e) => ({ eventId: e.event_id, eventType: e.event_type, actorId: e.actor_id || '', targetId: e.target_id || '' });
const labelOf = (type) => EVENT_LABELS[type] || type;

/** One row of a user's Activity. */
function activityItem(e) {
  return h(
    'li',
    { class: `activity-item type-${e.event_type}`, dataset: rowData(e) },
    h('div', { class: 'msg-head' }, h('span', { class: 'msg-subject event-label', text: labelOf(e.event_type) }), h('span', { class: 'when' }, timeEl(e.created_at))),
    h('div', { class: 'msg-meta actor' }, 'by ', who(e.actor_id)),
    h('div', { class: 'details' }, detailsOf(e)),
  );
}

/** One row of the Audit log table. */
function logRow(e) {
  return h(
    'tr',
    { class: `audit-row type-${e.event_type}`, dataset: rowData(e) },
    h('td', { class: 'when' }, timeEl(e.created_at)),
    h('td', { class: 'event' }, h('span', { class: `event-badge type-${e.event_type}`, text: labelOf(e.event_type) })),
    h('td', { class: 'actor' }, who(e.actor_id)),
    h('td', { class: 'target' }, targetOf(e.target_id)),
    h(
      'td',
      { class: 'details' },
      detailsOf(e),
      h('div', { class: 'd meta' }, 'Request ', h('code', { text: e.request_id || '—' }), e.source_ip ? ` · from ${e.source_ip}` : ''),
    ),
  );
}

// ---------------------------------------------------------------------------------------
// a user's Activity (in the composer panel)
// ---------------------------------------------------------------------------------------

/**
 * The Activity section of `user`'s panel: their audit rows, newest first, 20 at a time.
 * Returns the element and `reload()` (the first page again, e.g. after a send).
 */
export function activitySection(user) {
  const list = h('ul', { class: 'activity-list', 'aria-label': `Activity of ${user.display_name}` });
  const more = h('button', { type: 'button', class: 'btn secondary small activity-more', hidden: true }, 'Load more');
  const el = h('div', { class: 'activity', id: `activity-${user.user_id}` }, h('h3', { text: 'Activity' }), list, h('div', { class: 'activity-foot' }, more));
  let cursor = null;
  let seq = 0;

  async function load(reset) {
    const my = ++seq;
    const hadFocus = document.activeElement === more;
    if (reset) cursor = null;
    if (reset && !list.children.length) list.replaceChildren(h('li', { class: 'empty', text: 'Loading…' }));
    const params = new URLSearchParams({ target: user.user_id, limit: String(ACTIVITY_LIMIT) });
    if (!reset && cursor) params.set('cursor', cursor);
    more.disabled = true;
    try {
      const { data } = await api('GET', `/admin/audit?${params}`);
      if (my !== seq) return;
      const items = (data?.items || []).map(activityItem);
      if (reset) list.replaceChildren(...(items.length ? items : [h('li', { class: 'empty', text: 'No activity recorded for this user yet.' })]));
      else list.append(...items);
      cursor = data?.next_cursor || null;
      more.hidden = !cursor;
      // The button went away under the keyboard: focus the first row it brought.
      if (!reset && hadFocus && more.hidden && items.length) {
        items[0].tabIndex = -1;
        items[0].focus();
      }
    } catch (err) {
      if (my !== seq) return;
      const text = `Activity unavailable: ${describe(err)}`;
      if (reset) list.replaceChildren(h('li', { class: 'empty', text }));
      else list.append(h('li', { class: 'empty', text }));
    } finally {
      if (my === seq) more.disabled = false;
    }
  }

  more.addEventListener('click', () => load(false));
  return {
    el,
    reload: () => {
      if (el.isConnected) load(true);
    },
  };
}

// ---------------------------------------------------------------------------------------
// the Audit log view
// ---------------------------------------------------------------------------------------

const setLogMessage = (title, text) => showTableMessage(els.auditMessage, title, text);

const filtered = () => Boolean(log.filters.actor || log.filters.target || log.filters.type);

function updateLogCount() {
  els.auditCount.textContent = log.shown ? `Showing ${plural(log.shown, 'entry', 'entries')}${filtered() ? ' matching the filters' : ''}` : '';
}

async function loadLog({ reset }) {
  const seq = ++log.seq;
  if (reset) log.cursor = null;
  const params = new URLSearchParams();
  for (const k of ['actor', 'target', 'type']) if (log.filters[k]) params.set(k, log.filters[k]);
  params.set('limit', String(LOG_LIMIT));
  if (!reset && log.cursor) params.set('cursor', log.cursor);
  els.auditMore.disabled = true;
  if (reset) els.auditBody.setAttribute('aria-busy', 'true');
  try {
    const { data } = await api('GET', `/admin/audit?${params}`);
    if (seq !== log.seq) return null;
    const rows = (data?.items || []).map(logRow);
    if (reset) {
      els.auditBody.replaceChildren(...rows);
      log.shown = 0;
    } else {
      els.auditBody.append(...rows);
    }
    log.shown += rows.length;
    log.cursor = data?.next_cursor || null;
    els.auditMore.hidden = !log.cursor;
    if (log.shown === 0) setLogMessage(filtered() ? 'No entries match these filters' : 'The audit log is empty', filtered() ? 'Try other filters, or clear them.' : '');
    else setLogMessage(null);
    updateLogCount();
    return rows;
  } catch (err) {
    if (seq !== log.seq) return null;
    if (reset) {
      els.auditBody.replaceChildren();
      log.shown = 0;
    }
    els.auditMore.hidden = !log.cursor;
    const title =
      err.status === 401 ? 'You are signed out' : err.status === 403 ? 'You don’t have access to the audit log' : 'The audit log could not be loaded';
    const text =
      err.code === 'invalid_body'
        ? 'Check the filters: the actor and the target are user ids (the target may be * for actions without a single target).'
        : describe(err);
    setLogMessage(title, text);
    updateLogCount();
    return null;
  } finally {
    if (seq === log.seq) {
      els.auditMore.disabled = false;
      els.auditBody.removeAttribute('aria-busy');
    }
  }
}

function applyFilters(e) {
  e.preventDefault();
  log.filters = { actor: els.auditActor.value.trim(), target: els.auditTarget.value.trim(), type: els.auditType.value };
  loadLog({ reset: true });
}

const isAuditShown = () => !els.auditView.hidden;

/** Shows the Users list or the Audit log (`?view=audit` in the page URL, nothing else). */
function showView(which, { focus = true } = {}) {
  const audit = which === 'audit';
  els.usersView.hidden = audit;
  els.searchBox.hidden = audit;
  els.auditView.hidden = !audit;
  els.showUsers.setAttribute('aria-pressed', String(!audit));
  els.showAudit.setAttribute('aria-pressed', String(audit));
  els.pageHint.textContent = audit ? els.pageHint.dataset.audit : els.pageHint.dataset.users;
  document.title = `${audit ? 'Audit log · ' : ''}Users · Teleperson Admin`;
  const u = new URL(location.href);
  if (audit) u.searchParams.set(VIEW_PARAM, 'audit');
  else u.searchParams.delete(VIEW_PARAM);
  history.replaceState(null, '', u);
  if (!audit) return null;
  if (focus) els.auditTitle.focus();
  return loadLog({ reset: true });
}

// ---------------------------------------------------------------------------------------
// "Was this person erased?"
// ---------------------------------------------------------------------------------------

function latePassBlock(lp) {
  if (!lp) return null;
  if (lp.status === 'done') {
    const late = lp.late || {};
    const n = sum(late);
    return h(
      'div',
      { class: 'late-pass', dataset: { status: 'done' } },
      h('strong', { text: 'Final check for late data: done' }),
      lp.done_at ? [' on ', timeEl(lp.done_at)] : null,
      n ? [h('p', { text: `It removed ${plural(n, 'late row')}:` }), countsTable(late, 'Late rows per table')] : h('p', { text: 'No late rows.' }),
    );
  }
  return h(
    'div',
    { class: 'late-pass', dataset: { status: lp.status || 'pending' } },
    h('strong', { text: 'Final check for late data: pending' }),
    lp.due_at ? [' · due ', timeEl(lp.due_at)] : null,
  );
}

function erasureCard(x) {
  const done = x.status === 'completed';
  const item = (label, ...value) => [h('dt', { text: label }), h('dd', {}, ...value)];
  return h(
    'article',
    { class: 'erasure-card', 'aria-label': `Erasure job ${x.job_id}`, dataset: { jobId: x.job_id, userId: x.user_id, status: x.status } },
    h(
      'div',
      { class: 'erasure-head' },
      h('span', { class: `job-status job-${done ? 'completed' : 'in-progress'}`, text: done ? 'Completed' : 'In progress' }),
      h('span', { class: 'when' }, 'Requested ', timeEl(x.requested_at)),
    ),
    h(
      'dl',
      {},
      item('Job id', h('code', { class: 'job-id', text: x.job_id })),
      item('User id', h('code', { class: 'user-id', text: x.user_id })),
      item('Deleted by', who(x.actor_id)),
      item('Role', x.target_role || '—'),
      item('Requested', timeEl(x.requested_at)),
      item('Completed', x.completed_at ? timeEl(x.completed_at) : 'Not yet'),
      item('Request id', h('code', { text: x.request_id || '—' })),
    ),
    h('h4', { text: done ? 'Rows erased' : 'Rows erased so far' }),
    countsTable(x.deleted || {}, 'Rows erased per table'),
    latePassBlock(x.late_pass),
  );
}

function erasureAnswer(data) {
  const list = data?.erasures || [];
  const hash = h('p', { class: 'looked-up-as' }, 'Looked up as SHA-256 ', h('code', { class: 'sha', text: data?.email_sha256 || '' }));
  if (!list.length) {
    return [
      h(
        'div',
        { class: 'notice info erasure-none' },
        h('strong', { text: 'No erasure on record for this address' }),
        'No deletion receipt carries this address.',
      ),
      hash,
    ];
  }
  return [h('p', { class: 'erasure-found', text: `${plural(list.length, 'erasure')} on record for this address, newest first:` }), ...list.map(erasureCard), hash];
}

async function checkErasure(e) {
  e.preventDefault();
  if (erasure.busy) return;
  const address = els.erasureEmail.value;
  if (!address.trim()) {
    els.erasureResult.replaceChildren(h('div', { class: 'notice error', role: 'alert' }, 'Enter an email address first.'));
    els.erasureEmail.focus();
    return;
  }
  const seq = ++erasure.seq;
  erasure.busy = true;
  const button = els.erasureCheck;
  button.setAttribute('aria-disabled', 'true');
  button.replaceChildren(h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Checking…');
  els.erasureResult.setAttribute('aria-busy', 'true');
  try {
    // As typed: the server trims and lower-cases it before hashing.
    const { data } = await api('GET', `/admin/erasures?email=${encodeURIComponent(address)}`, { cache: 'no-store' });
    if (seq !== erasure.seq) return;
    els.erasureResult.replaceChildren(...erasureAnswer(data));
  } catch (err) {
    if (seq !== erasure.seq) return;
    els.erasureResult.replaceChildren(
      err.code === 'invalid_body'
        ? h('div', { class: 'notice error', role: 'alert' }, h('strong', { text: 'That is not an email address.' }), 'Enter the whole address, with an @ and text on both sides.')
        : errorNotice(err, 'The lookup failed.'),
    );
  } finally {
    erasure.busy = false;
    button.removeAttribute('aria-disabled');
    button.replaceChildren('Check');
    els.erasureResult.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------------------------------
// start
// ---------------------------------------------------------------------------------------

/** Wires the view switch, the filters and the erasure form; opens the view for ?view=audit. */
export function initAudit() {
  els.usersView = $('#users-view');
  els.searchBox = $('.page-head .search');
  els.pageHint = $('#page-hint');
  els.showUsers = $('#show-users');
  els.showAudit = $('#show-audit');
  els.auditView = $('#audit-view');
  els.auditTitle = $('#audit-title');
  els.auditFilters = $('#audit-filters');
  els.auditActor = $('#audit-actor');
  els.auditTarget = $('#audit-target');
  els.auditType = $('#audit-type');
  els.auditBody = $('#audit-body');
  addTableFoot(els.auditBody.closest('table'), { message: 'audit-message', count: 'audit-count', more: 'audit-load-more' });
  els.auditMessage = $('#audit-message');
  els.auditCount = $('#audit-count');
  els.auditMore = $('#audit-load-more');
  els.erasureForm = $('#erasure-form');
  els.erasureEmail = $('#erasure-email');
  els.erasureCheck = $('#erasure-check');
  els.erasureResult = $('#erasure-result');

  els.auditType.replaceChildren(
    h('option', { value: '', text: 'All types' }),
    ...Object.entries(EVENT_LABELS).map(([value, text]) => h('option', { value, text })),
  );
  els.showUsers.addEventListener('click', () => showView('users'));
  els.showAudit.addEventListener('click', () => showView('audit'));
  els.auditFilters.addEventListener('submit', applyFilters);
  els.auditMore.addEventListener('click', async () => {
    const rows = await loadLog({ reset: false });
    if (rows?.length && els.auditMore.hidden) {
      rows[0].tabIndex = -1;
      rows[0].focus();
    }
  });
  els.erasureForm.addEventListener('submit', checkErasure);
  // An answer belongs to the address it was asked for: editing the address withdraws it.
  els.erasureEmail.addEventListener('input', () => {
    if (els.erasureResult.children.length || erasure.busy) {
      erasure.seq += 1;
      els.erasureResult.replaceChildren();
    }
  });

  const view = new URL(location.href).searchParams.get(VIEW_PARAM);
  return view === 'audit' ? showView('audit', { focus: false }) : Promise.resolve(null);
}

/** The "Signed in as" identity changed: what is shown was read as someone else. */
export function onIdentityChange() {
  erasure.seq += 1;
  els.erasureResult.replaceChildren();
  if (isAuditShown()) loadLog({ reset: true });
}

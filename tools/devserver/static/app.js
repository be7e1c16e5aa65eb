// Teleperson admin, Users tab: the reference page. Plain ES module, no build step.
// Talks to the same API as production, with a bearer token: the dev server mints one for each
// "Signed in as" identity (GET /dev/identities), as Cognito would for a signed-in admin, and
// checks it the way API Gateway's JWT authorizer checks a Cognito access token.
// Shared helpers, the API helper and the error words: common.js; the audit trail (a user's
// Activity, the Audit log view, the erasure lookup): audit.js.

import {
  MAX_SUBJECT, MAX_BODY, NOBODY, TABLE_LABELS, ERROR_TEXT, state, $, els, h, trashIcon, warnIcon, dateTimeFmt, fmtDate,
  plural, initials, avatarColor, fmtCount, isPrivileged, enc, toast, api, describe, errorNotice, currentIdentity, fetchIdentities,
  addTableFoot, showTableMessage,
} from './common.js';
import { activitySection, initAudit, onIdentityChange } from './audit.js';

const DEFAULT_SUBJECT = 'A message from Teleperson';
const SUPPORT_INBOX = 'hello@teleperson.com';
const PAGE_SIZE = 25;
const POLL_MS = 600;
const HISTORY_POLL_MS = 2500;
const HISTORY_POLLS = 24;
const IDENTITY_KEY = 'teleperson.dev.signedInAs';

const STEP_LABELS = {
  audit: 'Recording the audit event',
  lock_out: 'Signing the user out everywhere',
  anonymise: 'Anonymising the profile',
  cascade: 'Removing their data',
  delete_auth: 'Removing the sign-in account',
  complete: 'Finishing up',
  late_pass: 'Final check for late data',
  done: 'Done',
};

// recipient_suppressed: why the mail provider suppressed the address ("because …").
const SUPPRESSION_REASON = {
  BOUNCE: 'an earlier message bounced',
  COMPLAINT: 'the recipient marked a message as spam',
};

// A message's delivery status: the badge, the verb before its time, and what it means.
const MESSAGE_STATUS = {
  pending: { label: 'Pending', verb: 'Queued', note: 'Being handed to the mail service, or waiting for it to confirm the message.' },
  unconfirmed: {
    label: 'Not confirmed',
    verb: 'Not confirmed',
    note: 'The mail service never confirmed this message: it may or may not have gone out. It will not be sent again.',
  },
  sent: { label: 'Sent', verb: 'Sent', note: 'The mail service accepted it; the recipient’s mail server has not answered yet.' },
  delivered: { label: 'Delivered', verb: 'Delivered', note: 'The recipient’s mail server accepted it.' },
  bounced: { label: 'Bounced', verb: 'Bounced', note: 'Their mail server refused it for good: the address may be wrong or closed.' },
  complained: { label: 'Complaint', verb: 'Marked as spam', note: 'The recipient marked it as spam.' },
  failed: { label: 'Failed', verb: 'Failed', note: 'The mail service refused it, so it was not sent.' },
};

// ---------------------------------------------------------------------------------------
// identity picker
// ---------------------------------------------------------------------------------------

async function loadIdentities() {
  const items = await fetchIdentities();
  const saved = localStorage.getItem(IDENTITY_KEY);
  const valid = saved !== null && (saved === NOBODY || items.some((i) => i.user_id === saved));
  state.user = valid ? saved : items[0]?.user_id ?? NOBODY;
  renderIdentities();
}

function renderIdentities() {
  const sel = els.identity;
  sel.replaceChildren(
    ...state.identities.map((i) =>
      h('option', { value: i.user_id, text: `${i.display_name} — ${i.role}${i.deleted ? ' (deleted)' : ''}` }),
    ),
    h('option', { value: NOBODY, text: 'Nobody (signed out)' }),
  );
  sel.value = state.user;
  for (const i of state.identities) state.names.set(i.user_id, i.display_name);
}

// ---------------------------------------------------------------------------------------
// the users table
// ---------------------------------------------------------------------------------------

const setTableMessage = (title, text) => showTableMessage(els.tableMessage, title, text);

function updateCount() {
  const q = state.q ? ` matching “${state.q}”` : '';
  els.count.textContent = state.shown ? `Showing ${plural(state.shown, 'user')}${q}` : '';
}

async function loadUsers({ reset }) {
  const seq = ++state.listSeq;
  if (reset) {
    state.cursor = null;
    closeComposer({ focusRow: false });
  }
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (state.q) params.set('q', state.q);
  if (!reset && state.cursor) params.set('cursor', state.cursor);
  els.loadMore.disabled = true;
  if (reset) els.body.setAttribute('aria-busy', 'true');
  try {
    const { data } = await api('GET', `/admin/users?${params}`);
    if (seq !== state.listSeq) return null;
    const rows = data.items.map(renderRow);
    if (reset) {
      els.body.replaceChildren(...rows);
      state.shown = 0;
    } else {
      els.body.append(...rows);
    }
    state.shown += rows.length;
    state.cursor = data.next_cursor || null;
    els.loadMore.hidden = !state.cursor;
    if (state.shown === 0) {
      setTableMessage(state.q ? `No users match “${state.q}”` : 'No users yet', state.q ? 'Try a different name or email.' : '');
    } else {
      setTableMessage(null);
    }
    updateCount();
    return rows;
  } catch (err) {
    if (seq !== state.listSeq) return null;
    if (reset) {
      els.body.replaceChildren();
      state.shown = 0;
    }
    els.loadMore.hidden = !state.cursor;
    const title = err.status === 401 ? 'You are signed out' : err.status === 403 ? 'You don’t have access to the Users tab' : 'The users could not be loaded';
    setTableMessage(title, describe(err));
    updateCount();
    return null;
  } finally {
    if (seq === state.listSeq) {
      els.loadMore.disabled = false;
      els.body.removeAttribute('aria-busy');
    }
  }
}

function renderRow(user) {
  state.names.set(user.user_id, user.display_name);
  const isMe = user.user_id === state.user;
  const composerId = `composer-${user.user_id}`;
  const trash = h(
    'button',
    {
      type: 'button',
      class: 'icon-btn',
      'aria-label': `Delete ${user.display_name}`,
      title: `Delete ${user.display_name}`,
      onclick: (e) => {
        e.stopPropagation();
        openDeleteDialog(user, row);
      },
      onkeydown: (e) => e.stopPropagation(),
    },
    trashIcon(),
  );
  const row = h(
    'tr',
    {
      class: 'user-row',
      tabindex: '0',
      'aria-expanded': 'false',
      'aria-controls': composerId,
      dataset: { userId: user.user_id },
      onclick: (e) => {
        if (e.target.closest('button, a, input, textarea')) return;
        toggleComposer(user, row);
      },
      onkeydown: (e) => onRowKey(e, user, row),
    },
    h(
      'td',
      {},
      h(
        'div',
        { class: 'name-cell' },
        h('span', { class: 'avatar', style: `background:${avatarColor(user.user_id)}`, 'aria-hidden': 'true', text: initials(user.display_name) }),
        h('span', { class: 'name', text: user.display_name }),
        isMe ? h('span', { class: 'you-tag', text: 'You' }) : null,
        state.deleting.has(user.user_id) ? h('span', { class: 'state-tag', text: 'Deleting…' }) : null,
      ),
    ),
    h('td', { class: 'email' }, user.email ? user.email : h('span', { class: 'none', text: 'No email address' })),
    h('td', {}, h('span', { class: `badge role-${['owner', 'admin'].includes(user.role) ? user.role : 'user'}`, text: user.role })),
    h('td', { class: 'created' }, h('time', { datetime: user.created_at, text: fmtDate(user.created_at) })),
    h('td', { class: 'col-actions' }, trash),
  );
  row._user = user;
  return row;
}

function onRowKey(e, user, row) {
  if (e.target !== row) return;
  if (e.key === 'Enter' || e.key === ' ') {
    e.preventDefault();
    toggleComposer(user, row);
  } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    e.preventDefault();
    const rows = [...els.body.querySelectorAll('tr.user-row')];
    const next = rows[rows.indexOf(row) + (e.key === 'ArrowDown' ? 1 : -1)];
    next?.focus();
  }
}

function rowOf(userId) {
  return [...els.body.querySelectorAll('tr.user-row')].find((r) => r.dataset.userId === userId) || null;
}

/** Removes a deleted user's row (and composer); returns the element that should get focus. */
function removeRow(userId) {
  const row = rowOf(userId);
  if (!row) return els.search;
  if (state.openComposer === userId) closeComposer({ focusRow: false });
  const rows = [...els.body.querySelectorAll('tr.user-row')];
  const i = rows.indexOf(row);
  const next = rows[i + 1] || rows[i - 1] || els.search;
  row.remove();
  state.shown = Math.max(0, state.shown - 1);
  updateCount();
  if (state.shown === 0) setTableMessage('No users left here', state.cursor ? 'Load more to see the next page.' : '');
  return next;
}

// ---------------------------------------------------------------------------------------
// the composer (message a user)
// ---------------------------------------------------------------------------------------

function toggleComposer(user, row) {
  if (state.openComposer === user.user_id) closeComposer({ focusRow: true });
  else openComposer(user, row);
}

function closeComposer({ focusRow }) {
  const id = state.openComposer;
  if (!id) return;
  const panel = document.getElementById(`composer-${id}`);
  if (panel) {
    const form = $('form', panel);
    if (form) state.drafts.set(id, { subject: form.elements.subject.value, body: form.elements.body.value });
    panel.closest('tr')?.remove();
  }
  const row = rowOf(id);
  row?.setAttribute('aria-expanded', 'false');
  state.openComposer = null;
  if (focusRow) row?.focus();
}

function openComposer(user, row) {
  closeComposer({ focusRow: false });
  state.openComposer = user.user_id;
  row.setAttribute('aria-expanded', 'true');
  const id = user.user_id;
  const draft = state.drafts.get(id) || { subject: DEFAULT_SUBJECT, body: '' };
  const noEmail = !user.email;

  const subject = h('input', { type: 'text', id: `subject-${id}`, name: 'subject', maxlength: String(MAX_SUBJECT), required: true, autocomplete: 'off' });
  subject.value = draft.subject;
  const body = h('textarea', { id: `body-${id}`, name: 'body', rows: '6', maxlength: String(MAX_BODY), required: true, placeholder: `Write to ${user.display_name}…` });
  body.value = draft.body;
  const counter = h('span', { class: 'counter', 'aria-live': 'off' });
  const updateCounter = () => {
    counter.textContent = `${body.value.length.toLocaleString('en-US')} / ${MAX_BODY.toLocaleString('en-US')}`;
  };
  body.addEventListener('input', updateCounter);
  updateCounter();
  const send = h('button', { type: 'submit', class: 'btn primary', disabled: noEmail }, 'Send');
  const result = h('div', { class: 'result', role: 'status', 'aria-live': 'polite' });
  const historyList = h('ul', { 'aria-label': `Messages sent to ${user.display_name}` });
  // The user's audit rows (audit.js): loaded with the panel, again after every send.
  const activity = activitySection(user);
  const form = h(
    'form',
    { class: 'composer-form', novalidate: '', 'aria-label': `Message ${user.display_name}` },
    h('h3', { text: `Message ${user.display_name}` }),
    noEmail ? h('div', { class: 'notice warn', style: 'margin-bottom:12px' }, ERROR_TEXT.no_email_address) : null,
    h('div', { class: 'field' }, h('label', { for: subject.id, text: 'Subject' }), subject),
    h(
      'div',
      { class: 'field' },
      h('label', { for: body.id, text: 'Message' }),
      body,
      h(
        'div',
        { class: 'field-hint' },
        h('span', { text: user.email ? `To ${user.email} · replies go to ${SUPPORT_INBOX}` : 'No email address on file' }),
        counter,
      ),
    ),
    h('div', { class: 'actions' }, send, h('button', { type: 'button', class: 'btn ghost', onclick: () => closeComposer({ focusRow: true }) }, 'Close')),
    result,
  );

  // One compose attempt = one Idempotency-Key: the same content sent again (after a network
  // error, say) reuses it, so the API answers the first result instead of sending twice.
  const fingerprintOf = (subj, text) => JSON.stringify([id, subj, text]);
  let attempt = { fingerprint: null, key: null };
  // Set while the API refuses because the last message bounced or drew a complaint: what was
  // refused, and the key of its "Send anyway" attempt (reused if that one has to be retried).
  let blocked = null;
  let sending = false;

  const setBusy = (button, label) => {
    // aria-disabled (not disabled) while sending, so the button keeps the keyboard focus.
    button.setAttribute('aria-disabled', 'true');
    button.replaceChildren(h('span', { class: 'spinner', 'aria-hidden': 'true' }), label);
  };
  const setIdle = (button, label) => {
    button.removeAttribute('aria-disabled');
    button.replaceChildren(label);
  };

  // The refusal is about what was written then: editing the message withdraws the choice.
  const onEdit = () => {
    if (blocked && !sending && fingerprintOf(subject.value.trim(), body.value) !== blocked.fingerprint) {
      blocked = null;
      result.replaceChildren();
    }
  };
  subject.addEventListener('input', onEdit);
  body.addEventListener('input', onEdit);

  // recipient_undeliverable (our last message bounced or drew a complaint) or
  // recipient_suppressed (the mail provider's suppression list has the address): both offer
  // "Send anyway".
  function undeliverableNotice(err, refused) {
    const complaint = err.lastStatus === 'complained';
    const name = user.display_name;
    let title = complaint ? `${name} marked the last message as spam.` : `The last message to ${name} bounced.`;
    let why = complaint
      ? 'Nothing was sent.'
      : 'Their mail server refused it for good, so the address may be wrong or no longer exist. Nothing was sent.';
    const suppressed = err.code === 'recipient_suppressed';
    if (suppressed) {
      title = `${user.email || 'This address'} is on the mail provider’s suppression list.`;
      const cause = SUPPRESSION_REASON[err.reason] || 'of an earlier delivery problem';
      const since = fmtDate(err.lastUpdateTime);
      why = [
        'It was put there ',
        since ? h('time', { datetime: err.lastUpdateTime, text: `on ${since} ` }) : null,
        `because ${cause}. Nothing was sent.`,
      ];
    }
    const anyway = h('button', { type: 'button', class: 'btn warn', id: `send-anyway-${id}` }, 'Send anyway');
    const error = h('div', { class: 'anyway-error' });
    blocked = { ...refused, key: crypto.randomUUID(), button: anyway, error };
    anyway.addEventListener('click', () => submit({ anyway: true }));
    return h(
      'div',
      { class: `notice warn undeliverable${suppressed ? ' suppressed' : ''}`, role: 'alert', dataset: suppressed ? { reason: err.reason || '' } : null },
      h('strong', { text: title }),
      h('p', {}, why, ` Sending again can hurt the delivery of Teleperson’s other mail; check the address with ${name} another way if you can.`),
      h('div', { class: 'notice-actions' }, anyway),
      error,
    );
  }

  async function submit({ anyway }) {
    if (sending || (anyway && !blocked)) return;
    let subj;
    let text;
    let key;
    if (anyway) {
      ({ subject: subj, body: text, key } = blocked);
      blocked.error.replaceChildren();
    } else {
      subj = subject.value.trim();
      text = body.value;
      result.replaceChildren();
      blocked = null;
      if (!text.trim()) {
        result.replaceChildren(h('div', { class: 'notice error', role: 'alert' }, 'Write a message first.'));
        body.focus();
        return;
      }
      const fingerprint = fingerprintOf(subj, text);
      if (attempt.fingerprint !== fingerprint) attempt = { fingerprint, key: crypto.randomUUID() };
      key = attempt.key;
    }
    const button = anyway ? blocked.button : send;
    const idleLabel = anyway ? 'Send anyway' : 'Send';
    sending = true;
    setBusy(button, 'Sending…');
    if (anyway) send.setAttribute('aria-disabled', 'true');
    try {
      const payload = { subject: subj, body: text };
      if (anyway) payload.send_anyway = true;
      const { status, data } = await api('POST', `/admin/users/${enc(id)}/messages`, {
        body: payload,
        headers: { 'Idempotency-Key': key },
      });
      const focusWasOnAnyway = anyway && document.activeElement === button;
      attempt = { fingerprint: null, key: null };
      blocked = null;
      // 202 {status: "pending"}: the mail service's answer was lost, so the message may have
      // gone out. It is never sent again; the history shows its status once it is confirmed.
      const pending = status === 202 || data.status === 'pending';
      result.replaceChildren(
        pending
          ? h(
              'div',
              { class: 'notice pending' },
              h('strong', { text: 'Pending — the mail service has not confirmed this message yet.' }),
              h('p', { text: `It may already have reached ${user.display_name}, so it will not be sent again. Its status in the history changes when the mail service confirms it.` }),
              'Message id ',
              h('code', { text: data.message_id }),
            )
          : h(
              'div',
              { class: 'notice success' },
              h('strong', { text: `Message sent to ${user.display_name}.` }),
              'Message id ',
              h('code', { text: data.message_id }),
              ' · ',
              h('a', { href: '/dev/outbox', target: '_blank', rel: 'noopener', text: 'view the outbox' }),
            ),
      );
      body.value = '';
      updateCounter();
      state.drafts.delete(id);
      // The "Send anyway" button is gone: its focus goes back to Send.
      if (focusWasOnAnyway) send.focus();
      loadHistory(id, historyList, { follow: true });
    } catch (err) {
      // In flight: the first attempt with this key may still send it, so this is no "not sent".
      const heading = err.code === 'request_in_progress' ? 'The message is still being sent.' : 'The message was not sent.';
      // The key belongs to another message: the next try takes a new one.
      if (err.code === 'idempotency_key_reused') {
        if (anyway && blocked) blocked.key = crypto.randomUUID();
        else attempt = { fingerprint: null, key: null };
      }
      if (!anyway && (err.code === 'recipient_undeliverable' || err.code === 'recipient_suppressed')) {
        const notice = undeliverableNotice(err, { fingerprint: fingerprintOf(subj, text), subject: subj, body: text });
        result.replaceChildren(notice);
        // It asks for a decision: make sure it is on screen (focus stays on Send).
        notice.scrollIntoView({ block: 'nearest' });
        loadHistory(id, historyList);
      } else if (anyway && blocked) {
        // The choice stays on screen: trying again reuses this attempt's key.
        blocked.error.replaceChildren(errorNotice(err, heading));
      } else {
        result.replaceChildren(errorNotice(err, heading));
        if (err.code === 'subject_invalid') subject.focus();
        else if (err.code === 'body_invalid' || err.code === 'payload_too_large') body.focus();
      }
      if (err.code === 'user_deleted' || err.code === 'user_not_found' || err.code === 'request_in_progress') {
        loadHistory(id, historyList, { follow: err.code === 'request_in_progress' });
      }
    } finally {
      sending = false;
      if (button.isConnected) setIdle(button, idleLabel);
      if (anyway) send.removeAttribute('aria-disabled');
      activity.reload();
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit({ anyway: false });
  });

  const panel = h(
    'div',
    {
      class: 'composer',
      id: `composer-${id}`,
      role: 'region',
      'aria-label': `Message ${user.display_name}`,
      onkeydown: (e) => {
        if (e.key === 'Escape') {
          e.preventDefault();
          closeComposer({ focusRow: true });
        }
      },
    },
    form,
    h('aside', { class: 'history' }, h('h3', { text: 'Message history' }), historyList, activity.el),
  );
  const composerRow = h('tr', { class: 'composer-row' }, h('td', { colspan: '5' }, panel));
  row.after(composerRow);
  loadHistory(id, historyList, { follow: true });
  activity.reload();
  subject.focus();
}

/** The history entry of one message: subject, status badge, when the status last changed. */
function renderMessage(m) {
  const status = MESSAGE_STATUS[m.status] || { label: m.status, verb: m.status, note: null };
  const sender = state.names.get(m.sender_id) || 'an admin';
  // When the status last changed (a delivery event, a bounce, ...); a pending message has
  // none yet, so its creation time stands in.
  const when = m.updated_at || m.sent_at || m.created_at;
  const whenText = fmtDate(when, dateTimeFmt);
  // "· sent <time>" too when the status changed at another minute than the send.
  const sentText = m.sent_at ? fmtDate(m.sent_at, dateTimeFmt) : '';
  const sentToo = m.status !== 'sent' && sentText && sentText !== whenText;
  return h(
    'li',
    { dataset: { messageId: m.message_id, status: m.status } },
    h(
      'div',
      { class: 'msg-head' },
      h('span', { class: 'msg-subject', text: m.subject }),
      h('span', { class: `status status-${m.status}`, title: status.note || null, text: status.label }),
    ),
    h(
      'div',
      { class: 'msg-meta' },
      h('time', { class: 'status-time', datetime: when, text: `${status.verb} ${whenText}` }),
      sentToo ? ` · sent ${sentText}` : '',
      ` · by ${sender}`,
    ),
    status.note && (m.status === 'bounced' || m.status === 'complained' || m.status === 'failed' || m.status === 'unconfirmed')
      ? h('div', { class: `msg-note note-${m.status}`, text: status.note })
      : null,
    m.body ? h('div', { class: 'msg-body', text: m.body }) : null,
  );
}

/**
 * Loads the history into `list`. With `follow`, it is loaded again every few seconds while
 * a message is still pending or sent (its delivery event has not arrived yet), for a while.
 */
async function loadHistory(userId, list, { follow = false } = {}) {
  const poll = list._poll || (list._poll = { seq: 0, timer: null, left: 0 });
  const seq = ++poll.seq;
  clearTimeout(poll.timer);
  if (follow) poll.left = HISTORY_POLLS;
  if (!list.children.length) list.replaceChildren(h('li', { class: 'empty' }, 'Loading…'));
  let items = null;
  try {
    const { data } = await api('GET', `/admin/users/${enc(userId)}/messages?limit=20`);
    if (seq !== poll.seq) return;
    items = data.items || [];
    if (!items.length) {
      list.replaceChildren(h('li', { class: 'empty', text: 'No messages sent to this user yet.' }));
    } else {
      list.replaceChildren(...items.map(renderMessage));
    }
  } catch (err) {
    if (seq !== poll.seq) return;
    list.replaceChildren(h('li', { class: 'empty' }, `Message history unavailable: ${describe(err)}`));
  }
  const waiting = items?.some((m) => m.status === 'pending' || m.status === 'sent');
  if (waiting && poll.left > 0) {
    poll.left -= 1;
    poll.timer = setTimeout(() => {
      if (list.isConnected && state.openComposer === userId) loadHistory(userId, list);
    }, HISTORY_POLL_MS);
  }
}

// ---------------------------------------------------------------------------------------
// the delete dialog
// ---------------------------------------------------------------------------------------

function denialText(code) {
  switch (code) {
    case 'privileged_target':
      return ['You can’t delete an admin or an owner', 'Only an owner can delete an admin or an owner. Ask an owner if this account has to go.'];
    case 'self_deletion':
      return ['You can’t delete your own account here', 'Use the account-deletion flow in your profile instead.'];
    case 'forbidden_role':
      return ['You don’t have permission', 'Only admins and owners can delete users.'];
    case 'unauthenticated':
      return ['You are signed out', ERROR_TEXT.unauthenticated];
    case 'user_deleted':
      return ['Already deleted', 'This user has already been deleted.'];
    case 'user_not_found':
      return ['User not found', ERROR_TEXT.user_not_found];
    case 'last_owner':
      return ['You can’t delete the last owner', ERROR_TEXT.last_owner];
    default:
      return ['This user can’t be deleted', ERROR_TEXT[code] || 'The deletion is not allowed.'];
  }
}

async function openDeleteDialog(user, row) {
  if (state.dialog || state.openingDialog) return;
  state.openingDialog = true;
  const trash = $('button.icon-btn', row);
  trash.setAttribute('aria-busy', 'true');
  const me = currentIdentity();
  let preview = null;
  let previewError = null;
  try {
    preview = (await api('GET', `/admin/users/${enc(user.user_id)}/deletion-preview`)).data;
  } catch (err) {
    previewError = err;
  } finally {
    trash.removeAttribute('aria-busy');
    state.openingDialog = false;
  }

  const running = state.deleting.get(user.user_id);
  let denied = null;
  let ackRequired = false;
  if (preview) {
    denied = preview.allowed ? null : preview.denied_code || 'forbidden_role';
    ackRequired = !!preview.acknowledgement_required;
  } else if (previewError?.code && previewError.status < 500) {
    denied = previewError.code;
  } else if (me?.role === 'admin' && isPrivileged(user.role)) {
    denied = 'privileged_target';
  } else {
    ackRequired = me?.role === 'owner' && isPrivileged(user.role);
  }
  // A deletion already under way is joined, not refused.
  if (running) denied = null;

  const dialog = els.dialog;
  const confirm = h('button', { type: 'button', class: 'btn danger', id: 'delete-confirm' }, 'Delete permanently');
  const cancel = h('button', { type: 'button', class: 'btn secondary', onclick: () => dialog.close() }, 'Cancel');
  const error = h('div', { class: 'dialog-error', role: 'alert' });
  const barFill = h('span');
  const progressText = h('span');
  const progressCount = h('span');
  const progress = h(
    'div',
    { class: 'progress-box', hidden: true },
    h('div', { class: 'progress-label' }, progressText, progressCount),
    h('div', { class: 'bar', role: 'progressbar', 'aria-label': 'Deletion progress', 'aria-valuemin': '0', 'aria-valuemax': '100' }, barFill),
  );
  const ack = h('input', { type: 'checkbox', id: 'delete-ack' });
  const ackLabel = ackRequired
    ? h('label', { class: 'ack', for: 'delete-ack' }, ack, h('span', { text: 'I understand this removes an administrator' }))
    : null;

  let total = null;
  let exact = false;
  let previewBox = null;
  if (preview) {
    const names = [...Object.keys(TABLE_LABELS).filter((n) => n in preview.tables), ...Object.keys(preview.tables).filter((n) => !(n in TABLE_LABELS))];
    // Counts are exact, or "<cap>+" past the preview's cap: then the total is a lower bound.
    exact = names.every((n) => /^\d+$/.test(preview.tables[n]));
    total = names.reduce((a, n) => a + (parseInt(preview.tables[n], 10) || 0), 0);
    previewBox = h(
      'div',
      { class: 'preview' },
      h('h3', { text: 'What will be removed' }),
      h(
        'table',
        {},
        h(
          'tbody',
          {},
          names.map((n) => h('tr', {}, h('td', { text: TABLE_LABELS[n] || n }), h('td', { class: 'n', text: fmtCount(preview.tables[n]) }))),
          h('tr', {}, h('td', { text: 'Sign-in account' }), h('td', { class: 'n', text: '1' })),
        ),
      ),
      h('div', { class: 'foot', text: 'The profile is anonymised to “Deleted User” and kept as a tombstone. The audit log keeps ids and an email hash only.' }),
    );
  } else if (previewError && !denied) {
    previewBox = errorNotice(previewError, 'The preview could not be loaded.');
  }

  let deniedBox = null;
  if (denied) {
    const [title, text] = denialText(denied);
    deniedBox = h('div', { class: 'notice warn', id: 'delete-denied' }, h('strong', { text: title }), text);
  }

  const ctx = { user, row, ackRequired, total, exact, confirm, cancel, error, progress, barFill, progressText, progressCount, ack, actor: state.user, done: false };
  state.dialog = ctx;

  const refresh = () => {
    confirm.disabled = !!denied || (ackRequired && !ack.checked) || !!state.deleting.get(user.user_id);
  };
  ack.addEventListener('change', refresh);
  confirm.addEventListener('click', () => runDeletion(ctx));
  refresh();

  dialog.replaceChildren(
    h(
      'div',
      { class: 'dialog-body' },
      h('div', { class: 'dialog-head' }, h('span', { class: 'danger-icon' }, warnIcon()), h('h2', { id: 'delete-title', text: `Delete ${user.display_name}?` })),
      h(
        'p',
        { id: 'delete-desc' },
        'This permanently deletes ',
        h('strong', { text: user.display_name }),
        user.email ? ` (${user.email})` : '',
        isPrivileged(user.role) ? `, who is ${user.role === 'owner' ? 'an owner' : 'an admin'},` : '',
        ' and all of their data. This can’t be undone.',
      ),
      deniedBox,
      previewBox,
      denied ? null : ackLabel,
      progress,
      error,
      h('div', { class: 'dialog-actions' }, cancel, confirm),
    ),
  );
  dialog.showModal();
  if (running) showProgress(ctx, running.last);
  // Focus the first control (the acknowledgement box when there is one).
  const first = dialog.querySelector('input:not([disabled]), button:not([disabled])');
  first?.focus();
}

function onDialogClose() {
  const ctx = state.dialog;
  state.dialog = null;
  if (!ctx) return;
  const target = ctx.focusAfter || (document.contains(ctx.row) ? ctx.row : els.search);
  target?.focus();
}

function markDeleting(userId, on) {
  const row = rowOf(userId);
  if (!row) return;
  row.classList.toggle('is-deleting', on);
  const cell = $('.name-cell', row);
  const tag = $('.state-tag', cell);
  if (on && !tag) cell.append(h('span', { class: 'state-tag', text: 'Deleting…' }));
  if (!on) tag?.remove();
}

async function runDeletion(ctx) {
  const { user, confirm, cancel, error } = ctx;
  error.replaceChildren();
  confirm.disabled = true;
  confirm.replaceChildren(h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Deleting…');
  const job = { actor: ctx.actor, last: null };
  state.deleting.set(user.user_id, job);
  markDeleting(user.user_id, true);
  try {
    const body = ctx.ackRequired && ctx.ack.checked ? { acknowledge_privileged: true } : undefined;
    const { status, data } = await api('DELETE', `/admin/users/${enc(user.user_id)}`, { body, as: ctx.actor });
    if (status === 200 && data.status === 'completed') {
      finishDeletion(user, data.deleted);
      return;
    }
    cancel.textContent = 'Close';
    showProgress(ctx, null);
    pollDeletion(user, job);
  } catch (err) {
    state.deleting.delete(user.user_id);
    markDeleting(user.user_id, false);
    if (state.dialog === ctx) {
      error.replaceChildren(errorNotice(err, `${user.display_name} was not deleted.`));
      confirm.replaceChildren('Delete permanently');
      confirm.disabled = (ctx.ackRequired && !ctx.ack.checked) || err.code === 'privileged_target' || err.code === 'forbidden_role' || err.code === 'self_deletion' || err.code === 'last_owner';
    } else {
      toast(`${user.display_name} was not deleted: ${describe(err)}`);
    }
  }
}

function showProgress(ctx, status) {
  if (state.dialog !== ctx) return;
  ctx.progress.hidden = false;
  ctx.cancel.textContent = 'Close';
  ctx.confirm.disabled = true;
  ctx.confirm.replaceChildren(h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Deleting…');
  const step = status?.step || 'audit';
  const deleted = status?.deleted ? Object.values(status.deleted).reduce((a, n) => a + Number(n || 0), 0) : 0;
  ctx.progressText.textContent = `${STEP_LABELS[step] || step}…`;
  ctx.progressCount.textContent =
    ctx.total && ctx.exact ? `${deleted.toLocaleString('en-US')} of ${ctx.total.toLocaleString('en-US')} items` : `${plural(deleted, 'item')} removed`;
  const order = ['audit', 'lock_out', 'anonymise', 'cascade', 'delete_auth', 'complete', 'late_pass', 'done'];
  let pct;
  if (step === 'cascade' && ctx.total) pct = 15 + Math.min(80, (deleted / ctx.total) * 80);
  else if (step === 'cascade') pct = 50;
  else pct = ['delete_auth', 'complete', 'late_pass', 'done'].includes(step) ? 97 : (order.indexOf(step) + 1) * 4;
  ctx.barFill.style.width = `${Math.round(pct)}%`;
  ctx.barFill.parentElement.setAttribute('aria-valuenow', String(Math.round(pct)));
}

async function pollDeletion(user, job) {
  let failures = 0;
  for (;;) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    if (state.deleting.get(user.user_id) !== job) return;
    try {
      const { data } = await api('GET', `/admin/users/${enc(user.user_id)}/deletion`, { as: job.actor });
      failures = 0;
      job.last = data;
      if (data.status === 'completed') {
        finishDeletion(user, data.deleted, data.late_pass);
        return;
      }
      if (state.dialog?.user.user_id === user.user_id) showProgress(state.dialog, data);
    } catch (err) {
      failures += 1;
      if ((err.status >= 400 && err.status < 500) || failures >= 10) {
        state.deleting.delete(user.user_id);
        markDeleting(user.user_id, false);
        const msg = `Could not follow the deletion of ${user.display_name}: ${describe(err)}`;
        if (state.dialog?.user.user_id === user.user_id) state.dialog.error.replaceChildren(h('div', { class: 'notice error' }, msg));
        else toast(msg);
        return;
      }
    }
  }
}

/**
 * The late pass of a completed deletion (`late_pass` of the status): one last sweep of the
 * user's data once no token issued before the lock-out can be used any more.
 */
function latePassText(latePass) {
  if (!latePass) return '';
  const late = latePass.late ? Object.values(latePass.late).reduce((a, x) => a + Number(x || 0), 0) : 0;
  if (latePass.status === 'done') {
    const when = latePass.done_at ? ` on ${fmtDate(latePass.done_at, dateTimeFmt)}` : '';
    return ` The final check${when} removed ${plural(late, 'late item')}.`;
  }
  const due = latePass.due_at ? fmtDate(latePass.due_at, dateTimeFmt) : '';
  return due ? ` A final check for data written by sessions that were still open runs after ${due}.` : '';
}

function finishDeletion(user, deleted, latePass = null) {
  state.deleting.delete(user.user_id);
  const n = deleted ? Object.values(deleted).reduce((a, x) => a + Number(x || 0), 0) : 0;
  const ctx = state.dialog;
  const next = removeRow(user.user_id);
  if (ctx && ctx.user.user_id === user.user_id) {
    ctx.focusAfter = next;
    els.dialog.close();
  }
  toast(`${user.display_name} was deleted. ${plural(n, 'item')} removed.${latePassText(latePass)}`);
}

// ---------------------------------------------------------------------------------------
// start
// ---------------------------------------------------------------------------------------

async function main() {
  els.identity = $('#signed-in-as');
  els.search = $('#search');
  els.body = $('#users-body');
  addTableFoot(els.body.closest('table'), { message: 'table-message', count: 'count', more: 'load-more' });
  els.loadMore = $('#load-more');
  els.count = $('#count');
  els.tableMessage = $('#table-message');
  els.dialog = $('#delete-dialog');
  els.toasts = $('#toasts');

  els.dialog.addEventListener('close', onDialogClose);
  // Esc closes the open composer (also when focus is on the page itself, not inside it).
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || state.dialog || !state.openComposer || e.defaultPrevented) return;
    if (e.target === document.body || e.target.closest?.('.composer')) {
      e.preventDefault();
      closeComposer({ focusRow: true });
    }
  });
  els.identity.addEventListener('change', () => {
    state.user = els.identity.value;
    localStorage.setItem(IDENTITY_KEY, state.user);
    loadUsers({ reset: true });
    onIdentityChange();
  });

  const url = new URL(location.href);
  state.q = (url.searchParams.get('q') || '').trim();
  els.search.value = state.q;
  let timer = null;
  els.search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.q = els.search.value.trim();
      const u = new URL(location.href);
      if (state.q) u.searchParams.set('q', state.q);
      else u.searchParams.delete('q');
      history.replaceState(null, '', u);
      loadUsers({ reset: true });
    }, 250);
  });

  els.loadMore.addEventListener('click', async () => {
    const rows = await loadUsers({ reset: false });
    if (rows?.length && els.loadMore.hidden) rows[0].focus();
  });

  await loadIdentities();
  // The Audit log view and the erasure lookup (audit.js); ?view=audit opens the view.
  const opening = initAudit();
  await loadUsers({ reset: true });
  await opening;
  document.body.dataset.ready = 'true';
}

main();

// The audit trail of the reference Users tab in a real browser (Debian's Chromium, headless)
// against the dev server: a user's Activity, the Audit log view and its filters, "Was this
// person erased?", and the composer's answer to a suppressed address. Each test gets its own
// dev server (fresh seeded data, its own outbox folder). Screenshots go to tests/e2e/screenshots/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { browserSuite, recordSends, shot, focused } from './harness.mjs';

const suite = browserSuite();
const { row, dialog } = suite;
let server;
let page;
const auditRows = () => page.locator('#audit-body tr.audit-row');
const sha256 = (s) => createHash('sha256').update(s, 'utf8').digest('hex');

async function start(as, extraArgs = []) {
  ({ server, page } = await suite.start(as, extraArgs));
}

/** Every GET /admin/audit and /admin/erasures URL the page requests, in order. */
function recordAuditRequests(p) {
  const urls = [];
  p.on('request', (req) => {
    const u = new URL(req.url());
    if (req.method() === 'GET' && (u.pathname === '/admin/audit' || u.pathname === '/admin/erasures')) urls.push(u);
  });
  return urls;
}

/** Opens `name`'s composer, sends `text`, and returns the composer and the message id. */
async function sendMessage(name, text) {
  await row(name).click();
  const composer = page.getByRole('region', { name: `Message ${name}` });
  await composer.getByLabel('Message', { exact: true }).fill(text);
  await composer.getByRole('button', { name: 'Send', exact: true }).click();
  const ok = composer.locator('.notice.success');
  await ok.waitFor();
  const messageId = await ok.locator('code').innerText();
  assert.match(messageId, /^[0-9a-f-]{36}$/);
  return { composer, messageId };
}

/** Reads the Audit log table as data (what the page shows of each row). */
function readLog() {
  return page.locator('#audit-body tr.audit-row').evaluateAll((rows) =>
    rows.map((r) => ({
      type: r.dataset.eventType,
      actor: r.dataset.actorId,
      target: r.dataset.targetId,
      label: r.querySelector('td.event').innerText.trim(),
      actorShown: r.querySelector('td.actor code')?.innerText.trim() || null,
      time: r.querySelector('td.when time')?.getAttribute('datetime'),
      details: r.querySelector('td.details').innerText,
    })),
  );
}

/** Sets the filters, presses Apply and waits for the answer; returns the request's URL. */
async function applyFilters({ actor = '', target = '', type = '' }) {
  await page.getByLabel('Actor id').fill(actor);
  await page.getByLabel('Target id').fill(target);
  await page.getByLabel('Type', { exact: true }).selectOption(type);
  const [res] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === '/admin/audit' && r.request().method() === 'GET'),
    page.getByRole('button', { name: 'Apply' }).click(),
  ]);
  assert.equal(res.status(), 200, `GET /admin/audit answered ${res.status()}`);
  // The page has rendered the answer once the busy marker is gone.
  await page.waitForFunction(() => !document.querySelector('#audit-body').hasAttribute('aria-busy'));
  return new URL(res.url());
}

const newestFirst = (times) => times.every((t, i) => i === 0 || Date.parse(times[i - 1]) >= Date.parse(t));

test('after a message is sent, the user’s Activity shows it with the admin’s id', { timeout: 60_000 }, async () => {
  await start('Marcus Chen');
  const requests = recordAuditRequests(page);
  const marcus = server.byName('Marcus Chen');
  const ana = server.byName('Ana Lima');
  const { composer, messageId } = await sendMessage('Ana Lima', 'Hello Ana, your refund went out today.');
  const activity = composer.locator('.activity');
  assert.equal(await activity.getByRole('heading', { name: 'Activity' }).count(), 1);
  const entry = activity.locator('li.activity-item', { hasText: messageId });
  await entry.waitFor();
  assert.equal(await entry.locator('.event-label').innerText(), 'Message sent');
  assert.equal(await entry.getAttribute('data-event-type'), 'admin_sent_user_message');
  assert.equal(await entry.getAttribute('data-actor-id'), marcus);
  assert.equal(await entry.getAttribute('data-target-id'), ana);
  assert.equal(await entry.locator('.actor .who code').innerText(), marcus, 'the admin’s id is shown');
  assert.equal(await entry.locator('.actor .who-name').innerText(), 'Marcus Chen');
  const when = await entry.locator('time').getAttribute('datetime');
  assert.ok(Math.abs(Date.now() - Date.parse(when)) < 5 * 60_000, `created_at ${when} is now`);
  assert.match(await entry.locator('time').innerText(), /\d{4}, \d{1,2}:\d{2}:\d{2}/, 'a readable local time');
  // Newest first: the send is the first row.
  assert.equal(await activity.locator('li').first().getAttribute('data-event-id'), await entry.getAttribute('data-event-id'));
  // Read through GET /admin/audit?target=<user>&limit=20.
  const asked = requests.filter((u) => u.pathname === '/admin/audit');
  assert.ok(asked.length >= 2, 'loaded with the panel and again after the send');
  assert.ok(asked.every((u) => u.searchParams.get('target') === ana && u.searchParams.get('limit') === '20'), asked.join(' '));
  await composer.evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await shot(page, 'audit-01-activity-message-sent');

  // A user nothing happened to yet: the empty state.
  await row('Chloé Dubois').click();
  const other = page.getByRole('region', { name: 'Message Chloé Dubois' });
  await other.locator('.activity li.empty', { hasText: 'No activity recorded for this user yet.' }).waitFor();
  await shot(page, 'audit-02-activity-empty');
});

test('the Audit log lists every row, newest first, and its filters narrow it', { timeout: 90_000 }, async () => {
  await start('Marcus Chen');
  const requests = recordAuditRequests(page);
  const marcus = server.byName('Marcus Chen');
  const ana = server.byName('Ana Lima');
  const { messageId } = await sendMessage('Ana Lima', 'A message for the audit log.');

  // A plain user is refused the list (an admin_action_denied row), and the audit log too.
  await page.selectOption('#signed-in-as', ana);
  await page.getByText('You don’t have access to the Users tab').waitFor();
  await page.getByRole('button', { name: 'Audit log', exact: true }).click();
  const message = page.locator('#audit-message');
  await message.getByText('You don’t have access to the audit log').waitFor();
  assert.match(await message.innerText(), /Only admins and owners can do this\./);
  assert.equal(await auditRows().count(), 0);
  assert.match(page.url(), /\?view=audit$/);
  await shot(page, 'audit-03-log-refused-for-a-user');

  // Back as the admin: the view reloads as them.
  await page.selectOption('#signed-in-as', marcus);
  await auditRows().first().waitFor();
  await page.waitForFunction(() => !document.querySelector('#audit-body').hasAttribute('aria-busy'));
  const all = await readLog();
  assert.ok(newestFirst(all.map((r) => r.time)), `newest first: ${all.map((r) => r.time)}`);
  const sent = all.find((r) => r.type === 'admin_sent_user_message' && r.details.includes(messageId));
  assert.ok(sent, `the send is listed: ${JSON.stringify(all)}`);
  assert.equal(sent.label, 'Message sent');
  assert.equal(sent.actor, marcus);
  assert.equal(sent.actorShown, marcus);
  assert.equal(sent.target, ana);
  const refused = all.filter((r) => r.type === 'admin_action_denied');
  assert.ok(refused.length >= 1, `the refusals are listed: ${JSON.stringify(all)}`);
  assert.ok(refused.every((r) => r.label === 'Refused' && r.actor === ana && r.target === '*'), JSON.stringify(refused));
  const listRefusal = refused.find((r) => /Tried to\s+list the users/.test(r.details));
  assert.ok(listRefusal, JSON.stringify(refused));
  assert.match(listRefusal.details, /Reason\s+forbidden_role/);
  for (const label of ['Time', 'Event', 'Actor', 'Target', 'Details']) {
    assert.equal(await page.getByRole('columnheader', { name: label, exact: true }).count(), 1, `a ${label} column header`);
  }
  const unfiltered = requests.filter((u) => u.pathname === '/admin/audit' && !u.searchParams.has('target')).at(-1);
  assert.equal([...unfiltered.searchParams.keys()].sort().join(','), 'limit', `no filters sent: ${unfiltered}`);
  await shot(page, 'audit-04-log-all');

  // Type: refusals only.
  const deniedUrl = await applyFilters({ type: 'admin_action_denied' });
  assert.equal(deniedUrl.searchParams.get('type'), 'admin_action_denied');
  const denied = await readLog();
  assert.equal(denied.length, refused.length, JSON.stringify(denied));
  assert.ok(denied.every((r) => r.type === 'admin_action_denied' && r.label === 'Refused'), JSON.stringify(denied));
  assert.match(await page.locator('#audit-count').innerText(), /matching the filters/);
  await shot(page, 'audit-05-log-refusals');

  // Type: messages only.
  const sentUrl = await applyFilters({ type: 'admin_sent_user_message' });
  assert.equal(sentUrl.searchParams.get('type'), 'admin_sent_user_message');
  const messages = await readLog();
  assert.ok(messages.length >= 1 && messages.length < all.length, `${messages.length} of ${all.length}`);
  assert.ok(messages.every((r) => r.type === 'admin_sent_user_message' && r.label === 'Message sent'), JSON.stringify(messages));
  assert.ok(messages.some((r) => r.details.includes(messageId)));

  // Target and type together: the one message to Ana.
  await applyFilters({ target: ana, type: 'admin_sent_user_message' });
  const toAna = await readLog();
  assert.deepEqual(toAna.map((r) => [r.type, r.target, r.actor]), [['admin_sent_user_message', ana, marcus]]);

  // Nothing matches: the empty state.
  await applyFilters({ actor: marcus, type: 'admin_action_denied' });
  assert.equal(await auditRows().count(), 0);
  await page.locator('#audit-message', { hasText: 'No entries match these filters' }).waitFor();

  // Keyboard only: the view's heading takes the focus; Tab reaches the filters; Enter applies.
  await page.getByRole('button', { name: 'All users', exact: true }).click();
  await page.locator('#audit-view').waitFor({ state: 'hidden' });
  assert.equal(await page.locator('#users-view').isVisible(), true);
  await page.getByRole('button', { name: 'Audit log', exact: true }).focus();
  await page.keyboard.press('Enter');
  await page.locator('#audit-view').waitFor();
  assert.equal((await focused(page)).id, 'audit-title', 'focus moves to the view');
  await page.keyboard.press('Tab');
  assert.equal((await focused(page)).id, 'audit-actor');
  await page.keyboard.press('Control+A');
  await page.keyboard.type(ana);
  await page.keyboard.press('Tab');
  assert.equal((await focused(page)).id, 'audit-target');
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Backspace');
  await page.getByLabel('Type', { exact: true }).selectOption('');
  await page.getByLabel('Actor id').focus();
  const [res] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === '/admin/audit' && new URL(r.url()).searchParams.get('actor') === ana),
    page.keyboard.press('Enter'),
  ]);
  assert.equal(res.status(), 200);
  await page.waitForFunction(() => !document.querySelector('#audit-body').hasAttribute('aria-busy'));
  const byAna = await readLog();
  assert.equal(byAna.length, refused.length, JSON.stringify(byAna));
  assert.ok(byAna.every((r) => r.actor === ana), JSON.stringify(byAna));
  await shot(page, 'audit-06-log-by-actor');
});

test('a deleted user’s address finds exactly one erasure; an unknown one finds none', { timeout: 90_000 }, async () => {
  await start('Marcus Chen');
  const consoleText = [];
  page.on('console', (m) => consoleText.push(m.text()));
  const requests = recordAuditRequests(page);
  const marcus = server.byName('Marcus Chen');
  const ben = server.byName('Benjamin Okafor');

  // Delete Benjamin Okafor, as users-tab.test.mjs does, and wait until it has completed.
  await row('Benjamin Okafor').getByRole('button', { name: 'Delete Benjamin Okafor' }).click();
  await dialog().locator('.preview').waitFor();
  await dialog().getByRole('button', { name: 'Delete permanently' }).click();
  await row('Benjamin Okafor').waitFor({ state: 'detached' });
  await page.locator('.toast', { hasText: 'Benjamin Okafor was deleted.' }).waitFor();
  const job = await (
    await fetch(`${server.url}/admin/users/${ben}/deletion`, { headers: { Authorization: `Bearer ${await server.tokenOf('Marcus Chen')}` } })
  ).json();
  assert.equal(job.status, 'completed', JSON.stringify(job));
  assert.match(job.job_id, /\S/);
  const total = Object.values(job.deleted).reduce((a, n) => a + n, 0);
  assert.ok(total > 0, JSON.stringify(job.deleted));

  // The log has both deletion rows, with the job id and the counts.
  await page.getByRole('button', { name: 'Audit log', exact: true }).click();
  await auditRows().first().waitFor();
  await applyFilters({ target: ben });
  const rows = await readLog();
  const started = rows.find((r) => r.type === 'admin_deleted_user');
  const completed = rows.find((r) => r.type === 'admin_deletion_completed');
  assert.ok(started && completed, JSON.stringify(rows));
  assert.equal(started.label, 'Deletion started');
  assert.equal(started.actor, marcus);
  assert.match(started.details, new RegExp(`Job\\s+${job.job_id}`));
  assert.match(started.details, /Role\s+user/);
  assert.equal(completed.label, 'Deletion completed');
  const completedRow = auditRows().filter({ has: page.locator('td.event', { hasText: 'Deletion completed' }) });
  assert.equal(await completedRow.locator('table.counts tr.total td.n').innerText(), total.toLocaleString('en-US'));
  await shot(page, 'audit-07-log-deletion');

  // "Was this person erased?": the address in another case, with spaces around it.
  const typed = '  BEN.Okafor@Example.COM  ';
  const email = page.getByLabel('Email address');
  await email.fill(typed);
  await page.getByRole('button', { name: 'Check', exact: true }).click();
  const result = page.locator('#erasure-result');
  await result.locator('.erasure-card, .erasure-none').first().waitFor();
  const lookup = requests.filter((u) => u.pathname === '/admin/erasures').at(-1);
  assert.equal(lookup.searchParams.get('email'), typed, 'sent as typed: the server trims and lower-cases it');
  const cards = result.locator('.erasure-card');
  assert.equal(await cards.count(), 1, 'exactly one erasure');
  const card = cards.first();
  assert.equal(await card.getAttribute('data-job-id'), job.job_id);
  assert.equal(await card.locator('code.job-id').innerText(), job.job_id);
  assert.equal(await card.locator('code.user-id').innerText(), ben);
  assert.equal(await card.locator('.job-status').innerText(), 'Completed');
  assert.match(await card.locator('dl').innerText(), new RegExp(`Deleted by\\s+Marcus Chen\\s+${marcus}`));
  assert.match(await card.locator('dl').innerText(), /Role\s+user/);
  assert.match(await card.locator('dl').innerText(), /Completed\s+\w{3} \d{1,2}, \d{4}/);
  for (const [table, n] of Object.entries(job.deleted)) {
    assert.equal(await card.locator(`table.counts tr[data-table="${table}"] td.n`).first().innerText(), n.toLocaleString('en-US'), table);
  }
  assert.equal(await card.locator('table.counts tr.total td.n').first().innerText(), total.toLocaleString('en-US'));
  assert.equal(await result.locator('.looked-up-as code').innerText(), sha256('ben.okafor@example.com'));
  assert.match(await result.locator('.looked-up-as').innerText(), /^Looked up as SHA-256 [0-9a-f]{64}$/);
  await shot(page, 'audit-08-erasure-found');

  // The address is kept nowhere but in the input.
  const needle = /ben\.okafor@example\.com/i;
  assert.equal(await email.inputValue(), typed);
  assert.doesNotMatch(page.url(), /okafor/i);
  const stored = await page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }]));
  assert.doesNotMatch(stored, /okafor/i);
  assert.doesNotMatch(await page.locator('section.erasure').innerText(), needle);
  assert.ok(!consoleText.some((t) => /okafor/i.test(t)), consoleText.join('\n'));

  // An address nobody was erased under.
  await email.fill('nobody.here@example.net');
  assert.equal(await result.locator('.erasure-card').count(), 0, 'editing the address withdraws the answer');
  await page.getByRole('button', { name: 'Check', exact: true }).click();
  await result.locator('.erasure-none').waitFor();
  assert.match(await result.locator('.erasure-none').innerText(), /No erasure on record for this address/);
  assert.equal(await result.locator('.erasure-card').count(), 0);
  assert.equal(await result.locator('.looked-up-as code').innerText(), sha256('nobody.here@example.net'));
  await shot(page, 'audit-09-erasure-none');

  // Not an address: refused in words.
  await email.fill('not-an-address');
  await page.getByRole('button', { name: 'Check', exact: true }).click();
  await result.getByText('That is not an email address.').waitFor();

  // Both lookups are in the log, newest first, with what they found.
  await applyFilters({ type: 'admin_looked_up_erasure' });
  const lookups = await readLog();
  assert.equal(lookups.length, 2, JSON.stringify(lookups));
  assert.ok(lookups.every((r) => r.label === 'Erasure looked up' && r.actor === marcus && r.target === '*'));
  assert.match(lookups[0].details, /Found\s+0 receipts/);
  assert.match(lookups[1].details, /Found\s+1 receipt\b/);
  assert.ok(lookups[1].details.includes(sha256('ben.okafor@example.com').slice(0, 12)));
  await shot(page, 'audit-10-log-lookups');
});

test('a suppressed address is explained, and Send anyway sends the message', { timeout: 60_000 }, async () => {
  await start('Olivia Bennett');
  const sends = recordSends(page);
  await page.getByLabel('Search users by name or email').fill('walsh');
  await page.waitForFunction(() => document.querySelectorAll('#users-body tr.user-row').length === 1);
  await row('Liam Walsh').click();
  const composer = page.getByRole('region', { name: 'Message Liam Walsh' });
  await composer.getByLabel('Subject').fill('Your Teleperson subscription');
  await composer.getByLabel('Message', { exact: true }).fill('Hello Liam, your subscription renews next week.');
  const [refusal] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && /\/messages$/.test(new URL(r.url()).pathname)),
    composer.getByRole('button', { name: 'Send', exact: true }).click(),
  ]);
  assert.equal(refusal.status(), 422);
  const problem = await refusal.json();
  assert.equal(problem.code, 'recipient_suppressed');
  assert.equal(problem.reason, 'BOUNCE');
  assert.equal(Date.parse(problem.last_update_time), Date.parse('2026-10-02T09:15:00Z'));

  const notice = composer.locator('.notice.suppressed');
  await notice.waitFor();
  const text = await notice.innerText();
  assert.match(text, /liam\.walsh@example\.com is on the mail provider’s suppression list\./);
  assert.match(text, /because an earlier message bounced\./);
  assert.match(text, /Nothing was sent\./);
  assert.equal(await notice.locator(`time[datetime="${problem.last_update_time}"]`).count(), 1, 'the date it was suppressed');
  assert.match(await notice.locator('time').innerText(), /2026/);
  assert.equal(server.emlFiles().length, 0, 'nothing was sent');
  assert.equal((await focused(page)).text, 'Send', 'focus stays on Send');
  await shot(page, 'audit-11-recipient-suppressed');

  await notice.getByRole('button', { name: 'Send anyway' }).click();
  const ok = composer.locator('.notice.success');
  await ok.waitFor();
  const messageId = await ok.locator('code').innerText();
  assert.equal(await notice.count(), 0);
  const files = server.emlFiles();
  assert.equal(files.length, 1);
  const mail = files.find((f) => f.name.includes(messageId));
  assert.ok(mail, `no .eml for ${messageId} in ${files.map((f) => f.name)}`);
  assert.match(mail.text, /^To: liam\.walsh@example\.com\r$/m);
  assert.equal(sends.length, 2);
  assert.equal(sends[0].body.send_anyway, undefined);
  assert.deepEqual(sends[1].body, { ...sends[0].body, send_anyway: true });
  assert.notEqual(sends[0].key, sends[1].key);
  // The send is in Liam's Activity.
  await composer.locator('.activity li.activity-item', { hasText: messageId }).waitFor();
  await composer.evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await shot(page, 'audit-12-suppressed-sent-anyway');
});

// The reference Users tab in a real browser (Debian's Chromium, headless) against the dev
// server. Each test gets its own dev server (fresh seeded data, its own outbox folder).
// Screenshots of every state go to tests/e2e/screenshots/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { browserSuite, recordSends, shot, focused, focusOnRow } from './harness.mjs';

const suite = browserSuite();
const { row, dialog } = suite;
let server;
let page;

async function start(as, extraArgs = []) {
  ({ server, page } = await suite.start(as, extraArgs));
}

/** Decodes a quoted-printable body and RFC 2047 B-encoded header text. */
function decodeQp(s) {
  const bytes = [];
  const joined = s.replace(/=\r\n/g, '');
  for (let i = 0; i < joined.length; i++) {
    if (joined[i] === '=') {
      bytes.push(parseInt(joined.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(joined.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}
function decodeHeader(v) {
  return v
    .replace(/\r\n /g, '')
    .replace(/=\?UTF-8\?B\?([^?]+)\?=/gi, (_, b64) => Buffer.from(b64, 'base64').toString('utf8'));
}
function headers(eml) {
  const head = eml.split('\r\n\r\n')[0].replace(/\r\n /g, ' ');
  return Object.fromEntries(head.split('\r\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
}

test('an owner sees the users, can search them and load more', { timeout: 60_000 }, async () => {
  await start('Olivia Bennett');
  await shot(page, '01-users-list');
  assert.equal(await page.locator('#users-body tr.user-row').count(), 25);
  assert.match(await page.locator('#count').innerText(), /Showing 25 users/);
  assert.equal(await row('Olivia Bennett').locator('.you-tag').innerText(), 'You');
  await page.getByRole('button', { name: 'Load more' }).click();
  await page.waitForFunction(() => document.querySelectorAll('#users-body tr.user-row').length > 25);
  const all = await page.locator('#users-body tr.user-row').count();
  assert.equal(all, 45, 'owner + 2 admins + 40 users + the one without email + the heavy one; the tombstone is hidden');
  assert.equal(await page.getByRole('button', { name: 'Load more' }).isHidden(), true);
  assert.equal(await row('Deleted User').count(), 0);

  await page.getByLabel('Search users by name or email').fill('lima');
  await page.waitForFunction(() => document.querySelectorAll('#users-body tr.user-row').length === 1);
  assert.equal(await row('Ana Lima').count(), 1);
  assert.match(page.url(), /\?q=lima$/);
  await shot(page, '02-search');
  await page.getByLabel('Search users by name or email').fill('nobody-here');
  await page.getByText('No users match “nobody-here”').waitFor();
  await shot(page, '03-search-empty');
});

test('sending a message writes an .eml with Reply-To hello@teleperson.com', { timeout: 60_000 }, async () => {
  await start('Marcus Chen');
  await row('Ana Lima').click();
  const composer = page.getByRole('region', { name: 'Message Ana Lima' });
  await composer.waitFor();
  assert.equal(await row('Ana Lima').getAttribute('aria-expanded'), 'true');
  assert.equal(await composer.getByLabel('Subject').inputValue(), 'A message from Teleperson');
  // The history shows earlier messages with their status.
  await composer.locator('.history li .status').first().waitFor();
  await composer.getByLabel('Subject').fill('Your Teleperson account – schöne Grüße');
  await composer.getByLabel('Message', { exact: true }).fill('Hello Ana,\n\nyour billing address is now fixed. Reply to this email if anything looks off.');
  await shot(page, '04-composer');
  await composer.getByRole('button', { name: 'Send' }).click();
  const ok = composer.locator('.notice.success');
  await ok.waitFor();
  const messageId = await ok.locator('code').innerText();
  assert.match(messageId, /^[0-9a-f-]{36}$/);
  await composer.locator(`.history li[data-message-id="${messageId}"] .status`).waitFor();
  assert.equal(await composer.locator(`.history li[data-message-id="${messageId}"] .status`).textContent(), 'Sent');
  await shot(page, '05-message-sent');

  const files = server.emlFiles();
  const mail = files.find((f) => f.name.includes(messageId));
  assert.ok(mail, `no .eml for ${messageId} in ${files.map((f) => f.name)}`);
  const h = headers(mail.text);
  assert.equal(h['Reply-To'], 'hello@teleperson.com');
  assert.equal(h.To, 'ana.lima@example.org');
  assert.equal(h.From, 'no-reply@teleperson.com');
  assert.equal(decodeHeader(h.Subject.replace(/ (?==\?)/g, '\r\n ')), 'Your Teleperson account – schöne Grüße');
  assert.equal(h['Content-Type'], 'text/plain; charset=utf-8');
  assert.match(decodeQp(mail.text.split('\r\n\r\n').slice(1).join('\r\n\r\n')), /your billing address is now fixed/);
});

test('the API error is shown in words when a user has no email address', { timeout: 60_000 }, async () => {
  await start('Olivia Bennett');
  await row('Jordan Blake').click();
  const composer = page.getByRole('region', { name: 'Message Jordan Blake' });
  await composer.getByText('has no email address on file').waitFor();
  assert.equal(await composer.getByRole('button', { name: 'Send' }).isDisabled(), true);
  await shot(page, '06-no-email');
  // Bypassing the page: the API refuses too, and the page's words for it are the same.
  const res = await page.evaluate(async ([id, token]) => {
    const r = await fetch(`/admin/users/${id}/messages`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ body: 'hi' }),
    });
    return { status: r.status, type: r.headers.get('content-type'), body: await r.json() };
  }, [await row('Jordan Blake').getAttribute('data-user-id'), await server.tokenOf('Olivia Bennett')]);
  assert.equal(res.status, 422);
  assert.equal(res.type, 'application/problem+json');
  assert.equal(res.body.code, 'no_email_address');
});

test('deleting a user shows the preview, then the row goes', { timeout: 60_000 }, async () => {
  await start('Marcus Chen');
  await row('Benjamin Okafor').getByRole('button', { name: 'Delete Benjamin Okafor' }).click();
  await dialog().locator('.preview').waitFor();
  assert.equal(await dialog().getByRole('heading', { name: 'Delete Benjamin Okafor?' }).count(), 1);
  assert.match(await dialog().locator('.preview').innerText(), /Transactions\s+\d+/);
  assert.equal(await dialog().getByRole('checkbox').count(), 0, 'no acknowledgement for a regular user');
  assert.equal(await dialog().getByRole('button', { name: 'Delete permanently' }).isEnabled(), true);
  await shot(page, '07-delete-dialog');
  await dialog().getByRole('button', { name: 'Delete permanently' }).click();
  await row('Benjamin Okafor').waitFor({ state: 'detached' });
  assert.equal(await dialog().isVisible(), false);
  await page.locator('.toast', { hasText: 'Benjamin Okafor was deleted.' }).waitFor();
  await shot(page, '08-deleted');
  // Gone for good: a reload does not bring it back.
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  await page.getByRole('button', { name: 'Load more' }).click();
  await page.waitForFunction(() => document.querySelectorAll('#users-body tr.user-row').length > 25);
  assert.equal(await row('Benjamin Okafor').count(), 0);
});

test('as owner, deleting an admin is gated by the acknowledgement checkbox', { timeout: 60_000 }, async () => {
  await start('Olivia Bennett');
  await row('Priya Raman').getByRole('button', { name: 'Delete Priya Raman' }).click();
  const ack = dialog().getByRole('checkbox', { name: 'I understand this removes an administrator' });
  await ack.waitFor();
  const confirm = dialog().getByRole('button', { name: 'Delete permanently' });
  assert.equal(await confirm.isDisabled(), true, 'disabled until ticked');
  assert.deepEqual((await focused(page)).id, 'delete-ack', 'the dialog focuses its first control');
  await shot(page, '09-owner-deletes-admin-unticked');
  await ack.check();
  assert.equal(await confirm.isEnabled(), true);
  await shot(page, '10-owner-deletes-admin-ticked');
  await ack.uncheck();
  assert.equal(await confirm.isDisabled(), true);
  await ack.check();
  await confirm.click();
  await row('Priya Raman').waitFor({ state: 'detached' });
  // The deleted admin is listed as deleted in the picker and has lost access.
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  const option = await page.locator('#signed-in-as option', { hasText: 'Priya Raman' }).innerText();
  assert.match(option, /\(deleted\)/);
  await page.selectOption('#signed-in-as', server.byName('Priya Raman'));
  await page.getByText('You are signed out').waitFor();
  await shot(page, '11-deleted-admin-has-no-access');
});

test('as admin, deleting an admin is refused in the dialog and by the API', { timeout: 60_000 }, async () => {
  await start('Marcus Chen');
  await row('Priya Raman').getByRole('button', { name: 'Delete Priya Raman' }).click();
  await dialog().locator('#delete-denied').waitFor();
  assert.match(await dialog().locator('#delete-denied').innerText(), /can’t delete an admin or an owner/);
  assert.equal(await dialog().getByRole('button', { name: 'Delete permanently' }).isDisabled(), true);
  assert.equal(await dialog().getByRole('checkbox').count(), 0);
  await shot(page, '12-admin-cannot-delete-admin');
  await page.keyboard.press('Escape');
  await dialog().waitFor({ state: 'hidden' });
  // The API enforces it, whatever the page shows.
  const res = await page.evaluate(async ([id, token]) => {
    const r = await fetch(`/admin/users/${id}`, {
      method: 'DELETE',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ acknowledge_privileged: true }),
    });
    return { status: r.status, body: await r.json() };
  }, [server.byName('Priya Raman'), await server.tokenOf('Marcus Chen')]);
  assert.equal(res.status, 403);
  assert.equal(res.body.code, 'privileged_target');
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(await row('Priya Raman').count(), 1);
});

test('an admin cannot delete themselves either', { timeout: 60_000 }, async () => {
  await start('Marcus Chen');
  await row('Marcus Chen').getByRole('button', { name: 'Delete Marcus Chen' }).click();
  await dialog().locator('#delete-denied').waitFor();
  assert.match(await dialog().locator('#delete-denied').innerText(), /own account/);
  assert.equal(await dialog().getByRole('button', { name: 'Delete permanently' }).isDisabled(), true);
  await shot(page, '13-self-deletion');
});

test('keyboard only: open the composer, send, close', { timeout: 60_000 }, async () => {
  await start('Olivia Bennett');
  // Tab from the top of the page to the first row, then arrow down to Ana Lima.
  for (let i = 0; i < 12 && (await focused(page)).userId === null; i++) await page.keyboard.press('Tab');
  assert.equal((await focused(page)).userId, server.byName('Olivia Bennett'));
  for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowDown');
  const ana = await row('Ana Lima').getAttribute('data-user-id');
  assert.equal((await focused(page)).userId, ana);
  await page.keyboard.press('Enter');
  assert.equal(await row('Ana Lima').getAttribute('aria-expanded'), 'true');
  assert.equal((await focused(page)).label, 'Subject');
  await page.keyboard.press('Tab');
  assert.equal((await focused(page)).tag, 'textarea');
  await page.keyboard.type('Sent without a mouse.');
  await page.keyboard.press('Tab');
  assert.equal((await focused(page)).text, 'Send');
  await shot(page, '14-keyboard-composer');
  await page.keyboard.press('Enter');
  const composer = page.getByRole('region', { name: 'Message Ana Lima' });
  await composer.locator('.notice.success').waitFor();
  await shot(page, '15-keyboard-sent');
  await page.keyboard.press('Escape');
  await composer.waitFor({ state: 'detached' });
  assert.equal(await focusOnRow(page, ana), ana, 'focus returns to the row');
  assert.equal(await row('Ana Lima').getAttribute('aria-expanded'), 'false');
  // Space toggles it too.
  await page.keyboard.press(' ');
  await composer.waitFor();
  await page.keyboard.press('Escape');
  await composer.waitFor({ state: 'detached' });
  assert.equal(server.emlFiles().length, 1);
});

test('keyboard only: delete a user, and an admin as owner', { timeout: 60_000 }, async () => {
  await start('Olivia Bennett');
  await row('Chloé Dubois').focus();
  await page.keyboard.press('Tab');
  assert.equal((await focused(page)).label, 'Delete Chloé Dubois');
  await page.keyboard.press('Enter');
  await dialog().locator('.preview').waitFor();
  assert.equal((await focused(page)).text, 'Cancel', 'the first control has focus');
  // Esc closes and focus returns to the row.
  await page.keyboard.press('Escape');
  await dialog().waitFor({ state: 'hidden' });
  const chloe = await row('Chloé Dubois').getAttribute('data-user-id');
  assert.equal(await focusOnRow(page, chloe), chloe, 'focus returns to the row');
  // Again, this time confirming.
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await dialog().locator('.preview').waitFor();
  await page.keyboard.press('Tab');
  assert.equal((await focused(page)).text, 'Delete permanently');
  await shot(page, '16-keyboard-delete');
  await page.keyboard.press('Enter');
  await row('Chloé Dubois').waitFor({ state: 'detached' });
  await dialog().waitFor({ state: 'hidden' });
  const daniel = await row('Daniel Kowalski').getAttribute('data-user-id');
  assert.equal(await focusOnRow(page, daniel), daniel, 'focus moves to the next row');

  // An admin, as owner: Space ticks the acknowledgement, then Tab Tab Enter.
  await row('Marcus Chen').focus();
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await dialog().getByRole('checkbox').waitFor();
  assert.equal((await focused(page)).id, 'delete-ack');
  await page.keyboard.press('Tab');
  assert.equal((await focused(page)).text, 'Cancel', 'the disabled delete button is not reachable yet');
  await page.keyboard.press('Shift+Tab');
  await page.keyboard.press(' ');
  assert.equal(await dialog().getByRole('checkbox').isChecked(), true);
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  assert.equal((await focused(page)).text, 'Delete permanently');
  await shot(page, '17-keyboard-owner-deletes-admin');
  await page.keyboard.press('Enter');
  await row('Marcus Chen').waitFor({ state: 'detached' });
});

test('a long deletion answers 202 and the dialog follows it until the row goes', { timeout: 120_000 }, async () => {
  await start('Olivia Bennett', ['--delete-budget-ms', '0', '--worker-budget-ms', '40', '--worker-interval-ms', '150']);
  await page.getByLabel('Search users by name or email').fill('riley');
  await page.waitForFunction(() => document.querySelectorAll('#users-body tr.user-row').length === 1);
  await row('Riley Archer').getByRole('button', { name: 'Delete Riley Archer' }).click();
  await dialog().locator('.preview').waitFor();
  assert.match(await dialog().locator('.preview').innerText(), /Transactions\s+10,000\+/);
  await shot(page, '18-heavy-preview');
  await dialog().getByRole('button', { name: 'Delete permanently' }).click();
  await dialog().locator('.progress-box').waitFor();
  assert.match(await dialog().locator('.progress-label').innerText(), /…/);
  // For the screenshot only: catch the cascade mid-way if the poll sees it (not asserted).
  await dialog().getByText('Removing their data…').waitFor({ timeout: 15_000 }).catch(() => {});
  await shot(page, '19-deletion-in-progress');
  await row('Riley Archer').waitFor({ state: 'detached', timeout: 100_000 });
  await page.locator('.toast', { hasText: 'Riley Archer was deleted.' }).waitFor();
  assert.match(await page.locator('.toast').innerText(), /1[0-9],?\d{3} items removed/);
  await shot(page, '20-deletion-completed');
});

test('signed out, or as a regular user, the page explains why nothing is listed', { timeout: 60_000 }, async () => {
  await start('Olivia Bennett');
  // The page's list request as the picker changes: its headers and the answer.
  const listAs = async (value) => {
    const [res] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/admin/users'),
      page.selectOption('#signed-in-as', value),
    ]);
    const h = await res.request().allHeaders();
    return { auth: h.authorization || null, status: res.status(), body: await res.json() };
  };
  const signedOut = await listAs('');
  await page.getByText('You are signed out').waitFor();
  assert.equal(signedOut.auth, null, 'signed out: no token');
  assert.equal(signedOut.status, 401);
  assert.deepEqual(signedOut.body, { message: 'Unauthorized' }, "API Gateway's own answer");
  await shot(page, '21-signed-out');
  const asAna = await listAs(server.byName('Ana Lima'));
  await page.getByText('You don’t have access to the Users tab').waitFor();
  assert.match(asAna.auth, /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/, 'a bearer JWT');
  const claims = JSON.parse(Buffer.from(asAna.auth.split('.')[1], 'base64url').toString('utf8'));
  assert.equal(claims.sub, server.byName('Ana Lima'));
  assert.equal(asAna.status, 403);
  assert.equal(asAna.body.code, 'forbidden_role');
  assert.match(await page.locator('#table-message').innerText(), /Only admins and owners/);
  await shot(page, '22-regular-user');
  // The choice is remembered.
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(await page.locator('#signed-in-as').inputValue(), server.byName('Ana Lima'));
});

const badge = (composer, messageId) => composer.locator(`.history li[data-message-id="${messageId}"] .status`);

/** Waits until the history entry of `messageId` shows `label` (the page re-reads the history). */
async function waitForBadge(composer, messageId, label) {
  await composer.locator(`.history li[data-message-id="${messageId}"] .status`, { hasText: new RegExp(`^${label}$`) }).waitFor();
}

test('a bounce shows in the history, the next send explains it, and Send anyway sends it', { timeout: 90_000 }, async () => {
  await start('Marcus Chen');
  const sends = recordSends(page);
  await row('Ana Lima').click();
  const composer = page.getByRole('region', { name: 'Message Ana Lima' });
  await composer.getByLabel('Subject').fill('Your billing details');
  await composer.getByLabel('Message', { exact: true }).fill('Hello Ana, could you check your billing details?');
  await composer.getByRole('button', { name: 'Send' }).click();
  await composer.locator('.notice.success').waitFor();
  const first = await composer.locator('.notice.success code').innerText();
  await waitForBadge(composer, first, 'Sent');

  // SES reports a hard bounce: the delivery-events function records it, the page shows it.
  const outcome = await server.sesEvent(first, 'Bounce');
  assert.equal(outcome.status, 'bounced');
  await waitForBadge(composer, first, 'Bounced');
  const entry = composer.locator(`.history li[data-message-id="${first}"]`);
  assert.equal(await entry.locator('time.status-time').getAttribute('datetime'), outcome.updated_at);
  assert.match(await entry.locator('time.status-time').innerText(), /^Bounced /);
  assert.match(await entry.locator('.msg-note').innerText(), /refused it for good/);
  await shot(page, '23-bounced-badge');

  // The next send is refused, in words, with the choice to send anyway.
  await composer.getByLabel('Message', { exact: true }).fill('Hello again Ana: is ana.lima@example.org still your address?');
  await composer.getByRole('button', { name: 'Send', exact: true }).click();
  const notice = composer.locator('.notice.undeliverable');
  await notice.waitFor();
  assert.match(await notice.innerText(), /The last message to Ana Lima bounced\./);
  assert.match(await notice.innerText(), /Nothing was sent\./);
  assert.equal(server.emlFiles().length, 1, 'nothing was sent');
  assert.equal(await notice.getByRole('button', { name: 'Send anyway' }).isVisible(), true);
  await shot(page, '24-recipient-undeliverable');

  await notice.getByRole('button', { name: 'Send anyway' }).click();
  await composer.locator('.notice.success').waitFor();
  const second = await composer.locator('.notice.success code').innerText();
  assert.notEqual(second, first);
  await waitForBadge(composer, second, 'Sent');
  assert.equal(await badge(composer, first).innerText(), 'Bounced');
  const files = server.emlFiles();
  assert.equal(files.length, 2);
  const mail = files.find((f) => f.name.includes(second));
  assert.ok(mail, `no .eml for ${second} in ${files.map((f) => f.name)}`);
  assert.match(decodeQp(mail.text.split('\r\n\r\n').slice(1).join('\r\n\r\n')), /is ana\.lima@example\.org still your address\?/);
  await composer.evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await shot(page, '25-sent-anyway');

  // Every attempt carried an Idempotency-Key; "Send anyway" is a new attempt with the same
  // subject and body and send_anyway: true.
  assert.equal(sends.length, 3);
  assert.ok(sends.every((s) => /^[0-9a-f-]{36}$/.test(s.key)), JSON.stringify(sends));
  assert.equal(new Set(sends.map((s) => s.key)).size, 3);
  assert.deepEqual(sends[2].body, { ...sends[1].body, send_anyway: true });
  assert.equal(sends[1].body.send_anyway, undefined);
});

test('keyboard only: a complaint, then Send anyway', { timeout: 60_000 }, async () => {
  await start('Olivia Bennett');
  // Kenji's last message (seeded) drew a spam complaint.
  await row('Kenji Watanabe').focus();
  await page.keyboard.press('Enter');
  const composer = page.getByRole('region', { name: 'Message Kenji Watanabe' });
  await composer.locator('.history li .status', { hasText: /^Complaint$/ }).waitFor();
  assert.equal((await focused(page)).label, 'Subject');
  await page.keyboard.press('Tab');
  await page.keyboard.type('Sorry for the earlier mail. Your refund is done.');
  await page.keyboard.press('Tab');
  assert.equal((await focused(page)).text, 'Send');
  await page.keyboard.press('Enter');
  const notice = composer.locator('.notice.undeliverable');
  await notice.waitFor();
  assert.match(await notice.innerText(), /Kenji Watanabe marked the last message as spam\./);
  assert.equal((await focused(page)).text, 'Send', 'focus stays on Send: nothing is sent by pressing Enter again by accident');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  assert.equal((await focused(page)).text, 'Send anyway');
  await shot(page, '26-keyboard-complaint-send-anyway');
  await page.keyboard.press('Enter');
  await composer.locator('.notice.success').waitFor();
  assert.equal((await focused(page)).text, 'Send', 'focus goes back to Send');
  assert.equal(await notice.count(), 0);
  assert.equal(server.emlFiles().length, 1);
});

test('editing the message after a refusal withdraws Send anyway', { timeout: 60_000 }, async () => {
  await start('Olivia Bennett');
  await row('Hannah Schmidt').click();
  const composer = page.getByRole('region', { name: 'Message Hannah Schmidt' });
  await composer.locator('.history li .status', { hasText: /^Bounced$/ }).waitFor();
  await composer.getByLabel('Message', { exact: true }).fill('First draft');
  await composer.getByRole('button', { name: 'Send', exact: true }).click();
  await composer.locator('.notice.undeliverable').waitFor();
  await composer.getByLabel('Message', { exact: true }).fill('Second draft');
  await composer.locator('.notice.undeliverable').waitFor({ state: 'detached' });
  assert.equal(await composer.getByRole('button', { name: 'Send anyway' }).count(), 0);
  assert.equal(server.emlFiles().length, 0);
});

test('a retried send reuses its Idempotency-Key and the mail goes once', { timeout: 60_000 }, async () => {
  await start('Marcus Chen');
  const sends = recordSends(page);
  // The first answer is lost on the way back (the server did send it).
  let lost = 0;
  await page.route(/\/admin\/users\/[^/]+\/messages$/, async (route) => {
    if (route.request().method() === 'POST' && lost === 0) {
      lost += 1;
      await route.fetch();
      await route.abort('connectionreset');
    } else {
      await route.continue();
    }
  });
  await row('Ana Lima').click();
  const composer = page.getByRole('region', { name: 'Message Ana Lima' });
  await composer.getByLabel('Message', { exact: true }).fill('Only once, please.');
  await composer.getByRole('button', { name: 'Send' }).click();
  await composer.getByText('Could not reach the server').waitFor();
  assert.equal(server.emlFiles().length, 1, 'the first request did reach the server');
  await composer.getByRole('button', { name: 'Send' }).click();
  await composer.locator('.notice.success').waitFor();
  assert.equal(server.emlFiles().length, 1, 'the retry was answered from the first send');
  assert.equal(sends.length, 2);
  assert.equal(sends[0].key, sends[1].key);
});

test('with simulated delivery, a sent message turns Delivered', { timeout: 60_000 }, async () => {
  await start('Marcus Chen', ['--simulate-delivery-ms', '300']);
  await row('Ana Lima').click();
  const composer = page.getByRole('region', { name: 'Message Ana Lima' });
  await composer.getByLabel('Message', { exact: true }).fill('Your account is all set.');
  await composer.getByRole('button', { name: 'Send' }).click();
  await composer.locator('.notice.success').waitFor();
  const id = await composer.locator('.notice.success code').innerText();
  await waitForBadge(composer, id, 'Delivered');
  assert.match(await composer.locator(`.history li[data-message-id="${id}"] time.status-time`).innerText(), /^Delivered /);
  await shot(page, '27-delivered');
});

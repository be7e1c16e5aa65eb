// Shared plumbing of the browser tests: start a dev server (the debug binary) on a free port
// with its own outbox, and Debian's Chromium (headless) with a fresh profile.

import { before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '..', '..');
export const SCREENSHOTS = join(here, 'screenshots');
const DEVSERVER = process.env.DEVSERVER_BIN || join(ROOT, 'target', 'debug', 'devserver');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/**
 * Starts `devserver --port 0` and resolves once it prints the address it listens on.
 * Simulated Delivery events are off (statuses change only through `sesEvent`), unless
 * `extraArgs` turns them back on (`--simulate-delivery-ms N`: later flags win).
 */
export async function startServer(extraArgs = []) {
  if (!existsSync(DEVSERVER)) {
    throw new Error(`no dev server binary at ${DEVSERVER}: run \`cargo build -p devserver\` (scripts/e2e.sh does)`);
  }
  const outbox = mkdtempSync(join(tmpdir(), 'teleperson-e2e-outbox-'));
  const args = ['--addr', '127.0.0.1', '--port', '0', '--outbox', outbox, '--no-simulate-delivery', ...extraArgs];
  const child = spawn(DEVSERVER, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
  });
  let log = '';
  child.stderr.on('data', (d) => {
    log += d;
  });
  const url = await new Promise((resolveUrl, reject) => {
    let out = '';
    const fail = (why) => reject(new Error(`the dev server did not start: ${why}\n${out}${log}`));
    child.once('exit', (code) => fail(`exited with ${code}`));
    child.once('error', (e) => fail(e.message));
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/Listening on (http:\/\/[\d.]+:\d+)/);
      if (m) resolveUrl(m[1]);
    });
  });
  const identities = (await (await fetch(`${url}/dev/identities`)).json()).items;
  const byName = (name) => {
    const i = identities.find((x) => x.display_name === name);
    if (!i) throw new Error(`no identity named ${name}`);
    return i.user_id;
  };
  return {
    url,
    outbox,
    identities,
    byName,
    /** A fresh access token of the identity named `name` (the dev server mints them). */
    async tokenOf(name) {
      const items = (await (await fetch(`${url}/dev/identities`)).json()).items;
      const i = items.find((x) => x.display_name === name);
      if (!i?.access_token) throw new Error(`no access token for ${name}`);
      return i.access_token;
    },
    log: () => log,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(outbox, { recursive: true, force: true });
    },
    /** What SES would report about our message `messageId`, through `POST /dev/ses-events`. */
    async sesEvent(messageId, event) {
      const res = await fetch(`${url}/dev/ses-events`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ message_id: messageId, event }),
      });
      const body = await res.json();
      if (res.status !== 200) throw new Error(`POST /dev/ses-events answered ${res.status}: ${JSON.stringify(body)}`);
      return body;
    },
    emlFiles() {
      return readdirSync(outbox).filter((f) => f.endsWith('.eml')).map((f) => ({ name: f, text: readFileSync(join(outbox, f), 'utf8') }));
    },
  };
}

/** Debian's Chromium, headless, with a fresh profile directory. */
export async function startBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'teleperson-e2e-chromium-'));
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (scripts/e2e.sh does)`);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Opens the page signed in as `userId` and waits until the table is loaded. */
export async function openPage(browser, server, userId) {
  const page = await browser.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.url}/`);
  await page.waitForSelector('body[data-ready="true"]');
  if (userId !== undefined && (await page.locator('#signed-in-as').inputValue()) !== userId) {
    await page.selectOption('#signed-in-as', userId);
    await page.locator('#users-body tr.user-row').first().waitFor();
  }
  page.errors = errors;
  return page;
}

/**
 * The set-up every test file shares: one browser for the file (`before`/`after`), and after each
 * test its page closed, its dev server stopped and no page error allowed (`afterEach`). Call it
 * once at the top of a test file; `start(as, extraArgs)` starts the test's dev server and opens
 * the page signed in as the identity named `as` (none: the page's default), and resolves to
 * `{ server, page }`. `row(name)` and `dialog()` find a user's row and the delete dialog on it.
 */
export function browserSuite() {
  let browser;
  const live = { server: null, page: null };
  before(async () => {
    browser = await startBrowser();
  });
  after(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    const errors = live.page?.errors || [];
    await live.page?.close();
    live.page = null;
    await live.server?.stop();
    live.server = null;
    assert.deepEqual(errors, [], 'the page threw');
  });
  return {
    async start(as, extraArgs = []) {
      live.server = await startServer(extraArgs);
      live.page = await openPage(browser, live.server, as === undefined ? undefined : live.server.byName(as));
      return { ...live };
    },
    row: (name) => live.page.locator('#users-body tr.user-row', { hasText: name }),
    dialog: () => live.page.locator('dialog#delete-dialog'),
  };
}

/** The Idempotency-Key and body of every message POST the page makes, in order. */
export function recordSends(p) {
  const sends = [];
  p.on('request', (req) => {
    if (req.method() === 'POST' && /\/admin\/users\/[^/]+\/messages$/.test(new URL(req.url()).pathname)) {
      sends.push({ key: req.headers()['idempotency-key'], body: JSON.parse(req.postData() || '{}') });
    }
  });
  return sends;
}

export async function shot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

/** The element that has focus, described for assertions. */
export function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    return {
      tag: el?.tagName?.toLowerCase(),
      text: (el?.innerText || '').trim().slice(0, 80),
      label: el?.getAttribute('aria-label') || el?.labels?.[0]?.innerText || '',
      userId: el?.dataset?.userId || null,
      id: el?.id || '',
    };
  });
}

/** Waits (briefly) until the row of `userId` has the focus: focus moves after dialog events. */
export async function focusOnRow(page, userId) {
  await page
    .waitForFunction((id) => document.activeElement?.dataset?.userId === id, userId, { timeout: 5000 })
    .catch(() => {});
  return (await focused(page)).userId;
}

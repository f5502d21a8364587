/**
 * The inspector page in a real browser: Debian's Chromium (/usr/bin/chromium, installed by
 * `make system-deps`) driven headless through playwright-core. A wirestate client connects to a
 * test server, sends and closes with 4001 "bye"; the page must show the connection open (and lit
 * on the diagram), then its closing state, then closed with that code. A recorded trace is replayed
 * in the same page. Screenshots go to test-artifacts/ (set WIRESTATE_UPDATE_SCREENSHOT=1 to also
 * refresh docs/images/inspector.png, the README's).
 */
import { expect } from 'chai';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { WebSocket, WebSocketServer } from '../../runtime/index.js';
import { attachInspector, parseTrace, type Inspector, type TraceLine } from '../../runtime/inspect/index.js';
import { serveTrace, type TraceServer } from '../../runtime/inspect/replay.js';

const CHROMIUM = '/usr/bin/chromium';

// The page's DOM, as far as these tests read it (the project compiles without the DOM lib, and
// these declarations stay inside this module).
interface El {
  dataset: Record<string, string | undefined>;
  textContent: string | null;
  getAttribute(name: string): string | null;
}
declare const document: { body: El; querySelector(selector: string): El | null };
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));
const README_SCREENSHOT = fileURLToPath(new URL('../../../docs/images/inspector.png', import.meta.url));

function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`make system-deps\` (Debian package chromium)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
}

/** The page's row for connection `id`, as its data attributes say. */
function row(page: Page, id: number): Promise<Record<string, string> | null> {
  return page.evaluate((n) => {
    const tr = document.querySelector(`#connections tr[data-id="${n}"]`);
    return tr ? ({ ...tr.dataset } as Record<string, string>) : null;
  }, id);
}

/** The `to` of each step of the timeline shown, consecutive repeats (region changes inside open) folded. */
async function timelineStates(page: Page): Promise<string[]> {
  const states = await page.$$eval('#timeline li.step', (items) => items.map((li) => (li as unknown as El).dataset.to!));
  return states.filter((s, i) => i === 0 || s !== states[i - 1]);
}

describe('inspector page in Chromium', function () {
  this.timeout(60_000);
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
  });
  beforeEach(async () => {
    errors.length = 0;
    page = await browser.newPage({ viewport: { width: 1360, height: 1000 } });
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => message.type() === 'error' && errors.push(message.text()));
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') await page.screenshot({ path: join(ARTIFACTS, `failed-${this.currentTest.title.replace(/\W+/g, '-')}.png`) }).catch(() => undefined);
    await page.close();
  });

  describe('live', () => {
    let wss: WebSocketServer;
    let inspector: Inspector;
    let dir: string;
    let url: string;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'wirestate-inspect-'));
      wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
      await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
      wss.on('connection', (ws: WebSocket) => ws.on('message', (data: Buffer, isBinary: boolean) => ws.send(data, { binary: isBinary })));
      inspector = attachInspector(wss, { port: 0, interval: 100, record: join(dir, 'trace.jsonl') });
      url = (await inspector.ready)!;
    });
    after(async () => {
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await inspector.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('shows a connection open, then closing, then closed with its code and reason', async () => {
      await page.goto(url);
      await page.waitForFunction(() => document.body.dataset.ready === 'true' && document.body.dataset.snapshot === 'true');
      expect(await page.textContent('#server-state')).to.equal('listening');
      const address = `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`;

      // A bystander that stays open, with a subprotocol.
      const bystander = new WebSocket(address, ['chat']);
      await opened(bystander);
      await page.waitForFunction(() => document.querySelector('#connections tr[data-id="1"]')?.getAttribute('data-state') === 'open');

      const client = new WebSocket(address);
      await opened(client);
      // Open: in the list, and lit on the diagram (both connections are in open.reading.flowing).
      await page.waitForFunction(() => document.querySelector('#connections tr[data-id="2"]')?.getAttribute('data-state') === 'open');
      await page.waitForFunction(() => document.querySelector('#diagram g[data-state-id="open_reading_flowing"]')?.getAttribute('data-count') === '2');
      expect(await page.getAttribute('#diagram g[data-state-id="open_reading_flowing"]', 'class')).to.match(/\blit\b/).and.match(/\bselected\b/);
      expect(await page.getAttribute('#timeline', 'data-connection')).to.equal('2');
      expect(await row(page, 1)).to.include({ state: 'open' });
      expect(await page.textContent('#connections tr[data-id="1"] td:nth-child(3)')).to.equal('chat');

      const echoed = new Promise<string>((resolve) => client.once('message', (data: Buffer) => resolve(String(data))));
      client.send('hello');
      expect(await echoed).to.equal('hello');
      await page.waitForFunction(() => {
        const tr = document.querySelector('#connections tr[data-id="2"]');
        return tr?.dataset.messagesIn === '1' && tr.dataset.messagesOut === '1';
      });

      const closed = new Promise<number>((resolve) => client.once('close', (code: number) => resolve(code)));
      client.close(4001, 'bye');
      expect(await closed).to.equal(4001);
      await page.waitForFunction(() => {
        const tr = document.querySelector('#connections tr[data-id="2"]');
        return tr?.dataset.state === 'closed' && tr.dataset.closeCode === '4001';
      });
      expect(await row(page, 2)).to.include({ state: 'closed', closeCode: '4001', closeReason: 'bye', messagesIn: '1', messagesOut: '1' });
      // The page showed it open, then in its closing state (the peer closed first), then closed.
      expect(await timelineStates(page)).to.deep.equal(['open', 'closing.closedByPeer', 'closed']);
      const close = await page.$eval('#timeline li:last-child', (li) => ({ ...(li as unknown as El).dataset, text: li.textContent }));
      expect(close).to.include({ code: '4001', reason: 'bye' });
      expect(close.text).to.contain('4001').and.contain('bye');
      // On the diagram: the selected connection ends in `closed`, the bystander alone is still lit.
      await page.waitForFunction(() => document.querySelector('#diagram g[data-state-id="open_reading_flowing"]')?.getAttribute('data-count') === '1');
      expect(await page.getAttribute('#diagram g[data-state-id="closed"]', 'class')).to.match(/\bselected-final\b/);
      expect(await page.getAttribute('#counts', 'data-live')).to.equal('1');
      expect(await page.getAttribute('#counts', 'data-closed')).to.equal('1');

      const shot = join(ARTIFACTS, 'inspector-live.png');
      await page.screenshot({ path: shot });
      if (process.env.WIRESTATE_UPDATE_SCREENSHOT) {
        mkdirSync(dirname(README_SCREENSHOT), { recursive: true });
        copyFileSync(shot, README_SCREENSHOT);
      }
      expect(errors).to.deep.equal([]);

      // What was recorded meanwhile is a valid trace with the same story.
      bystander.close(1000);
      await new Promise((resolve) => bystander.once('close', resolve));
      await inspector.close();
      const lines = parseTrace(readFileSync(join(dir, 'trace.jsonl'), 'utf8'));
      const second = lines.filter((l) => l.connection === 2);
      expect(second.map((l) => l.to).filter((s, i, all) => i === 0 || s !== all[i - 1])).to.deep.equal(['open', 'closing.closedByPeer', 'closed']);
      expect(second.at(-1)).to.include({ event: 'close', code: 4001, reason: 'bye' });
    });
  });

  describe('replay', () => {
    let server: TraceServer;
    let dir: string;
    const t0 = Date.UTC(2025, 0, 1, 12, 0, 0);
    const openValue = { open: { reading: 'flowing', keepalive: 'disabled', idle: 'disabled' } };
    const trace: TraceLine[] = [
      { connection: 1, event: 'HANDSHAKE_SUCCEEDED', from: 'connecting', to: 'open', state: openValue, at: t0 + 10, remoteAddress: '10.0.0.7', protocol: 'chat', createdAt: t0 },
      { connection: 2, event: 'HANDSHAKE_SUCCEEDED', from: 'connecting', to: 'open', state: openValue, at: t0 + 20, remoteAddress: '10.0.0.8', protocol: '', createdAt: t0 + 15 },
      { connection: 1, event: 'PAUSE_REQUESTED', from: 'open', to: 'open', state: { open: { reading: 'paused', keepalive: 'disabled', idle: 'disabled' } }, at: t0 + 30 },
      { connection: 2, event: 'CLOSE_REQUESTED', from: 'open', to: 'closing.closedByUs', state: { closing: 'closedByUs' }, at: t0 + 40 },
      { connection: 2, event: 'CLOSE_RECEIVED', from: 'closing.closedByUs', to: 'closing.acknowledged', state: { closing: 'acknowledged' }, at: t0 + 50 },
      { connection: 2, event: 'SOCKET_ENDED', from: 'closing.acknowledged', to: 'closed', state: 'closed', at: t0 + 60 },
      { connection: 2, event: 'close', from: 'closed', to: 'closed', state: 'closed', at: t0 + 60, code: 4001, reason: 'bye', stats: { messagesIn: 3, messagesOut: 2, bytesIn: 30, bytesOut: 20 } },
    ];

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'wirestate-replay-'));
      const file = join(dir, 'trace.jsonl');
      writeFileSync(file, trace.map((line) => JSON.stringify(line)).join('\n') + '\n');
      server = await serveTrace(file, { port: 0 });
    });
    after(async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('replays a trace file: to the end, back to the start, then step by step', async () => {
      expect(server.lines).to.have.length(trace.length);
      await page.goto(server.url);
      await page.waitForFunction(() => document.body.dataset.ready === 'true' && document.body.dataset.trace === 'true');
      expect(await page.getAttribute('body', 'data-mode')).to.equal('replay');
      expect(await page.isVisible('#replay')).to.equal(true);

      await page.click('#replay-end');
      await page.waitForFunction(() => document.querySelector('#replay-position')?.getAttribute('data-position') === '7');
      expect(await page.getAttribute('#replay-position', 'data-total')).to.equal('7');
      expect(await row(page, 1)).to.include({ state: 'open' });
      expect(await row(page, 2)).to.include({ state: 'closed', closeCode: '4001', closeReason: 'bye', messagesIn: '3' });
      // Connection 1 is paused: its reading region is lit on the diagram.
      expect(await page.getAttribute('#diagram g[data-state-id="open_reading_paused"]', 'data-count')).to.equal('1');

      await page.click('#replay-start');
      await page.waitForFunction(() => document.querySelector('#replay-position')?.getAttribute('data-position') === '0');
      expect(await page.$$('#connections tbody tr')).to.have.length(0);

      const seen: (string | undefined)[] = [];
      for (let i = 1; i <= trace.length; i++) {
        await page.click('#replay-next');
        await page.waitForFunction((n) => document.querySelector('#replay-position')?.getAttribute('data-position') === String(n), i);
        seen.push((await row(page, 2))?.state);
      }
      expect(seen.filter((s, i) => i === 0 || s !== seen[i - 1])).to.deep.equal([undefined, 'open', 'closing.closedByUs', 'closing.acknowledged', 'closed']);
      await page.click('#connections tr[data-id="2"]');
      expect(await timelineStates(page)).to.deep.equal(['open', 'closing.closedByUs', 'closing.acknowledged', 'closed']);
      expect(await page.$eval('#timeline li:last-child', (li) => (li as unknown as El).dataset.code)).to.equal('4001');
      await page.screenshot({ path: join(ARTIFACTS, 'inspector-replay.png') });
      expect(errors).to.deep.equal([]);
    });
  });
});

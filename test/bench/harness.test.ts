/**
 * The benchmark harness works: a QUICK run against wirestate and pure-JS ws only, a few seconds
 * long, counts real traffic and writes JSON and Markdown of the expected shape. It asserts no speed.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FrameCounter, maskedFrame, OP_BINARY, OP_TEXT } from '../../bench/load/frames.js';
import { runBench, type BenchResult } from '../../bench/run.js';

describe('bench harness', function () {
  this.timeout(120_000);

  it('counts frames by their headers across any chunking, masked or not', () => {
    const frames = Buffer.concat([
      maskedFrame({ opcode: OP_TEXT, payload: Buffer.alloc(64, 0x61) }),
      maskedFrame({ opcode: OP_BINARY, payload: Buffer.alloc(70_000), fin: false }),
      maskedFrame({ opcode: 0, payload: Buffer.alloc(300) }),
      Buffer.from([0x82, 0x02, 1, 2]), // unmasked, as a server sends
    ]);
    for (const step of [1, 3, 7, 1000, frames.length]) {
      const counter = new FrameCounter();
      for (let i = 0; i < frames.length; i += step) counter.push(frames.subarray(i, i + step));
      expect(counter.frames, `chunks of ${step}`).to.equal(4);
      expect(counter.messages, `chunks of ${step}`).to.equal(3);
      expect(counter.payloadBytes, `chunks of ${step}`).to.equal(64 + 70_000 + 300 + 2);
    }
  });

  it('runs a QUICK round against wirestate and pure-JS ws and reports medians and ratios', async () => {
    const outDir = mkdtempSync(path.join(os.tmpdir(), 'wirestate-bench-'));
    try {
      const result = await runBench({
        quick: true,
        rounds: 1,
        implementations: ['wirestate', 'ws'],
        scenarios: ['echo64-1', 'echo1m', 'handshake', 'idle-memory', 'deflate-echo64'],
        outDir,
        name: 'smoke',
        log: () => {},
      });
      const json = JSON.parse(readFileSync(path.join(outDir, 'smoke.json'), 'utf8')) as BenchResult;
      expect(json.schema).to.equal('wirestate-bench/1');
      expect(json.rounds).to.equal(1);
      expect(json.baseline).to.equal('ws');
      expect(json.implementations.map((i) => i.id)).to.deep.equal(['wirestate', 'ws']);
      expect(json.scenarios.map((s) => s.id)).to.deep.equal(['echo64-1', 'echo1m', 'handshake', 'idle-memory', 'deflate-echo64']);
      for (const impl of ['wirestate', 'ws']) {
        for (const id of ['echo64-1', 'echo1m', 'handshake']) {
          const cell = json.results[id]![impl]!;
          expect(cell.status, `${id}/${impl}: ${cell.note}`).to.equal('ok');
          expect(cell.samples).to.have.length(1);
          const detail = cell.samples[0]!.detail as { messages?: number; handshakes?: number };
          expect(detail.messages ?? detail.handshakes, `${id}/${impl} counted work`).to.be.greaterThan(0);
          expect(cell.median.cpu, `${id}/${impl} server CPU`).to.be.a('number').and.greaterThan(0);
          expect(cell.median.rate, `${id}/${impl} rate`).to.be.a('number').and.greaterThan(0);
          expect(cell.ratio).to.have.keys(['cpu', 'rate']);
        }
        const memory = json.results['idle-memory']![impl]!;
        expect(memory.status, `idle-memory/${impl}: ${memory.note}`).to.equal('ok');
        expect((memory.samples[0]!.detail as { serverConnections: number }).serverConnections).to.be.greaterThan(0);
        expect(memory.median).to.have.keys(['rss', 'heap']);
        // permessage-deflate: measured, or reported as not negotiated; never a failure of the run.
        expect(json.results['deflate-echo64']![impl]!.status).to.be.oneOf(['ok', 'n/a']);
      }
      expect(json.results['echo64-1']!.ws!.ratio.cpu).to.equal(1);
      expect((json.results['echo1m']!.ws!.samples[0]!.detail as { payloadBytesOk: boolean }).payloadBytesOk).to.equal(true);
      expect(result.results['echo64-1']!.wirestate!.median.cpu).to.equal(json.results['echo64-1']!.wirestate!.median.cpu);
      const markdown = readFileSync(path.join(outDir, 'smoke.md'), 'utf8');
      expect(markdown).to.match(/\| scenario \| figure \| wirestate \| ws \(pure JS\) \|/);
      expect(markdown).to.include('## Targets');
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  });
});

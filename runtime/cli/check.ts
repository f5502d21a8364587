/**
 * `wirestate check`: model checking. Explores exhaustively the product of a client connection, a
 * server connection and the two channels between them (bounded: the assumptions are printed), and
 * decides every property of spec/properties.yaml, with a shortest counterexample for each
 * violation; `--spin` checks the same product with SPIN too, and the two must agree.
 */
import { resolve } from 'node:path';
import { SpecError } from '../../codegen/load.js';
import { aloneIn, runCheck, selectProperties, type CheckReport, type Verdict } from '../model/check.js';
import type { LoneExploration, TraceStep } from '../model/explore.js';
import { loadSpecUnderCheck, type SpecUnderCheck } from '../model/inputs.js';
import { checkWithSpin, spinAvailable, type SpinReport } from '../model/promela.js';

export const usage = `usage: wirestate check [--spec DIR] [--properties FILE] [--property NAME]... [--spin] [--max-states N] [--json]

Model-checks the connection lifecycle: explores every interleaving of a client, a server and the
two channels between them (bounded; the buffering assumptions are printed), stepping the machines
with XState's pure transition functions, and decides each property of spec/properties.yaml —
holds, or violated with a shortest counterexample trace.

  --spec DIR         check the spec in DIR (its machines are built from its YAML, not from
                     generated/), e.g. a modified copy of spec/
  --properties FILE  the properties to check (default: properties.yaml in the spec folder)
  --property NAME    check only this property (repeatable)
  --spin             also export the product to Promela and check it with SPIN (Debian package
                     \`spin\`); both verdicts are printed and must agree
  --max-states N     stop exploring after N product states (default 2000000): verdicts without a
                     violation are then "unknown"
  --json             print the report as JSON

Exit status: 0 every property holds; 1 a property is violated (or SPIN disagrees); 2 bad
arguments or a bad spec; 3 no violation but the exploration was cut at --max-states.`;

interface Options {
  only: string[];
  specDir?: string;
  propertiesFile?: string;
  spin: boolean;
  maxStates: number;
  json: boolean;
}

function parse(args: string[]): Options | string {
  const options: Options = { only: [], spin: false, maxStates: 2_000_000, json: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    try {
      if (arg === '--spec') options.specDir = resolve(value());
      else if (arg === '--properties') options.propertiesFile = resolve(value());
      else if (arg === '--property') options.only.push(value());
      else if (arg === '--spin') options.spin = true;
      else if (arg === '--json') options.json = true;
      else if (arg === '--max-states') {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) return `--max-states must be a positive integer`;
        options.maxStates = n;
      } else return `unknown argument ${arg}`;
    } catch (error) {
      return (error as Error).message;
    }
  }
  return options;
}

export interface CheckOutcome {
  report: CheckReport;
  spin: SpinReport | undefined;
  /** Properties on which SPIN and the explorer disagree. */
  disagreements: string[];
  exitCode: number;
}

/** Runs the explorer (and SPIN when asked) on a loaded spec; the CLI and the tests share it. */
export async function check(spec: SpecUnderCheck, options: { spin: boolean; maxStates: number; only?: readonly string[] }): Promise<CheckOutcome> {
  selectProperties(spec, options.only); // unknown names fail here, before anything starts
  const lone = new Map<string, LoneExploration>();
  let spinning: Promise<SpinReport> | undefined;
  if (options.spin) {
    const version = await spinAvailable();
    if (!version) throw new Error('spin is not installed (Debian: apt-get install spin; `make system-deps` installs it)');
    // SPIN's builds start now and run beside the explorer.
    spinning = checkWithSpin(spec, (id) => aloneIn(spec, lone, id), { only: options.only, version });
    spinning.catch(() => undefined); // awaited below; do not report it as unhandled meanwhile
  }
  const report = runCheck(spec, { maxStates: options.maxStates, only: options.only, lone });
  const spin = await spinning;
  const disagreements: string[] = [];
  for (const v of spin?.verdicts ?? []) {
    const mine = report.verdicts.find((r) => r.name === v.name)!;
    if (v.status !== 'not-checked' && mine.status !== 'unknown' && v.status !== mine.status) disagreements.push(v.name);
  }
  const violated = report.verdicts.some((v) => v.status === 'violated') || spin?.verdicts.some((v) => v.status === 'violated') || disagreements.length > 0;
  const unknown = report.verdicts.some((v) => v.status === 'unknown');
  return { report, spin, disagreements, exitCode: violated ? 1 : unknown ? 3 : 0 };
}

export async function run(args: string[]): Promise<number> {
  const options = parse(args);
  if (typeof options === 'string') {
    console.error(`wirestate check: ${options}\n\n${usage}`);
    return 2;
  }
  let spec: SpecUnderCheck;
  try {
    spec = loadSpecUnderCheck({ specDir: options.specDir, propertiesFile: options.propertiesFile });
  } catch (error) {
    if (error instanceof SpecError) {
      console.error(`wirestate check: ${error.message}`);
      return 2;
    }
    throw error;
  }
  if (spec.stale.length > 0) {
    console.error(
      `wirestate check: generated/ is behind spec/ for the ${spec.stale.join(', ')} machine${spec.stale.length === 1 ? '' : 's'}: checking the generated machines; run \`make generate\`, or check the YAML with --spec spec`,
    );
  }
  const started = Date.now();
  let outcome: CheckOutcome;
  try {
    outcome = await check(spec, options);
  } catch (error) {
    if ((error as Error).message.startsWith('no property ') || (error as Error).message.startsWith('spin is not installed')) {
      console.error(`wirestate check: ${(error as Error).message}`);
      return 2;
    }
    throw error;
  }
  if (options.json) console.log(JSON.stringify(toJson(spec, outcome), null, 2));
  else console.log(format(spec, outcome, (Date.now() - started) / 1000));
  return outcome.exitCode;
}

function toJson(spec: SpecUnderCheck, { report, spin, disagreements, exitCode }: CheckOutcome): unknown {
  return {
    source: report.source,
    properties: spec.properties.file,
    assumptions: report.assumptions,
    explorations: report.explorations,
    verdicts: report.verdicts,
    spin: spin && { version: spin.version, runs: spin.runs, verdicts: spin.verdicts },
    disagreements,
    exitCode,
  };
}

const MARK: Record<string, string> = { holds: '✓', violated: '✗', unknown: '?', 'not-checked': '-' };

function formatTrace(steps: TraceStep[], first = 1): string[] {
  const width = String(first + steps.length).length;
  return steps.flatMap((s, i) => {
    const choices = s.choices.length > 0 ? `  [${s.choices.join(', ')}]` : '';
    const frames = s.frames.length > 0 ? `  sends ${s.frames.join(' ')}` : '';
    return [`${String(first + i).padStart(width)}. ${s.actor.padEnd(6)} ${s.event}${choices}${frames}`, `${' '.repeat(width + 2)}→ ${s.state}`];
  });
}

function formatVerdict(v: Verdict): string[] {
  const rfc = v.rfc ? ` (RFC 6455 ${v.rfc})` : '';
  const lines = [`${MARK[v.status]} ${v.name}${rfc}: ${v.status === 'violated' ? 'VIOLATED' : v.status} — ${v.summary}`];
  if (v.trace) {
    lines.push(`    shortest counterexample (${v.trace.length} step${v.trace.length === 1 ? '' : 's'}${v.timers ? '' : ', timers off'}):`);
    lines.push(...formatTrace(v.trace).map((l) => `      ${l}`));
  }
  if (v.continuation && v.continuation.length > 0) {
    lines.push('    then, with only deliveries, socket closes and resumes:');
    lines.push(...formatTrace(v.continuation, (v.trace?.length ?? 0) + 1).map((l) => `      ${l}`));
  }
  if (v.ending) lines.push(`    ${v.ending}`);
  return lines;
}

function format(spec: SpecUnderCheck, { report, spin, disagreements }: CheckOutcome, seconds: number): string {
  const lines: string[] = [];
  lines.push(`wirestate check: machines from ${report.source === 'generated' ? 'generated/' : report.source}, properties from ${spec.properties.file}`);
  lines.push('', 'model (buffering assumptions):');
  lines.push(...report.assumptions.map((a) => `  - ${a}`));
  lines.push('', 'explored:');
  for (const e of report.explorations) {
    const extra = [e.pruned > 0 ? `${e.pruned} steps cut by the bound` : '', e.depth > 0 ? `depth ${e.depth}` : '', e.truncated ? 'STOPPED at --max-states' : ''].filter(Boolean).join(', ');
    lines.push(`  ${e.what}: ${e.states} states, ${e.transitions} transitions${extra ? ` (${extra})` : ''}`);
  }
  lines.push('', 'properties:');
  for (const v of report.verdicts) lines.push(...formatVerdict(v).map((l) => `  ${l}`));
  if (spin) {
    lines.push('', `SPIN (${spin.version}):`);
    for (const r of spin.runs) lines.push(`  ${r.what}: ${r.states} states, ${r.transitions} transitions, ${r.errors} error(s)${r.error ? ` (${r.error})` : ''}, ${r.seconds.toFixed(1)}s`);
    for (const v of spin.verdicts) {
      const mine = report.verdicts.find((r) => r.name === v.name)!;
      const agreement = v.status === 'not-checked' ? '' : v.status === mine.status ? ' — agrees' : ` — DISAGREES with the explorer (${mine.status})`;
      lines.push(`  ${MARK[v.status]} ${v.name}: ${v.status} — ${v.summary}${agreement}`);
    }
  }
  const holds = report.verdicts.filter((v) => v.status === 'holds').length;
  const violated = report.verdicts.filter((v) => v.status === 'violated').length;
  const unknown = report.verdicts.length - holds - violated;
  lines.push('', `${holds} held, ${violated} violated${unknown ? `, ${unknown} unknown` : ''}${disagreements.length ? `; SPIN disagrees on ${disagreements.join(', ')}` : ''} (${seconds.toFixed(1)}s)`);
  return lines.join('\n');
}

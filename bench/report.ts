/** The Markdown report of a benchmark run (bench/results/latest.md, and the README's table). */
import type { BenchResult } from './run.js';

function format(value: number): string {
  if (!Number.isFinite(value)) return '-';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** The table of medians and ratios, alone (the README embeds it). */
export function renderTable(result: BenchResult): string {
  const impls = result.implementations;
  const lines: string[] = [];
  const notes: string[] = [];
  const footnote = (text: string) => {
    let index = notes.indexOf(text);
    if (index === -1) index = notes.push(text) - 1;
    return `[^${index + 1}]`.replace(/\[\^(\d+)\]/, '<sup>$1</sup>');
  };
  lines.push(`| scenario | figure | ${impls.map((i) => i.label).join(' | ')} |`);
  lines.push(`| --- | --- | ${impls.map(() => '---:').join(' | ')} |`);
  for (const s of result.scenarios) {
    s.figures.forEach((fig, index) => {
      const cells = impls.map((impl) => {
        const cell = result.results[s.id]?.[impl.id];
        if (!cell) return '';
        if (cell.status === 'n/a') return `n/a: ${cell.note ?? ''}`;
        if (cell.status === 'unavailable') return index === 0 ? `unavailable${footnote(cell.note ?? '')}` : '';
        if (cell.status === 'error') return index === 0 ? `error${footnote(cell.note ?? '')}` : '';
        const value = cell.median[fig.id];
        if (value === undefined) return '-';
        const ratio = cell.ratio[fig.id];
        const mark = index === 0 && cell.note ? footnote(cell.note) : '';
        return `${format(value / (fig.scale ?? 1))} (${ratio === null || ratio === undefined ? '-' : `×${ratio.toFixed(2)}`})${mark}`;
      });
      lines.push(`| ${index === 0 ? s.title : ''} | ${fig.label} ${fig.better === 'lower' ? '↓' : '↑'} | ${cells.join(' | ')} |`);
    });
  }
  if (notes.length > 0) {
    lines.push('');
    notes.forEach((note, i) => lines.push(`<sup>${i + 1}</sup> ${note}  `));
  }
  return lines.join('\n');
}

export function renderTargets(result: BenchResult): string {
  const lines = ['| scenario | figure | wirestate ÷ ws | target | |', '| --- | --- | ---: | ---: | --- |'];
  for (const s of result.scenarios) {
    if (!s.target) continue;
    const fig = s.figures.find((f) => f.id === s.target!.figure)!;
    const ratio = result.results[s.id]?.wirestate?.ratio[fig.id];
    const met = ratio === null || ratio === undefined ? 'not measured' : ratio <= s.target.ratio ? 'met' : 'not met';
    lines.push(`| ${s.title} | ${fig.label} | ${ratio === null || ratio === undefined ? '-' : ratio.toFixed(2)} | ≤ ${s.target.ratio.toFixed(2)} | ${met} |`);
  }
  return lines.join('\n');
}

export function renderMarkdown(result: BenchResult): string {
  const m = result.machine;
  const out: string[] = [];
  out.push(`# Benchmark results${result.quick ? ' (QUICK smoke run: small loads, not for comparison)' : ''}`);
  out.push('');
  out.push(`\`${result.command}\` — ${result.generatedAt.slice(0, 10)}, ${result.rounds} round${result.rounds === 1 ? '' : 's'}, ${result.durationSeconds} s; Node ${m.node}, ${m.cpus} × ${m.cpuModel}; load average ${m.loadavgStart[0]} at the start, ${m.loadavgEnd[0]} at the end (a shared machine).`);
  out.push('');
  out.push('Each cell: the median over the rounds, and in parentheses its ratio to pure-JS ws (the median of the');
  out.push('per-round ratios). ↓ lower is better, ↑ higher is better. "Server CPU" is the user + system CPU time of');
  out.push('the server process (process.cpuUsage) during the measurement, divided by the work done: the primary');
  out.push('figure, since it barely depends on what else runs on the machine. Rates are wall-clock and noisy here.');
  out.push('');
  out.push(renderTable(result));
  out.push('');
  out.push('## Targets (issue 7)');
  out.push('');
  out.push(renderTargets(result));
  out.push('');
  out.push('## Implementations');
  out.push('');
  for (const impl of result.implementations) {
    const info = impl.info ?? {};
    const addons = Array.isArray(info.nativeAddons) && info.nativeAddons.length > 0 ? `native addons loaded: ${(info.nativeAddons as string[]).join(', ')}` : 'no native addon loaded';
    const version = impl.id.startsWith('wirestate') ? `commit ${result.build.commit}${result.build.dirty ? ' + uncommitted changes in runtime/ or generated/' : ''}, ` : info.version ? `${info.version}, ` : '';
    out.push(`- **${impl.label}** (\`${impl.id}\`): ${impl.available ? `${version}${addons}` : 'not run'}${impl.note ? ` — ${impl.note}` : ''}`);
  }
  out.push('');
  return out.join('\n');
}

#!/usr/bin/env node
/**
 * The `wirestate` command. Each command lives in its own module, loaded only when asked for.
 */
import { argv, exit } from 'node:process';

interface Command {
  summary: string;
  load: () => Promise<{ run(args: string[]): Promise<number> | number; usage: string }>;
}

const commands: Record<string, Command> = {
  check: { summary: 'model-check the connection lifecycle: every interleaving of client, server and channels', load: () => import('./check.js') },
  serve: { summary: 'start the demo server: echo, broadcast and a page to try them', load: () => import('./serve.js') },
  viz: { summary: 'lifecycle diagrams (mermaid, dot, svg) and recorded connections drawn over them', load: () => import('./viz.js') },
  bindings: { summary: 'typed option bindings for python, go, rust, csharp, java, typescript', load: () => import('./bindings.js') },
};

export function registerCommand(name: string, command: Command): void {
  commands[name] = command;
}

function help(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  return [
    'usage: wirestate <command> [options]',
    '',
    'commands:',
    ...Object.entries(commands)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'wirestate <command> --help shows the options of a command.',
  ].join('\n');
}

export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`wirestate: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  const module = await command.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(module.usage);
    return 0;
  }
  return module.run(rest);
}

main(argv.slice(2)).then(
  (code) => {
    if (code !== 0) exit(code);
  },
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    exit(1);
  },
);

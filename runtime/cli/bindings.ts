/**
 * `wirestate bindings`: typed option bindings for other languages, from the JSON Schemas of the
 * options (runtime/bindings).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { DIALECTS, LANGUAGES, NoSchemaError, ROLES, generateBindings, joinFiles, type Dialect, type Language, type Role } from '../bindings/index.js';

export const usage = `usage: wirestate bindings --lang LANG [--dialect DIALECT] [--role ROLE] [--out FILE] [--package NAME]

Writes typed option bindings for another language, generated with quicktype from
generated/schemas/<dialect>-<role>.schema.json. Each field's comment keeps the
setting's description, default, range and unit; every field is optional (an unset
one takes its default).

  --lang LANG        ${LANGUAGES.join(', ')}
                     python: dataclasses with from_dict / to_dict
                     go: structs with json tags (standard library only)
                     typescript: interfaces and a Convert class that checks JSON
                     rust: serde structs; csharp: System.Text.Json classes;
                     java: Jackson classes, one file per class
  --dialect DIALECT  ${DIALECTS.join(', ')} (default canonical): whose option names
  --role ROLE        ${ROLES.join(', ')} (default server; the websocket and ipworks
                     APIs are servers only, so they have server options only)
  --out FILE         write to FILE instead of standard output; for java, a
                     directory (created) that gets one .java file per class
  --package NAME     Go package (default wirestate), Java package (default
                     dev.wirestate.options) or C# namespace (default Wirestate.Options)
  --schemas DIR      where the JSON Schemas are (default: generated/schemas)

Example:
  wirestate bindings --lang python --dialect ws --role client --out ws_client_options.py

Exit status: 0 done, 1 failed, 2 bad usage.`;

class UsageError extends Error {}

function oneOf<T extends string>(option: string, value: string | undefined, allowed: readonly T[], fallback?: T): T {
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`--${option} is required (one of ${allowed.join(', ')})`);
    return fallback;
  }
  if (!allowed.includes(value as T)) throw new UsageError(`--${option} must be one of ${allowed.join(', ')}, not "${value}"`);
  return value as T;
}

export async function run(args: string[]): Promise<number> {
  try {
    let values;
    try {
      ({ values } = parseArgs({
        args,
        allowPositionals: false,
        options: {
          lang: { type: 'string', short: 'l' },
          dialect: { type: 'string', short: 'd' },
          role: { type: 'string', short: 'r' },
          out: { type: 'string', short: 'o' },
          package: { type: 'string' },
          schemas: { type: 'string' },
        },
      }));
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const lang = oneOf<Language>('lang', values.lang, LANGUAGES);
    const dialect = oneOf<Dialect>('dialect', values.dialect, DIALECTS, 'canonical');
    const role = oneOf<Role>('role', values.role, ROLES, 'server');
    if (values.package !== undefined && !['go', 'java', 'csharp'].includes(lang)) {
      throw new UsageError('--package applies to go, java and csharp');
    }
    const bindings = await generateBindings({
      lang,
      dialect,
      role,
      ...(values.package !== undefined ? { packageName: values.package } : {}),
      ...(values.schemas !== undefined ? { schemasDir: values.schemas } : {}),
    });
    const out = values.out;
    if (out === undefined || out === '-') {
      process.stdout.write(joinFiles(bindings));
    } else if (bindings.files.length > 1) {
      if (extname(out) !== '') throw new UsageError(`${lang} bindings are ${bindings.files.length} files (one per class): --out takes a directory, not "${out}"`);
      await mkdir(out, { recursive: true });
      for (const file of bindings.files) await writeFile(join(out, file.name), file.text);
      console.error(`wrote ${bindings.files.map((f) => join(out, f.name)).join(', ')}`);
    } else {
      await writeFile(out, joinFiles(bindings));
      console.error(`wrote ${out} (${bindings.typeName} from ${bindings.dialect}-${bindings.role}.schema.json)`);
    }
    return 0;
  } catch (error) {
    if (error instanceof NoSchemaError) {
      console.error(`wirestate bindings: ${error.message}`);
      return 2;
    }
    if (error instanceof UsageError) {
      console.error(`wirestate bindings: ${error.message}\n\n${usage}`);
      return 2;
    }
    console.error(`wirestate bindings: ${(error as Error).message}`);
    return 1;
  }
}

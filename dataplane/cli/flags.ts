/**
 * Command-line flags, the same for every command (the main job, `forward`,
 * `bench`): one parser, one {@linkcode UsageError}, one wording for a bad
 * flag, and one pointer to `--help`. A string flag takes the next argument
 * as its value even when it starts with `-`, so `--rate -5` and
 * `--rate=-5` are the same (and both refused by the range check). A run
 * that fails is said one way too ({@linkcode reportFailure}).
 *
 * @module
 */
import { BulktapError } from "../errors.ts";

/**
 * A bad flag or value: the command exits with status 2.
 *
 * @example
 * ```ts
 * import { intFlag, UsageError } from "./flags.ts";
 * try {
 *   intFlag("cpus", "0", 2, 1, 64);
 * } catch (e) {
 *   console.log(e instanceof UsageError); // true
 * }
 * ```
 */
export class UsageError extends Error {}

/** What a command's flags are: each name with its kind. */
export type FlagSpec = Record<string, "string" | "boolean">;

/** Flags as parsed: values by name, and the arguments that are not flags. */
export interface ParsedFlags<S extends FlagSpec> {
  /** A string flag's last value, `true` for a boolean flag given. */
  values: { [K in keyof S]?: S[K] extends "boolean" ? boolean : string };
  /** Arguments that are not flags (and everything after `--`). */
  positionals: string[];
}

/**
 * Parse `args` against `spec` (`-h` is `--help`). Throws one
 * {@linkcode UsageError} naming every unknown flag, or the first flag
 * missing its value or given one it does not take.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./flags.ts";
 * const { values } = parseFlags(["--rate", "-5", "--json"], { rate: "string", json: "boolean" });
 * console.log(values.rate, values.json); // "-5" true
 * ```
 */
export function parseFlags<const S extends FlagSpec>(
  args: string[],
  spec: S,
  positionals = false,
): ParsedFlags<S> {
  const values: Record<string, string | boolean> = {};
  const rest: string[] = [];
  const unknown: string[] = [];
  const problems: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      rest.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith("-") || a === "-" || /^-\d/.test(a)) {
      rest.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const raw = eq < 0 ? a : a.slice(0, eq);
    const name = raw === "-h" ? "help" : raw.replace(/^--?/, "");
    const kind = raw.startsWith("--") || raw === "-h" ? spec[name] : undefined;
    if (!kind) {
      unknown.push(raw);
      continue;
    }
    if (kind === "boolean") {
      if (eq >= 0) problems.push(`${raw} takes no value`);
      else values[name] = true;
    } else if (eq >= 0) {
      values[name] = a.slice(eq + 1);
    } else if (i + 1 < args.length && !args[i + 1].startsWith("--")) {
      values[name] = args[++i];
    } else {
      problems.push(`${raw} needs a value`);
    }
  }
  if (unknown.length) {
    throw new UsageError(`unknown flag${unknown.length > 1 ? "s" : ""}: ${unknown.join(", ")}`);
  }
  if (problems.length) throw new UsageError(problems[0]);
  if (!positionals && rest.length) {
    throw new UsageError(`unexpected argument${rest.length > 1 ? "s" : ""}: ${rest.join(" ")}`);
  }
  return { values: values as ParsedFlags<S>["values"], positionals: rest };
}

/**
 * An integer flag's value: `def` when absent, else an integer in
 * `min..max` or a {@linkcode UsageError} naming the flag, the value and the
 * range.
 *
 * @example
 * ```ts
 * import { intFlag } from "./flags.ts";
 * console.log(intFlag("bulk", "32", 16, 1, 256)); // 32
 * ```
 */
export function intFlag(
  name: string,
  raw: string | boolean | undefined,
  def: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return def;
  const v = Number(raw);
  if (typeof raw !== "string" || !/^\s*[-+]?\d+\s*$/.test(raw) || v < min || v > max) {
    throw new UsageError(`--${name}=${raw} is not an integer in ${min}..${max}`);
  }
  return v;
}

/**
 * A number flag's value: `def` when absent, else a finite number in
 * `min..max` or a {@linkcode UsageError} naming the flag, value and range.
 *
 * @example
 * ```ts
 * import { numFlag } from "./flags.ts";
 * console.log(numFlag("duration", "0.5", 5, 0.001, 1e6)); // 0.5
 * ```
 */
export function numFlag(
  name: string,
  raw: string | boolean | undefined,
  def: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return def;
  const v = Number(raw);
  if (typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(v) || v < min || v > max) {
    throw new UsageError(`--${name}=${raw} is not a number in ${min}..${max}`);
  }
  return v;
}

/**
 * Report a usage error the one way every command does: the command, the
 * problem, and where the help is (`help`: the command line that prints it,
 * for a script run on its own). Returns the exit status, 2.
 *
 * @example
 * ```ts
 * import { reportUsage, UsageError } from "./flags.ts";
 * const status = reportUsage("forward", new UsageError("unknown flag: --x"));
 * console.log(status); // 2
 * ```
 */
export function reportUsage(
  command: string,
  e: UsageError,
  help = `deno run -A mod.ts${command ? ` ${command}` : ""} --help`,
): number {
  const cmd = command ? ` ${command}` : "";
  console.error(`bulktap${cmd}: ${e.message}\nrun \`${help}\` for usage`);
  return 2;
}

/**
 * Say a run's failure the one way every command says it: a library error
 * as `bulktap <command>: <message>` on stderr, exit status 1. Anything
 * else is a bug, not a failure of the run, and is thrown again.
 *
 * @example
 * ```ts
 * import { reportFailure } from "./flags.ts";
 * import { BulktapError } from "../errors.ts";
 * const status = reportFailure("forward", new BulktapError("ENODEV", "tapA is gone"));
 * console.log(status); // 1
 * ```
 */
export function reportFailure(command: string, e: unknown): number {
  if (!(e instanceof BulktapError)) throw e;
  console.error(`bulktap${command ? ` ${command}` : ""}: ${e.message}`);
  return 1;
}

/**
 * The flags of a benchmark script run on its own (`deno run -A bench/x.ts`),
 * parsed and checked as the commands' are: `read` turns the parsed values
 * into options (with {@linkcode intFlag} and {@linkcode numFlag}). A bad
 * flag is reported as every command reports one and exits 2; `--help`
 * prints `usage` and exits 0.
 *
 * @example
 * ```ts ignore
 * import { intFlag, scriptFlags } from "./flags.ts";
 * const o = scriptFlags("bench/soak.ts", "usage: ...", { soak: "string" }, (v) => ({
 *   seconds: intFlag("soak", v.soak, 60, 1, 86400),
 * }));
 * ```
 */
export function scriptFlags<const S extends FlagSpec, T>(
  script: string,
  usage: string,
  spec: S,
  read: (values: ParsedFlags<S>["values"]) => T,
): T {
  try {
    const { values } = parseFlags(Deno.args, { ...spec, help: "boolean" });
    if (values.help) {
      console.log(usage);
      Deno.exit(0);
    }
    return read(values as ParsedFlags<S>["values"]);
  } catch (e) {
    if (e instanceof UsageError) Deno.exit(reportUsage(script, e, `deno run -A ${script} --help`));
    throw e;
  }
}

/** A program factory for tests: the program throws on its first batch. */
import type { Program } from "../mod.ts";

/** Returns a program that throws `options.message`. */
export function throwing(options: { message?: string }): Program {
  return () => {
    throw new Error(options.message ?? "boom");
  };
}

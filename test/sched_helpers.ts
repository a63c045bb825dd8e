/**
 * Fixtures for the scheduler tests: a source that hands out frames the
 * test prepared, and a program that applies verdicts the test chose.
 */
import type { PacketBatch, Program, Source } from "../mod.ts";
import { library } from "../ffi/lib.ts";

/** A source that yields the refs pushed into it, then nothing. */
export class ArraySource implements Source {
  readonly name = "array";
  readonly ingress: number;
  #refs: number[] = [];
  /** Called at the start of every poll (for timing tests). */
  onPoll: (() => void) | undefined;
  constructor(ingress = -1) {
    this.ingress = ingress;
  }
  push(refs: Iterable<number>): void {
    this.#refs.push(...refs);
  }
  poll(refs: Uint32Array, max: number): number {
    this.onPoll?.();
    const n = Math.min(max, this.#refs.length);
    for (let i = 0; i < n; i++) refs[i] = this.#refs.shift()!;
    return n;
  }
  readyAtNs(): number {
    return this.#refs.length ? 0 : Infinity;
  }
  close(): void {}
}

/** A program that gives frame i of each batch `verdicts[i % verdicts.length]`. */
export function fixedVerdicts(verdicts: number[]): Program {
  return (b: PacketBatch) => {
    for (let i = 0; i < b.count; i++) b.verdicts[i] = verdicts[i % verdicts.length];
  };
}

/**
 * Count calls of one library function until disposed (the bound symbol is
 * wrapped in place; the loop looks it up at each call).
 */
export function countCalls(name: "bt_pool_alloc" | "bt_xmit"): {
  calls: number;
  [Symbol.dispose](): void;
} {
  const lib = library() as unknown as Record<string, (...a: unknown[]) => unknown>;
  const orig = lib[name];
  const counter = {
    calls: 0,
    [Symbol.dispose]: () => {
      lib[name] = orig;
    },
  };
  lib[name] = (...a: unknown[]) => {
    counter.calls++;
    return orig(...a);
  };
  return counter;
}

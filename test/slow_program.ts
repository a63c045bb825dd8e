/**
 * Test programs loaded by Workers: every frame gets `verdict` (default
 * redirect to device-map entry 0), after spinning `spinUs` per batch.
 */
import { type Program, redirect } from "../mod.ts";

export function slow(o: { spinUs?: number; verdict?: number }): Program {
  const v = o.verdict ?? redirect(0);
  return (b) => {
    b.verdicts.fill(v, 0, b.count);
    const until = performance.now() + (o.spinUs ?? 0) / 1000;
    while (performance.now() < until) { /* a slow program */ }
  };
}

export const fixed = slow;

/** The message of the NrtError `f` throws (failing the test if it throws something else, or nothing). */
import { expect } from "vitest";
import { NrtError } from "../../src/errors.js";

export function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(NrtError);
    return (e as Error).message;
  }
  return expect.fail("expected an NrtError");
}

import { join } from "node:path";
import { packageRoot } from "../util/package-root.js";

export { packageRoot };

/** The shipped base model of a world: models/<world>-base. */
export function shippedBase(world: string): string {
  return join(packageRoot(), "models", `${world}-base`);
}

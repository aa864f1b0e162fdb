/**
 * Key spellings (SPEC §8): camelCase in code, kebab-case for CLI flags, snake_case for configuration files and batch
 * files. The one converter between them.
 */
export const kebab = (s: string): string => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
export const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
export const camel = (s: string): string => s.replace(/[_-]([a-z])/g, (_, c: string) => c.toUpperCase());

/** The same object with snake_case keys (a resolved configuration as a config file spells it). */
export function snakeKeys(o: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [snake(k), v]));
}

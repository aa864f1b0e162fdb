/** The one error type nrt throws for bad input: `where` names the file, line, key or tensor at fault. */
export class NrtError extends Error {
  readonly where: string | undefined;
  constructor(message: string, where?: string) {
    super(where ? `${where}: ${message}` : message);
    this.name = "NrtError";
    this.where = where;
  }
}

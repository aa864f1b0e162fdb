import { NrtError } from "../errors.js";

/** What a run records of its data file (run_config.json `data`): its byte count and SHA-256. */
export interface DataDigest {
  size: number;
  sha256: string;
}

/**
 * `--resume` trains on the data the run started with: a data file whose size or SHA-256 differs from the one
 * recorded in the run directory is refused, unless `allow` (--allow-data-change), which only warns. A run that
 * recorded nothing (written before nrt kept the digest) is resumed with a warning.
 */
export function dataCheck(
  saved: DataDigest | undefined,
  now: DataDigest,
  dataPath: string,
  runDir: string,
  allow: boolean,
): void {
  if (saved === undefined || typeof saved.sha256 !== "string") {
    process.stderr.write(
      `warning: ${runDir}: the run recorded no digest of its data file; ${dataPath} is not checked\n`,
    );
    return;
  }
  if (saved.size === now.size && saved.sha256 === now.sha256) return;
  const what =
    saved.size !== now.size
      ? `${saved.size} bytes when the run started, ${now.size} now`
      : `same size, different content (sha256 ${saved.sha256.slice(0, 12)}… then, ${now.sha256.slice(0, 12)}… now)`;
  if (allow) {
    process.stderr.write(
      `warning: ${dataPath}: the data file changed since the run started (${what}); --allow-data-change: training on it\n`,
    );
    return;
  }
  throw new NrtError(
    `--resume: the data file changed since the run started (${what}); give the original file, or --allow-data-change to train on this one`,
    dataPath,
  );
}

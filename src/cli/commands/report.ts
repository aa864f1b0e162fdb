import { join } from "node:path";
import type { Command } from "commander";
import { NrtError } from "../../errors.js";
import { checkOutput } from "../../io/output.js";
import { writeReport } from "../../report/report.js";
import { ALARMS_FILE, METRICS_FILE, RUN_CONFIG, SAMPLES_FILE } from "../../train/run-dir.js";
import { parseIntArg } from "../args.js";

interface ReportFlags {
  out: string;
  smooth: string;
  samples: string;
  title?: string;
  names?: string;
  force?: boolean;
}

/** the files of a run directory that `nrt report` reads */
const READS = [METRICS_FILE, RUN_CONFIG, ALARMS_FILE, SAMPLES_FILE, "eval.json"];

export function register(program: Command): void {
  program
    .command("report")
    .description("write one self-contained HTML page of the curves, final metrics, alarms and samples of runs")
    .argument("<run...>", "run directories (from nrt train); several are overlaid, one colour each")
    .option("-o, --out <file>", "output HTML file", "report.html")
    .option("--smooth <w>", "initial EMA smoothing of the curves, in [0, 1) (0: raw; adjustable in the page)", "0.6")
    .option("--samples <n>", "sample traces shown per run, for its first and last logged step", "4")
    .option("--title <text>", "page title")
    .option("--names <a,b,…>", "run names, comma-separated (default: the directory names)")
    .option("--force", "overwrite an existing output file (never a file of the runs)")
    .action((dirs: string[], o: ReportFlags) => {
      const inputFiles = dirs.flatMap((d) => READS.map((f) => join(d, f)));
      checkOutput(o.out, { kind: "file", force: o.force, inputFiles, inputDirs: dirs.map((d) => join(d, "final")) });
      const smooth = Number(o.smooth);
      if (!Number.isFinite(smooth)) throw new NrtError(`must be a number, got ${JSON.stringify(o.smooth)}`, "--smooth");
      const runs = writeReport(dirs, o.out, {
        smooth,
        samples: parseIntArg(o.samples, "--samples", 0),
        ...(o.title !== undefined && { title: o.title }),
        ...(o.names !== undefined && { names: o.names.split(",").map((s) => s.trim()) }),
      });
      for (const r of runs) {
        for (const w of r.warnings) process.stderr.write(`nrt report: warning: ${w}\n`);
        const last = r.metrics.at(-1)?.step ?? 0;
        const extra = [r.eval && "eval.json", r.samples.length > 0 && "samples", r.alarms.length > 0 && "alarms"];
        const has = extra.filter(Boolean).join(", ");
        process.stderr.write(
          `nrt report: ${r.name}: ${r.metrics.length} steps (last ${last})${has ? `; ${has}` : ""}\n`,
        );
      }
      process.stdout.write(`${o.out}\n`);
    });
}

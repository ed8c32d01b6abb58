/**
 * Progress of long image steps (storing, pushing, pulling). Library calls take
 * a plain callback; `terminalProgress` draws cli-progress bars on a TTY and
 * is silent otherwise, so scripts and CI logs stay clean.
 */
import cliProgress from "cli-progress";

export interface ProgressEvent {
  /** What is happening: "store" (build), "push", "pull". */
  phase: string;
  done: number;
  total: number;
  /** The blob or step, e.g. a short digest. */
  label?: string;
}

export type ProgressFn = (e: ProgressEvent) => void;

/** A progress callback drawing one bar per phase on `stream` when it is a TTY; `stop()` clears up. */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): { onProgress: ProgressFn; stop: () => void } {
  if (!stream.isTTY) return { onProgress: () => {}, stop: () => {} };
  let bar: cliProgress.SingleBar | undefined;
  let phase = "";
  const stop = (): void => {
    bar?.stop();
    bar = undefined;
  };
  const onProgress: ProgressFn = (e) => {
    if (e.phase !== phase || !bar) {
      stop();
      phase = e.phase;
      bar = new cliProgress.SingleBar(
        { stream, format: `${e.phase.padEnd(6)} [{bar}] {percentage}% | {value}/{total} bytes {label}`, hideCursor: true, clearOnComplete: false },
        cliProgress.Presets.shades_classic,
      );
      bar.start(Math.max(e.total, 1), e.done, { label: e.label ?? "" });
    }
    bar.setTotal(Math.max(e.total, 1));
    bar.update(e.done, { label: e.label ?? "" });
  };
  return { onProgress, stop };
}

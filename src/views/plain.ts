import { formatDuration } from '../core/duration.ts';
import type { DeployEvent, EventOf } from '../core/events.ts';
import { style, type Style } from './style.ts';
import { checkLines, renderChecks } from './checks.ts';
import { renderSummary } from './summary.ts';

export interface PlainViewOptions {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  color: boolean;
  /** Print every output line of every command (CI logs want this). */
  showOutput: boolean;
}

/** Longest unfinished output line held back waiting for its newline. */
const MAX_PARTIAL_LINE = 64 * 1024;

function partialKey(commandId: string, stream: 'stdout' | 'stderr'): string {
  return `${commandId}\0${stream}`;
}

/**
 * One line per thing that happened, each prefixed with `[site]`: the view for
 * CI logs, pipes and `--verbose`. No spinners, no cursor movement.
 */
export class PlainView {
  private readonly s: Style;
  private readonly partial = new Map<string, string>();
  private readonly commandSite = new Map<string, string | null>();
  private dryRun = false;
  private readonly checks: EventOf<'check'>[] = [];

  constructor(private readonly options: PlainViewOptions) {
    this.s = style(options.color);
  }

  private write(site: string | null, text: string): void {
    const tag = site === null ? this.s.cyan('[local]') : this.s.cyan(`[${site}]`);
    for (const line of text.split('\n')) this.options.out.write(`${tag} ${line}\n`);
  }

  /** An output line as printed: indented under its command, stderr in yellow. */
  private outputLine(stream: 'stdout' | 'stderr', line: string): string {
    return `  ${stream === 'stderr' ? this.s.yellow(line) : line}`;
  }

  /** At the command's end, what it printed after its last newline, stdout then stderr. */
  private flush(commandId: string): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const key = partialKey(commandId, stream);
      const rest = this.partial.get(key);
      if (rest) this.write(this.commandSite.get(commandId) ?? null, this.outputLine(stream, rest));
      this.partial.delete(key);
    }
  }

  readonly handle = (event: DeployEvent): void => {
    const s = this.s;
    switch (event.type) {
      case 'run:start':
        this.dryRun = event.dryRun;
        this.options.out.write(
          s.bold(`${event.dryRun ? 'Dry run: ' : ''}${event.tasks.join(', ')} on ${event.sites.length} site${event.sites.length === 1 ? '' : 's'}`) +
            s.dim(` (${event.deployfile})`) +
            '\n',
        );
        break;
      case 'site:start':
        this.write(event.site, s.dim(`start (${event.target})`));
        break;
      case 'task:start':
        this.write(event.site, `${s.bold('▶')} ${event.task}${event.once ? s.dim(' (once for the run)') : ''}`);
        break;
      case 'command:start':
        this.commandSite.set(event.commandId, event.site);
        this.write(event.site, `${s.dim('$')} ${this.dryRun ? event.composed : event.command}`);
        break;
      case 'output': {
        if (!this.options.showOutput) break;
        // A chunk may end mid-line: hold the rest until its newline, per command and stream
        // (a command's stdout and stderr interleave, and each site's commands run at once).
        const key = partialKey(event.commandId, event.stream);
        const text = (this.partial.get(key) ?? '') + event.chunk;
        const lines = text.split('\n');
        let rest = lines.pop() ?? '';
        // Output with no newline for megabytes must not pile up here: print it in pieces.
        if (rest.length > MAX_PARTIAL_LINE) {
          lines.push(rest);
          rest = '';
        }
        this.partial.set(key, rest);
        for (const line of lines) this.write(event.site, this.outputLine(event.stream, line));
        break;
      }
      case 'command:end':
        this.flush(event.commandId);
        this.commandSite.delete(event.commandId);
        if (!event.ok) {
          const why = event.timedOut ? 'timed out' : event.signal ? `killed by ${event.signal}` : event.exitCode === null ? 'no exit status' : `exit code ${event.exitCode}`;
          this.write(event.site, s.red(`  ✖ ${why} after ${formatDuration(event.durationMs)}`));
        }
        break;
      case 'task:end':
        if (event.status === 'ok') this.write(event.site, s.green(`✔ ${event.task} (${formatDuration(event.durationMs)})`));
        else if (event.status === 'skipped') this.write(event.site, s.dim(`↓ ${event.task} skipped: ${event.note ?? ''}`));
        else this.write(event.site, s.red(`✖ ${event.task} failed: ${event.error ?? ''}`));
        break;
      case 'prompt':
        this.write(event.site, `? ${event.question} ${s.bold(event.answer)}${event.by === 'policy' ? s.dim(' (answered by policy: no TTY, CI or --json; see --yes / --on-failure)') : ''}`);
        break;
      case 'log':
        this.write(event.site, event.level === 'info' ? event.message : event.level === 'warn' ? s.yellow(`warning: ${event.message}`) : s.red(event.message));
        break;
      case 'check':
        this.checks.push(event);
        this.write(event.site, checkLines(event, s).join('\n'));
        break;
      case 'site:end':
        if (event.status === 'not-started') this.write(event.site, s.dim('not started'));
        break;
      case 'run:end': {
        // Output of a command that never ended (given up on): print what was held back.
        for (const key of [...this.partial.keys()]) this.flush(key.slice(0, key.indexOf('\0')));
        const checks = renderChecks(this.checks, s);
        if (checks) this.options.out.write(`\n${checks}\n`);
        // Fit a terminal's width; off a TTY (CI logs, files) there is no width to fit, and a row
        // on one line stays greppable: "shop  failed at deploy: git pull ...".
        const table = renderSummary(event.summary, s, this.options.out.isTTY ? (this.options.out as { columns?: number }).columns : Infinity);
        if (table) this.options.out.write(`\n${table}\n`);
        const verdict = event.status === 'ok' ? s.green('done') : event.status === 'interrupted' ? s.yellow('interrupted') : s.red('failed');
        this.options.out.write(`${verdict} in ${formatDuration(event.durationMs)} (exit ${event.exitCode})\n`);
        break;
      }
      default:
        break;
    }
  };
}

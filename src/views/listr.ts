import { Listr, ListrDefaultRendererLogLevels, figures, type DefaultRenderer, type ListrTask, type ListrTaskWrapper, type SimpleRenderer } from 'listr2';
import { writeSync } from 'node:fs';
import { formatDuration } from '../core/duration.ts';
import type { DeployEvent, EventOf } from '../core/events.ts';
import { checkLines, renderChecks } from './checks.ts';
import { style, useColor, type Style } from './style.ts';
import { renderSummary } from './summary.ts';

export type Wrapper = ListrTaskWrapper<unknown, typeof DefaultRenderer, typeof SimpleRenderer>;

type Outcome = { status: 'ok' | 'skipped' | 'failed' | 'not-run'; note?: string; durationMs?: number };

interface Deferred {
  promise: Promise<Outcome>;
  resolve: (value: Outcome) => void;
  settled: boolean;
}

function deferred(): Deferred {
  let resolve!: Deferred['resolve'];
  const d: Deferred = { promise: new Promise((r) => (resolve = r)), resolve: (v) => {
    if (d.settled) return;
    d.settled = true;
    resolve(v);
  }, settled: false };
  return d;
}

interface TaskRow {
  name: string;
  done: Deferred;
  wrapper?: Wrapper;
  started: boolean;
}

interface Lane {
  rows: TaskRow[];
  /** The run-once lane has one listr row for all its tasks. */
  wrapper?: Wrapper;
  /** The run-once row: its tasks that ended, as lines (`✔ build 1.2s`). */
  finished?: string[];
  /** A run-once task failed: the run-once row ends failed. */
  failed?: boolean;
  current: number;
  nested: string[];
  lines: string[];
  /** The running command's output after its last newline, per stream. */
  partial: { stdout?: string; stderr?: string };
  command?: string;
  /** A question of this site's waits for an answer at the bottom of the screen. */
  asking: boolean;
  done: Deferred;
}

/**
 * Where a question is drawn while the live view runs: the lines under the
 * tree, so it stays in view (and whole) whatever the sites above it do.
 */
export interface QuestionBoard {
  /** How wide a question's lines may be without wrapping on the terminal. */
  readonly columns: number;
  /** Show the question's latest frame in place of the previous one. */
  show(frame: string): void;
  /** The question is answered (or given up): the board empties. */
  clear(): void;
}

const OUTPUT_LINES = 3;
const ONCE = '\0once';
/** Shows the cursor again; listr2 hides it for the run (see `ListrView.onExit`). */
const SHOW_CURSOR = '\x1b[?25h';

/** A progress bar redraws its line with \r: the screen shows what the line ends as. */
function lastDraw(line: string): string {
  return line.slice(line.lastIndexOf('\r') + 1);
}

/**
 * The interactive view: a row per site, a sub-row per task, the running
 * command with its last output lines, durations, and one failure line.
 * It only reads events; questions are drawn under the tree
 * ({@link ListrView.questionBoard}) by `ListrQuestions`, which the run's one
 * question queue feeds. Every line is cut to the terminal's width, so
 * nothing wraps and each redraw replaces the last one exactly.
 */
export class ListrView {
  private readonly lanes = new Map<string, Lane>();
  private listr: Promise<void> | undefined;
  private dryRun = false;
  /** Shown after the last frame: a check's line would scroll out of a row's three output lines. */
  private readonly checks: EventOf<'check'>[] = [];
  private readonly s: Style;
  /** The untitled root task whose output listr2 draws under the tree: where questions go. */
  private boardReady: Promise<Wrapper> | undefined;
  private readonly boardDone = deferred();
  private ended = false;
  private readonly onExit = (): void => {
    // A second Ctrl-C calls process.exit() while listr2 owns the terminal: it never gets to show the
    // cursor again, and process.stdout.write is listr2's buffer by then, so write to the descriptor.
    try {
      if ('fd' in this.out && typeof this.out.fd === 'number') writeSync(this.out.fd, SHOW_CURSOR);
    } catch {
      // The terminal is gone: nothing to restore.
    }
  };

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {
    // A TTY, but NO_COLOR or TERM=dumb still mean no colour (listr2's own frames follow NO_COLOR too).
    this.s = style(useColor(out));
  }

  private laneOf(site: string | null): Lane | undefined {
    return this.lanes.get(site ?? ONCE);
  }

  private newLane(tasks: string[]): Lane {
    return { rows: tasks.map((name) => ({ name, done: deferred(), started: false })), current: -1, nested: [], lines: [], partial: {}, asking: false, done: deferred() };
  }

  private rowTask(lane: Lane, row: TaskRow): ListrTask<unknown, typeof DefaultRenderer, typeof SimpleRenderer> {
    return {
      title: row.name,
      // One row failing does not end its site's list: the site's verdict does (see `start`).
      exitOnError: false,
      task: async (_ctx, wrapper) => {
        row.wrapper = wrapper as Wrapper;
        this.refresh(lane);
        const outcome = await row.done.promise;
        row.wrapper = undefined;
        // The finished tree keeps every step: its name, how long it took, why it was skipped.
        const took = outcome.durationMs === undefined ? '' : ` ${this.s.dim(formatDuration(outcome.durationMs))}`;
        wrapper.title = `${row.name}${took}`;
        if (outcome.status === 'ok' && outcome.note) wrapper.title = `${row.name} ${this.s.dim(outcome.note)}`;
        if (outcome.status === 'skipped') wrapper.skip(`${row.name} ${this.s.dim(`skipped: ${outcome.note ?? ''}`)}`);
        if (outcome.status === 'not-run') wrapper.skip(`${row.name} ${this.s.dim('not run')}`);
        if (outcome.status === 'failed') throw new Error(outcome.note ?? 'failed');
      },
      // listr2 keeps `outputBar` past values of `output`; each of ours is already the whole picture.
      rendererOptions: { outputBar: 1, persistentOutput: false },
    };
  }

  private start(event: EventOf<'run:start'>): void {
    this.dryRun = event.dryRun;
    const rows: ListrTask<unknown, typeof DefaultRenderer, typeof SimpleRenderer>[] = [];
    let boardStarted!: (wrapper: Wrapper) => void;
    this.boardReady = new Promise((resolve) => (boardStarted = resolve));
    // No title: listr2 draws its output under the tree (its "bottom bar"), and nothing in the tree.
    rows.push({
      task: async (_ctx, wrapper) => {
        boardStarted(wrapper as Wrapper);
        await this.boardDone.promise;
      },
    });
    const onceLane: Lane = { ...this.newLane([]), rows: [] };
    this.lanes.set(ONCE, onceLane);
    rows.push({
      // A blank title draws nothing: the row appears with the first run-once task. (Not '': listr2
      // takes that for no title, and an untitled row's output goes under the tree, with the questions.)
      title: ' ',
      // Its output lists the run-once tasks that ended, one a line: it stays when the row ends.
      rendererOptions: { outputBar: 1, persistentOutput: true },
      task: async (_ctx, wrapper) => {
        onceLane.wrapper = wrapper as Wrapper;
        this.refresh(onceLane);
        await onceLane.done.promise;
        this.refresh(onceLane);
        if (onceLane.rows.length === 0) wrapper.skip();
        if (onceLane.failed) throw new Error('');
      },
    });
    for (const site of event.sites) {
      const lane = this.newLane(event.tasks);
      this.lanes.set(site.site, lane);
      rows.push({
        title: `${site.site} ${this.s.dim(site.target)}`,
        task: (_ctx, siteRow) =>
          siteRow.newListr(
            [
              ...lane.rows.map((row) => this.rowTask(lane, row)),
              {
                // The site's verdict, as the summary words it; untitled, so it draws no row.
                task: async () => {
                  const outcome = await lane.done.promise;
                  siteRow.title = `${site.site} ${this.s.dim(site.target)} ${outcome.note ?? ''}`.trimEnd();
                  if (outcome.status === 'not-run') siteRow.skip(siteRow.title);
                  if (outcome.status === 'failed') throw new Error('');
                },
              },
            ],
            // The verdict's failure fails the site's row (✖); a failed step alone does not (exitOnError above).
            { concurrent: false, exitOnError: true },
          ),
      });
    }
    const listr = new Listr<unknown, 'default', 'simple'>(rows as never, {
      concurrent: true,
      exitOnError: false,
      renderer: 'default',
      fallbackRenderer: 'simple',
      rendererOptions: {
        collapseSubtasks: false,
        collapseErrors: false,
        showErrorMessage: true,
        // At 80 columns a long command would wrap into the rows under it; cut it instead.
        formatOutput: 'truncate',
        // A failed site reads ✖ like a failed step (listr2's default is a red ❯, as a running site's).
        icon: { [ListrDefaultRendererLogLevels.FAILED_WITH_FAILED_SUBTASKS]: figures.cross },
      },
      collectErrors: false,
      // Ctrl-C belongs to `deploy run`: listr2's own handler would exit 127 at
      // once, skipping the graceful stop (signals, lock release, exit 130).
      registerSignalListeners: false,
    });
    if (this.out.isTTY) process.on('exit', this.onExit);
    this.listr = listr.run().then(
      () => undefined,
      () => undefined,
    );
  }

  private refresh(lane: Lane): void {
    const waiting = lane.asking ? ` ${this.s.yellow('? waiting for your answer below')}` : '';
    if (lane.wrapper) {
      const running = lane.rows[lane.current];
      const title = running && !running.done.settled ? `this machine: ${running.name}…${waiting}` : 'this machine';
      lane.wrapper.title = lane.rows.length > 0 ? title : ' ';
      lane.wrapper.output = [...(lane.finished ?? []), this.tail(lane)].filter(Boolean).join('\n');
      return;
    }
    const row = lane.rows[lane.current];
    const wrapper = row?.wrapper;
    if (!wrapper || !row) return;
    wrapper.title = (lane.nested.length > 0 ? `${row.name} › ${lane.nested.join(' › ')}` : row.name) + waiting;
    wrapper.output = this.tail(lane);
  }

  /** A new task or command: nothing of the last one's command and output stays under the row. */
  private clearTail(lane: Lane, command?: string): void {
    lane.command = command;
    lane.lines = [];
    lane.partial = {};
  }

  /** Under a running row: its command and the last lines of output, a line still being written last. */
  private tail(lane: Lane): string {
    const writing = [lane.partial.stdout ?? '', lane.partial.stderr ?? ''].map(lastDraw).filter((line) => line.trim() !== '');
    return [lane.command ? `$ ${lane.command}` : '', ...[...lane.lines, ...writing].slice(-OUTPUT_LINES)].filter(Boolean).join('\n');
  }

  readonly handle = (event: DeployEvent): void => {
    switch (event.type) {
      case 'run:start':
        this.start(event);
        break;
      case 'task:start': {
        const lane = this.laneOf(event.site);
        if (!lane) break;
        if (event.site === null && event.parentTaskId === null) {
          // Run-once tasks appear in the operator's lane as they happen.
          lane.rows.push({ name: event.task, done: deferred(), started: true });
          lane.current = lane.rows.length - 1;
          this.clearTail(lane);
          this.refresh(lane);
          break;
        }
        if (event.parentTaskId !== null) {
          lane.nested.push(event.task);
          this.refresh(lane);
          break;
        }
        const index = lane.rows.findIndex((row, i) => i > lane.current && row.name === event.task);
        if (index < 0) break;
        // Rows skipped over were run-once tasks this site only waited for.
        for (let i = lane.current + 1; i < index; i++) lane.rows[i]?.done.resolve({ status: 'ok', note: 'ran once, on this machine' });
        lane.current = index;
        (lane.rows[index] as TaskRow).started = true;
        lane.nested = [];
        this.clearTail(lane);
        this.refresh(lane);
        break;
      }
      case 'task:end': {
        const lane = this.laneOf(event.site);
        if (!lane) break;
        const row = lane.rows[lane.current];
        if (lane.nested.length > 0 && lane.nested[lane.nested.length - 1] === event.task) {
          lane.nested.pop();
          if (event.status === 'skipped') lane.lines = [`${event.task}: skipped (${event.note ?? ''})`];
          this.refresh(lane);
          break;
        }
        if (row && row.name === event.task) {
          const note = event.status === 'skipped' ? event.note : event.error?.split('\n').slice(0, 4).join('\n');
          row.done.resolve({ status: event.status, note, durationMs: event.durationMs });
          this.clearTail(lane);
          if (lane === this.lanes.get(ONCE)) {
            const mark = event.status === 'ok' ? '✔' : event.status === 'skipped' ? '↓' : '✖';
            const how = event.status === 'skipped' ? `skipped: ${event.note ?? ''}` : formatDuration(event.durationMs);
            // A failed one carries its error under it; the row itself then fails with no message of its own.
            const error = event.status === 'failed' ? (note ?? 'failed').split('\n').map((line) => `\n  ${line}`).join('') : '';
            lane.finished = [...(lane.finished ?? []), `${mark} ${event.task} ${this.s.dim(how)}${error}`];
            if (event.status === 'failed') lane.failed = true;
            this.refresh(lane);
          }
        }
        break;
      }
      case 'command:start': {
        const lane = this.laneOf(event.site);
        if (!lane) break;
        this.clearTail(lane, this.dryRun ? event.composed : event.command);
        this.refresh(lane);
        break;
      }
      case 'command:end': {
        // What the command printed after its last newline is a line of its own now.
        const lane = this.laneOf(event.site);
        if (!lane) break;
        const rest = [lane.partial.stdout ?? '', lane.partial.stderr ?? ''].map(lastDraw).filter((line) => line.trim() !== '');
        lane.lines = [...lane.lines, ...rest].slice(-OUTPUT_LINES);
        lane.partial = {};
        this.refresh(lane);
        break;
      }
      case 'output': {
        const lane = this.laneOf(event.site);
        if (!lane) break;
        // A chunk may end mid-line: the rest waits for its newline (per stream), shown meanwhile as the last line.
        const lines = ((lane.partial[event.stream] ?? '') + event.chunk).split('\n');
        lane.partial[event.stream] = lines.pop() ?? '';
        const fresh = lines.map(lastDraw).filter((line) => line.trim() !== '');
        lane.lines = [...lane.lines, ...fresh].slice(-OUTPUT_LINES);
        this.refresh(lane);
        break;
      }
      case 'log': {
        const lane = this.laneOf(event.site);
        if (!lane) break;
        lane.lines = [...lane.lines, event.level === 'info' ? event.message : `${event.level}: ${event.message}`].slice(-OUTPUT_LINES);
        this.refresh(lane);
        break;
      }
      case 'check': {
        this.checks.push(event);
        const lane = this.laneOf(event.site);
        if (!lane) break;
        lane.lines = [...lane.lines, `${event.status} ${event.name}`].slice(-OUTPUT_LINES);
        this.refresh(lane);
        break;
      }
      case 'site:end': {
        const lane = this.laneOf(event.site);
        if (!lane) break;
        for (const row of lane.rows) {
          // The step the site stopped at, if it never ended itself (e.g. the run-once task it waited for failed).
          if (row.name === event.failedTask && event.status !== 'ok') row.done.resolve({ status: 'failed', note: event.error?.split('\n')[0] ?? event.status });
          else row.done.resolve({ status: 'not-run' });
        }
        const skipped = event.failuresSkipped?.length ?? 0;
        const word = event.status === 'not-started' ? 'not started' : event.status === 'ok' ? (skipped > 0 ? this.s.yellow(`${skipped} failure${skipped === 1 ? '' : 's'} skipped`) : '') : event.status;
        const took = event.status === 'not-started' ? '' : ` ${this.s.dim(formatDuration(event.durationMs))}`;
        const status = event.status === 'ok' ? 'ok' : event.status === 'not-started' || event.status === 'skipped' ? 'not-run' : 'failed';
        lane.done.resolve({ status, note: `${word}${took}`.trim() });
        break;
      }
      case 'run:end':
        this.settleAll();
        break;
      default:
        break;
    }
  };

  /** The run is over: rows still open never ran (not "ok"), and the board closes. */
  private settleAll(): void {
    for (const lane of this.lanes.values()) {
      for (const row of lane.rows) row.done.resolve({ status: 'not-run' });
      lane.done.resolve({ status: lane.failed ? 'failed' : 'ok' });
    }
    this.boardDone.resolve({ status: 'ok' });
  }

  /** Wait for the view to draw its last frame, then print the summary. */
  async finish(run: EventOf<'run:end'> | undefined): Promise<void> {
    // A run that ended without run:end (an error in the engine) must not leave the view waiting.
    this.settleAll();
    await this.listr;
    this.ended = true;
    process.off('exit', this.onExit);
    if (!run) return;
    if (this.checks.length > 0) {
      // Every check, grouped by site, as the plain view prints them as they come.
      const sites = [...new Set(this.checks.map((check) => check.site))];
      for (const site of sites) {
        this.out.write(`\n${this.s.bold(site ?? 'this machine')}\n`);
        for (const check of this.checks.filter((c) => c.site === site)) this.out.write(`${checkLines(check, this.s).map((line) => `  ${line}`).join('\n')}\n`);
      }
      this.out.write(`\n${renderChecks(this.checks, this.s)}\n`);
    }
    const table = renderSummary(run.summary, this.s, this.out.columns);
    if (table) this.out.write(`\n${table}\n`);
    const verdict = run.status === 'ok' ? this.s.green('done') : run.status === 'interrupted' ? this.s.yellow('interrupted') : this.s.red('failed');
    this.out.write(`${verdict} in ${formatDuration(run.durationMs)} (exit ${run.exitCode})\n`);
  }

  /**
   * Where a site's question is drawn: under the tree, while the view runs
   * (undefined before it starts and once it ended: ask on the terminal then).
   * The site's row says a question waits. The view shows questions; it does
   * not ask or queue them (see `listr-questions.ts`).
   */
  async questionBoard(site: string | null): Promise<QuestionBoard | undefined> {
    if (!this.boardReady || this.ended) return undefined;
    const board = await Promise.race([this.boardReady, this.boardDone.promise.then(() => undefined)]);
    if (!board || this.boardDone.settled) return undefined;
    const lane = this.laneOf(site);
    if (lane) {
      lane.asking = true;
      this.refresh(lane);
    }
    let open = true;
    return {
      // listr2 puts "› " before the first line and two spaces before the others; keep clear of the last column.
      columns: Math.max(20, (this.out.columns ?? 80) - 4),
      show: (frame) => {
        if (open) board.output = frame;
      },
      clear: () => {
        if (!open) return;
        open = false;
        board.output = '';
        if (lane) {
          lane.asking = false;
          this.refresh(lane);
        }
      },
    };
  }

  /** The running task row of a site (or the run-once row), undefined when none runs. */
  rowFor(site: string | null): Wrapper | undefined {
    const lane = this.laneOf(site);
    return lane?.rows[lane.current]?.wrapper ?? lane?.wrapper;
  }
}

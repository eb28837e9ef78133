import { Listr, PRESET_TIMER, type DefaultRenderer, type ListrTask, type ListrTaskWrapper, type SimpleRenderer } from 'listr2';
import { formatDuration } from '../core/duration.ts';
import type { DeployEvent, EventOf } from '../core/events.ts';
import { checkLines, renderChecks } from './checks.ts';
import { style, useColor, type Style } from './style.ts';
import { renderSummary } from './summary.ts';

export type Wrapper = ListrTaskWrapper<unknown, typeof DefaultRenderer, typeof SimpleRenderer>;

interface Deferred {
  promise: Promise<{ status: 'ok' | 'skipped' | 'failed' | 'not-run'; note?: string }>;
  resolve: (value: { status: 'ok' | 'skipped' | 'failed' | 'not-run'; note?: string }) => void;
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
  finished?: string[];
  current: number;
  nested: string[];
  lines: string[];
  command?: string;
  done: Deferred;
}

const OUTPUT_LINES = 3;
const ONCE = '\0once';

/**
 * The interactive view: a row per site, a sub-row per task, the running
 * command with its last output lines, durations, and one failure line.
 * It only reads events; questions are shown in a site's running row
 * ({@link ListrView.rowFor}) by `ListrQuestions`, which the run's one
 * question queue feeds.
 */
export class ListrView {
  private readonly lanes = new Map<string, Lane>();
  private listr: Promise<void> | undefined;
  private dryRun = false;
  /** Shown after the last frame: a check's line would scroll out of a row's three output lines. */
  private readonly checks: EventOf<'check'>[] = [];
  private readonly s: Style;

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {
    // A TTY, but NO_COLOR or TERM=dumb still mean no colour (listr2's own frames follow NO_COLOR too).
    this.s = style(useColor(out));
  }

  private laneOf(site: string | null): Lane | undefined {
    return this.lanes.get(site ?? ONCE);
  }

  private newLane(tasks: string[]): Lane {
    return { rows: tasks.map((name) => ({ name, done: deferred(), started: false })), current: -1, nested: [], lines: [], done: deferred() };
  }

  private rowTask(lane: Lane, row: TaskRow): ListrTask<unknown, typeof DefaultRenderer, typeof SimpleRenderer> {
    return {
      title: row.name,
      task: async (_ctx, wrapper) => {
        row.wrapper = wrapper as Wrapper;
        this.refresh(lane);
        const outcome = await row.done.promise;
        row.wrapper = undefined;
        if (outcome.status === 'skipped') wrapper.skip(outcome.note ?? 'skipped');
        if (outcome.status === 'not-run') wrapper.skip('not run');
        if (outcome.status === 'failed') throw new Error(outcome.note ?? 'failed');
      },
      // listr2 keeps `outputBar` past values of `output`; each of ours is already the whole picture.
      rendererOptions: { outputBar: 1, persistentOutput: false },
    };
  }

  private start(event: EventOf<'run:start'>): void {
    this.dryRun = event.dryRun;
    const rows: ListrTask<unknown, typeof DefaultRenderer, typeof SimpleRenderer>[] = [];
    const onceLane: Lane = { ...this.newLane([]), rows: [] };
    this.lanes.set(ONCE, onceLane);
    rows.push({
      title: 'this machine (run-once tasks)',
      rendererOptions: { outputBar: 1, persistentOutput: false },
      task: async (_ctx, wrapper) => {
        onceLane.wrapper = wrapper as Wrapper;
        const outcome = await onceLane.done.promise;
        if (onceLane.rows.length === 0) wrapper.skip('no run-once tasks ran');
        if (outcome.status === 'failed') throw new Error(outcome.note ?? 'failed');
      },
    });
    for (const site of event.sites) {
      const lane = this.newLane(event.tasks);
      this.lanes.set(site.site, lane);
      rows.push({
        title: `${site.site} ${this.s.dim(site.target)}`,
        task: (_ctx, wrapper) =>
          wrapper.newListr(
            lane.rows.map((row) => this.rowTask(lane, row)),
            { concurrent: false, exitOnError: false },
          ),
      });
    }
    const listr = new Listr<unknown, 'default', 'simple'>(rows as never, {
      concurrent: true,
      exitOnError: false,
      renderer: 'default',
      fallbackRenderer: 'simple',
      rendererOptions: { timer: PRESET_TIMER, collapseSubtasks: false, collapseErrors: false, showErrorMessage: true },
      collectErrors: false,
      // Ctrl-C belongs to `deploy run`: listr2's own handler would exit 127 at
      // once, skipping the graceful stop (signals, lock release, exit 130).
      registerSignalListeners: false,
    });
    this.listr = listr.run().then(
      () => undefined,
      () => undefined,
    );
  }

  private refresh(lane: Lane): void {
    if (lane.wrapper) {
      const running = lane.rows[lane.current];
      const done = lane.finished ?? [];
      lane.wrapper.title = `this machine: ${[...done, ...(running && !running.done.settled ? [`${running.name}…`] : [])].join(', ') || 'run-once tasks'}`;
      lane.wrapper.output = [lane.command ? `$ ${lane.command}` : '', ...lane.lines].filter(Boolean).join('\n');
      return;
    }
    const row = lane.rows[lane.current];
    const wrapper = row?.wrapper;
    if (!wrapper || !row) return;
    wrapper.title = lane.nested.length > 0 ? `${row.name} › ${lane.nested.join(' › ')}` : row.name;
    wrapper.output = [lane.command ? `$ ${lane.command}` : '', ...lane.lines].filter(Boolean).join('\n');
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
        for (let i = lane.current + 1; i < index; i++) lane.rows[i]?.done.resolve({ status: 'ok' });
        lane.current = index;
        (lane.rows[index] as TaskRow).started = true;
        lane.nested = [];
        lane.lines = [];
        lane.command = undefined;
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
          row.done.resolve({ status: event.status, note: event.status === 'skipped' ? event.note : event.error });
          lane.command = undefined;
          lane.lines = [];
          if (lane.wrapper) {
            const mark = event.status === 'ok' ? '✔' : event.status === 'skipped' ? '↓' : '✖';
            lane.finished = [...(lane.finished ?? []), `${event.task} ${mark} ${formatDuration(event.durationMs)}`];
            if (event.status === 'failed') lane.lines = [event.error?.split('\n')[0] ?? 'failed'];
            this.refresh(lane);
          }
        }
        break;
      }
      case 'command:start': {
        const lane = this.laneOf(event.site);
        if (!lane) break;
        lane.command = this.dryRun ? event.composed : event.command;
        lane.lines = [];
        this.refresh(lane);
        break;
      }
      case 'output': {
        const lane = this.laneOf(event.site);
        if (!lane) break;
        const fresh = event.chunk.split('\n').filter((line) => line.trim() !== '');
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
        for (const row of lane.rows) row.done.resolve({ status: 'not-run', note: event.status });
        lane.done.resolve({ status: event.status === 'ok' ? 'ok' : 'failed' });
        break;
      }
      case 'run:end': {
        for (const lane of this.lanes.values()) {
          for (const row of lane.rows) row.done.resolve({ status: 'ok' });
          lane.done.resolve({ status: 'ok' });
        }
        break;
      }
      default:
        break;
    }
  };

  /** Wait for the view to draw its last frame, then print the summary. */
  async finish(run: EventOf<'run:end'> | undefined): Promise<void> {
    await this.listr;
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
    const table = renderSummary(run.summary, this.s);
    if (table) this.out.write(`\n${table}\n`);
    const verdict = run.status === 'ok' ? this.s.green('done') : run.status === 'interrupted' ? this.s.yellow('interrupted') : this.s.red('failed');
    this.out.write(`${verdict} in ${formatDuration(run.durationMs)} (exit ${run.exitCode})\n`);
  }

  /**
   * Where a site's question is shown: its running task row (or the run-once
   * lane's row), undefined when none runs. The view shows questions there;
   * it does not ask or queue them (see `listr-questions.ts`).
   */
  rowFor(site: string | null): Wrapper | undefined {
    const lane = this.laneOf(site);
    return lane?.rows[lane.current]?.wrapper ?? lane?.wrapper;
  }
}

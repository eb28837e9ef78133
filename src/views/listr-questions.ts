import { Writable } from 'node:stream';
import type { Asker } from '../prompts/asker.ts';
import { questionLabel } from '../prompts/asker.ts';
import type { QuestionBoard } from './listr.ts';

/** One question for a prompt: a choice or hidden input. */
export type ListrQuestion =
  | { kind: 'select'; message: string; choices: { name: string; value: string }[] }
  | { kind: 'password'; message: string; mask: string };

/**
 * Draws a question: on `board` (the lines under the live view's tree) when
 * one is given, else straight on the terminal. Swappable so the placement is
 * testable without a TTY.
 */
export type ShowQuestion = (board: QuestionBoard | undefined, question: ListrQuestion) => Promise<string>;

/**
 * A prompt's screen writes as the lines they leave: the cursor moves and
 * erases go (the board redraws whole frames), colours stay.
 *
 * @example visibleFrame('\x1b[2K\x1b[G? Deploy?\x1b[?25l') // '? Deploy?'
 */
export function visibleFrame(written: string): string {
  return written
    .replace(/\x1b\[[0-9;?]*([A-Za-z])/g, (sequence: string, final: string) => (final === 'm' ? sequence : ''))
    .replace(/\x1b\][^\x07]*\x07|\x1b[78]/g, '')
    .replace(/\r/g, '')
    .replace(/\s+$/, '');
}

/**
 * The real drawing: @inquirer/prompts. On the board, the prompt writes to a
 * stream of ours, not the terminal: listr2 owns the screen while it runs
 * (it redraws the whole frame many times a second), so every prompt frame
 * becomes the board's content and listr2 draws it with the rest. Hand-written
 * instead of @listr2/prompt-adapter-inquirer: listr2's default renderer loses
 * track of the active prompt when an earlier prompt's task finishes (the
 * question vanished until a key was pressed), and it wraps what we cut.
 */
export const showWithInquirer: ShowQuestion = async (board, question) => {
  const { select, password } = await import('@inquirer/prompts');
  if (!board) return question.kind === 'select' ? select(question) : password(question);
  const output = Object.assign(
    new Writable({
      write(chunk: Buffer | string, _encoding, done) {
        const frame = visibleFrame(chunk.toString());
        if (frame) board.show(frame);
        done();
      },
    }),
    // Inquirer breaks its lines at its output's width.
    { columns: board.columns, rows: 1000, isTTY: true },
  );
  try {
    const context = { output, clearPromptOnDone: true };
    return question.kind === 'select' ? await select(question, context) : await password(question, context);
  } catch (error) {
    // The prompt reads the keyboard raw, so Ctrl-C reaches it as a key, not as SIGINT: hand it
    // back to the process as the signal, so it stops the run like a Ctrl-C anywhere else.
    if (error instanceof Error && error.name === 'ExitPromptError') process.kill(process.pid, 'SIGINT');
    throw error;
  } finally {
    board.clear();
  }
};

/**
 * The listr view's display of questions: each one under the tree, labelled
 * with its site, while the site's row says it waits for an answer (on the
 * terminal when the view is not running). It shows; the run's question queue
 * decides when (see `queuedAsker`).
 *
 * @example const asker = queuedAsker(new ListrQuestions(listrView), questions);
 */
export class ListrQuestions implements Asker {
  constructor(
    private readonly view: { questionBoard(site: string | null): Promise<QuestionBoard | undefined> },
    private readonly show: ShowQuestion = showWithInquirer,
  ) {}

  async select<T extends string>(site: string | null, message: string, choices: { name: string; value: T }[]): Promise<T> {
    return (await this.show(await this.view.questionBoard(site), { kind: 'select', message: questionLabel(site, message), choices })) as T;
  }

  /** Hidden input on the board (or straight on the terminal when the view is not running). */
  async secret(site: string | null, message: string): Promise<string> {
    return this.show(await this.view.questionBoard(site), { kind: 'password', message: questionLabel(site, message), mask: '*' });
  }

  /** A yes/no choice, the default first (Enter takes it). */
  async confirm(site: string | null, message: string, defaultAnswer: boolean): Promise<boolean> {
    const yes = { name: 'Yes', value: 'yes' as const };
    const no = { name: 'No', value: 'no' as const };
    return (await this.select(site, message, defaultAnswer ? [yes, no] : [no, yes])) === 'yes';
  }
}

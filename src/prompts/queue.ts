import { AsyncLocalStorage } from 'node:async_hooks';
import type { QuestionQueue } from '../core/prompter.ts';

export type { QuestionQueue } from '../core/prompter.ts';

interface Turn {
  queue: QuestionQueue;
  open: boolean;
}

/** The turn the current async call chain is inside, if any (so a nested turn does not wait for itself). */
const currentTurn = new AsyncLocalStorage<Turn>();

/**
 * The one question queue of a run (see {@link QuestionQueue}). Hand-written
 * rather than p-queue: a turn taken inside a running turn must run at once
 * instead of queueing behind itself, which needs the async context, not a
 * concurrency limit.
 *
 * @example
 * const questions = createQuestionQueue();
 * const prompter = new InteractivePrompter(queuedAsker(display, questions), { queue: questions });
 */
export function createQuestionQueue(): QuestionQueue {
  let tail: Promise<unknown> = Promise.resolve();
  const queue: QuestionQueue = {
    turn<T>(ask: () => Promise<T>): Promise<T> {
      const inside = currentTurn.getStore();
      if (inside?.queue === queue && inside.open) return ask();
      const turn: Turn = { queue, open: true };
      const run = async (): Promise<T> => {
        try {
          return await currentTurn.run(turn, ask);
        } finally {
          // Work started during the turn that asks later, after it ended, waits like anyone else.
          turn.open = false;
        }
      };
      const next = tail.then(run, run);
      tail = next.catch(() => undefined);
      return next;
    },
  };
  return queue;
}

// The Prompter types live beside the events in core (the core calls them);
// this module keeps the imports that name src/prompts working.
export type { Answer, FailureAnswer, OnFailurePolicy, Prompter, QuestionQueue } from '../core/prompter.ts';
export { PolicyPrompter } from './policy.ts';

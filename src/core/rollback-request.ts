/**
 * How `deploy rollback` tells the task library's `rollback` task where to
 * go and why: a value in `c.shared` under this key, set before the run
 * starts. Defined here, below both, so the CLI does not import the tasks.
 */
export const ROLLBACK_REQUEST = 'deployfile.rollback';

/** What `deploy rollback` asks for. */
export interface RollbackRequest {
  /** A release id (or a unique prefix of it, or of its revision); default the newest healthy release before the current one. */
  to?: string;
  /** Why, recorded with the rollback. */
  message?: string;
  /** Migrate back (with the current release's code) first, when the target's migration state differs. */
  migrateBack?: boolean;
}

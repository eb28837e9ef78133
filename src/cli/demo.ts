/** `deploy demo`: filled in by the task-library work (issue 3). */
export async function demoCommand(_options: Record<string, unknown>): Promise<number> {
  process.stderr.write('deploy demo: not available yet\n');
  return 1;
}

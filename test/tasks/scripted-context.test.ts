import { describe, expect, it } from 'vitest';
import { sh } from '../../src/index.ts';
import { scriptedContext } from '../helpers/task-context.ts';

// What the old FakeContext had drifted away from: task tests now get the engine's own TaskContext.
describe('task tests run on the real TaskContext', () => {
  it('a remote result names the site as user@host:port, as deploy run reports it', async () => {
    const c = scriptedContext();
    const result = await c.run('true');
    expect(result.target).toBe('alleged@web1.example.com:22');
  });

  it('c.sudo with a known password asks the server first whether sudo needs it, once per target user', async () => {
    const c = scriptedContext({ sudoPassword: 'hunter2' });
    c.script('sudo -k -n true', { exitCode: 1 });
    await c.sudo('systemctl reload nginx');
    await c.sudo(sh`systemctl reload ${'uwsgi'}`);
    expect(c.recorder.commands.map((x) => [x.internal, x.line])).toEqual([
      [true, 'sudo -k -n true'],
      [false, "sudo -k -S -p '' -H -- sh -c 'systemctl reload nginx'"],
      [false, "sudo -k -S -p '' -H -- sh -c 'systemctl reload uwsgi'"],
    ]);
    expect(c.recorder.commands[1]?.stdin).toBe('hunter2\n');
  });
});

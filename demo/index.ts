/**
 * `deployfile/demo`: the throwaway world `deploy demo` deploys to, kept out
 * of the core runtime. Only `deploy demo` loads it, so `import 'deployfile'`,
 * `deploy run` and `deploy --help` never load the demo or its embedded SSH
 * server. Like any deployfile it uses only `deployfile` and
 * `deployfile/tasks`; the CLI runs its deployfile with the same composition
 * of engine and views as `deploy run` (src/cli/demo.ts).
 *
 * @example
 * import { createWorkspace, prepareVirtualenv, startDemoTarget } from 'deployfile/demo';
 * const w = await createWorkspace();
 * const target = await startDemoTarget(w, await prepareVirtualenv(w, console.log));
 * // deploy target.deployfile to 127.0.0.1:target.port with target.privateKey, then:
 * await target.close();
 */
export { createWorkspace, DEMO_SITE, removeWorkspace, type Workspace } from './workspace.ts';
export { prepareVirtualenv, type PythonSetup } from './python.ts';
export { fetchRevision, startDemoTarget, type DemoTarget } from './target.ts';

/**
 * What the demo's stand-in uWSGI serves in place of the example's Django
 * app: the same two URLs (`/` and `/revision`) answering from the deployed
 * code dir, read once at (re)start like the real app does, so a reload that
 * did not happen shows as the old revision.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { RequestListener } from 'node:http';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A loaded instance of the app: what it serves until the next reload. */
export interface StandInApp {
  /** `git rev-parse HEAD` of the code dir, or `unknown` (as examples/django-site/pages/revision.py). */
  revision: string;
  handle: RequestListener;
}

/** The example's page template, relative to its code dir. */
const TEMPLATE = 'pages/templates/pages/index.html';

/** Loads the app from `codeDir` as it is now. */
export async function loadStandInApp(codeDir: string): Promise<StandInApp> {
  const revision = await readRevision(codeDir);
  const page = await renderPage(codeDir, revision);
  const handle: RequestListener = (request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    response.setHeader('Server', 'deployfile-demo-stand-in (not uWSGI, not Django)');
    if (path === '/revision') {
      response.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end(revision);
    } else if (path === '/') {
      response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(page);
    } else {
      response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not found (the demo stand-in serves / and /revision)\n');
    }
  };
  return { revision, handle };
}

async function readRevision(codeDir: string): Promise<string> {
  try {
    // The ceiling keeps git from answering for an enclosing repository.
    const { stdout } = await run('git', ['rev-parse', 'HEAD'], { cwd: codeDir, env: { ...process.env, GIT_CEILING_DIRECTORIES: dirname(codeDir) } });
    return stdout.trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * The deployed template filled in the crude way (this is not Django: only
 * `{% load static %}`, `{% static '...' %}` and `{{ revision }}`), so the
 * change the demo shipped in the template shows up in the page.
 */
async function renderPage(codeDir: string, revision: string): Promise<string> {
  let template: string;
  try {
    template = await readFile(join(codeDir, TEMPLATE), 'utf8');
  } catch {
    template = '<!DOCTYPE html>\n<p>Deployed revision: <code id="revision">{{ revision }}</code></p>\n';
  }
  const html = template
    .replace(/\{%\s*load static\s*%\}/g, '')
    .replace(/\{%\s*static\s+'([^']*)'\s*%\}/g, (_match, file: string) => `/static/${file}`)
    .replace(/\{\{\s*revision\s*\}\}/g, revision.replace(/[<>&"]/g, ''));
  return `<!-- Served by deploy demo's stand-in for uWSGI + Django, from ${TEMPLATE} of the deployed code -->\n${html}`;
}

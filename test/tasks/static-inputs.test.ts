import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { STATIC_SCRIPT, type StaticCheck } from '../../tasks/static-inputs.ts';
import { removeTempDirs, tempDir } from '../helpers/temp-dirs.ts';

afterAll(removeTempDirs);

// The script collectstatic runs on the server, run here for real by python3
// on a stand-in site: an app's static dir, a STATICFILES_DIRS entry, the
// settings package, and a STATIC_ROOT with what a collect left there.
let root: string;
const state = () => join(root, 'venv', '.deployfile', 'static.json');
const settings = () => join(root, 'code', 'site');
const appStatic = () => join(root, 'code', 'pages', 'static');
const record = () => ({ staticRoot: join(root, 'static'), places: [appStatic(), join(root, 'code', 'assets'), join(root, 'code', 'blog', 'static')], otherFinders: [] as string[] });

function script<T>(mode: 'check' | 'save', extra: string[] = []): T {
  const r = spawnSync('python3', ['-', mode, '--state', state(), '--settings', settings(), ...extra], { input: STATIC_SCRIPT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as T;
}
const save = (rec = record()) => script<{ saved: boolean; files: number }>('save', ['--record', JSON.stringify(rec)]);
const check = () => script<StaticCheck>('check');

beforeEach(async () => {
  root = await tempDir('deployfile-static-');
  for (const [file, text] of Object.entries({
    'code/pages/static/pages/site.css': 'body {}\n',
    'code/assets/logo.svg': '<svg/>\n',
    'code/site/settings.py': "STATIC_ROOT = '/home/x/static'\n",
    'static/pages/site.css': 'body {}\n',
    'static/logo.svg': '<svg/>\n',
  })) {
    mkdirSync(join(root, file, '..'), { recursive: true });
    writeFileSync(join(root, file), text);
  }
});

describe('the static inputs check collectstatic runs on the server', () => {
  it('without a record of an earlier collect, collects', () => {
    expect(check()).toEqual({ unchanged: false, why: 'no record of an earlier collect' });
  });

  it('after a collect, nothing moved: unchanged, with what STATIC_ROOT holds', () => {
    expect(save()).toEqual({ saved: true, files: 2 });
    expect(check()).toEqual({ unchanged: true, staticRoot: join(root, 'static'), files: 2 });
  });

  it('a changed file in a place the finders read (a pull rewrites it: new mtime) means collect', () => {
    save();
    const later = new Date(Date.now() + 5000);
    utimesSync(join(appStatic(), 'pages', 'site.css'), later, later);
    expect(check()).toMatchObject({ unchanged: false, why: 'static inputs or settings changed' });
  });

  it("an app that gains a static directory, and a changed settings package, mean collect", () => {
    save();
    mkdirSync(join(root, 'code', 'blog', 'static'), { recursive: true });
    writeFileSync(join(root, 'code', 'blog', 'static', 'blog.css'), 'a {}\n');
    expect(check().unchanged).toBe(false);
    save();
    expect(check().unchanged).toBe(true);
    writeFileSync(join(settings(), 'settings.py'), "STATIC_ROOT = '/home/x/static'\nINSTALLED_APPS = ['new']\n");
    expect(check()).toMatchObject({ unchanged: false, why: 'static inputs or settings changed' });
  });

  it('a STATIC_ROOT emptied since the collect means collect', () => {
    save();
    rmSync(join(root, 'static', 'logo.svg'));
    expect(check()).toEqual({ unchanged: false, why: `STATIC_ROOT ${join(root, 'static')} no longer holds what was collected` });
  });

  it('other finders than Django\'s two defaults: never skipped, their inputs are theirs to know', () => {
    save({ ...record(), otherFinders: ['compressor.finders.CompressorFinder'] });
    expect(check()).toEqual({ unchanged: false, why: 'other static finders (compressor.finders.CompressorFinder) read inputs only they know' });
  });
});

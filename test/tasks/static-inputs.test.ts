import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
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

describe('the same check in the releases layout (--release): a new release is a fresh checkout in a new directory', () => {
  // The stand-in's code/ is the first release; a second is a copy of it elsewhere, every file with a new mtime.
  const first = () => join(root, 'code');
  const second = () => join(root, 'releases', 'second');
  const marker = () => join(root, 'home', '.deployfile', 'static-collected.json');
  const inRelease = <T>(mode: 'check' | 'save', release: string, extra: string[] = []): T => {
    const r = spawnSync('python3', ['-', mode, '--state', state(), '--settings', join(release, 'site'), '--release', release, '--marker', marker(), ...extra], { input: STATIC_SCRIPT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as T;
  };
  const newRelease = (): void => {
    cpSync(first(), second(), { recursive: true });
    const later = new Date(Date.now() + 5000);
    utimesSync(join(second(), 'pages', 'static', 'pages', 'site.css'), later, later);
  };

  it('a release with the same inputs as the last collected one is unchanged, though its files are new', () => {
    inRelease('save', first(), ['--record', JSON.stringify(record())]);
    newRelease();
    expect(inRelease<StaticCheck>('check', second())).toEqual({ unchanged: true, staticRoot: join(root, 'static'), files: 2 });
  });

  it('a static file with other content, or a new static directory, in the new release means collect', () => {
    inRelease('save', first(), ['--record', JSON.stringify(record())]);
    newRelease();
    writeFileSync(join(second(), 'pages', 'static', 'pages', 'site.css'), 'body { color: red }\n');
    expect(inRelease<StaticCheck>('check', second())).toMatchObject({ unchanged: false, why: 'static inputs or settings changed' });
    rmSync(second(), { recursive: true });
    newRelease();
    mkdirSync(join(second(), 'blog', 'static'), { recursive: true });
    writeFileSync(join(second(), 'blog', 'static', 'blog.css'), 'a {}\n');
    expect(inRelease<StaticCheck>('check', second())).toMatchObject({ unchanged: false });
  });

  it('after another collect into STATIC_ROOT (a release with another virtualenv), or with that collect cut short, collects', () => {
    inRelease('save', first(), ['--record', JSON.stringify(record())]);
    newRelease();
    expect(inRelease<StaticCheck>('check', second()).unchanged).toBe(true);
    // A release with other requirements collected with its own virtualenv's record: the marker names that one.
    writeFileSync(marker(), JSON.stringify({ state: join(root, 'other-venv', '.deployfile', 'static.json'), fingerprint: 'x' }));
    expect(inRelease<StaticCheck>('check', second())).toEqual({ unchanged: false, why: 'another collect has written to STATIC_ROOT since' });
    // buildRelease removes the marker before it collects: a collect that failed half way leaves none.
    rmSync(marker());
    expect(inRelease<StaticCheck>('check', second())).toEqual({ unchanged: false, why: 'another collect has written to STATIC_ROOT since' });
  });

  it('a record of an in-place collect does not count for a release, nor one of a release in place', () => {
    save();
    expect(inRelease<StaticCheck>('check', first())).toEqual({ unchanged: false, why: 'the last collect was not from a release' });
    inRelease('save', first(), ['--record', JSON.stringify(record())]);
    expect(check()).toEqual({ unchanged: false, why: 'the last collect was from a release' });
  });
});

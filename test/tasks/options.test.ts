import { describe, expect, it } from 'vitest';
import { sh } from '../../src/index.ts';
import { resolveSite, shellPath } from '../../tasks/options.ts';

const site = (name: string, vars: Record<string, unknown> = {}) => ({ name, user: name, host: 'web1', port: 22, vars });

describe('site options', () => {
  it('derive every default from the site name', () => {
    expect(resolveSite(site('alleged'))).toEqual({
      site: 'alleged',
      codeDir: '/home/alleged/Sites/alleged',
      virtualenv: '/home/alleged/virtualenvs/alleged',
      settings: 'alleged',
      vassal: '/etc/uwsgi/emperor.d/alleged.ini',
      requirements: 'REQUIREMENTS',
      healthUrl: undefined,
      uwsgiLog: undefined,
      localDir: process.cwd(),
      layout: 'in-place',
    });
  });

  it('take factory options, as strings with {site} or as functions of the site', () => {
    const resolved = resolveSite(site('alleged'), {
      codeDir: '/srv/{site}/code',
      settings: (s) => `${s.name}_site`,
      healthUrl: 'http://127.0.0.1/{site}/',
    });
    expect(resolved.codeDir).toBe('/srv/alleged/code');
    expect(resolved.settings).toBe('alleged_site');
    expect(resolved.healthUrl).toBe('http://127.0.0.1/alleged/');
    expect(resolved.virtualenv).toBe('/home/alleged/virtualenvs/alleged');
  });

  it("let a site's vars win over the factory's options", () => {
    const resolved = resolveSite(site('alleged', { settings: 'from_vars', uwsgiLog: '/var/log/{site}.log' }), { settings: 'from_options' });
    expect(resolved.settings).toBe('from_vars');
    expect(resolved.uwsgiLog).toBe('/var/log/alleged.log');
  });

  it('refuse a var that is not a string, naming the site and the var', () => {
    expect(() => resolveSite(site('alleged', { codeDir: 42 }))).toThrow('site "alleged": vars.codeDir must be a non-empty string, got 42');
    expect(() => resolveSite(site('alleged', { vassal: '' }))).toThrow('vars.vassal');
  });

  it('shellPath quotes a path but keeps ~/ for the remote shell', () => {
    expect(sh`ls ${shellPath('~/my site')}`.text).toBe("ls ~/'my site'");
    expect(sh`ls ${shellPath('/srv/a b')}`.text).toBe("ls '/srv/a b'");
  });
});

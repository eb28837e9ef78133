import { describe, expect, it } from 'vitest';
import { adminSite } from '../../src/config/admin.ts';
import type { ResolvedSite } from '../../src/config/load.ts';

const site: ResolvedSite = { name: 'alleged', host: 'web1', user: 'alleged', userIsDefault: true, port: 2222, identityFile: '~/.ssh/deploy', forwardAgent: undefined, proxyJump: 'bastion', vars: { settings: 'alleged' } };

describe('adminSite', () => {
  it("reaches the site's host as its admin, keeping port, key and jump hosts, with the site user in vars.siteUser", () => {
    const admin = adminSite({ ...site, admin: 'root' }, 'provision');
    expect(admin).toMatchObject({ name: 'alleged', host: 'web1', user: 'root', userIsDefault: false, port: 2222, identityFile: '~/.ssh/deploy', proxyJump: 'bastion' });
    expect(admin.vars).toEqual({ settings: 'alleged', siteUser: 'alleged' });
  });

  it('says which setting to add when the site has no admin account', () => {
    expect(() => adminSite(site, 'provision')).toThrow(/site alleged has no admin account, which deploy provision needs: add admin: 'root'.*admins: \{ 'web1': 'root' \}/);
  });
});

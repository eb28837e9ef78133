// deployfile.example.ts: three Django sites on one server, each run by its
// own Unix user (alleged@web1, shop@web1, blog@web1), deployed with the
// built-in tasks. Copy it as deployfile.ts and change the names.
//
// Two shapes, mixed freely:
//   - one project deployed to several sites (alleged and shop share the
//     working copy deploy runs in);
//   - a site that is its own project with its own local working copy (blog:
//     `localDir`). Tests and push run once per working copy, and each site
//     is checked against what was pushed from its own.
//
//   deploy list                 the tasks and sites below
//   deploy run deploy           per working copy: test, push; then on every
//                               site: fetch and check, pip, switch the code
//                               with its production settings, collectstatic,
//                               reload uWSGI and wait until the app answers
//   deploy run deploy -s shop   one site only
//   deploy run deploy -n        print the exact commands, run nothing
import { defineDeployfile } from 'deployfile';
import { djangoTasks, type DjangoVars } from 'deployfile/tasks';

export default defineDeployfile<DjangoVars>({
  sites: {
    // The SSH user is the site's name. The code is in /home/alleged/Sites/alleged,
    // the virtualenv in /home/alleged/virtualenvs/alleged, the settings package
    // is `alleged` and the vassal /etc/uwsgi/emperor.d/alleged.ini.
    alleged: { host: 'web1.example.com' },
    // Any of those can be set per site; here the settings package has another name.
    shop: { host: 'web1.example.com', vars: { settings: 'alleged' } },
    // Its own project, in its own working copy next to this one (relative to
    // where you run deploy).
    blog: { host: 'web1.example.com', vars: { localDir: '../blog' } },
  },
  groups: { web1: ['alleged', 'shop', 'blog'] },
  tasks: {
    // test, push, fetch, installRequirements, pull, collectstatic,
    // touchVassalIni, copyProductionSettings, updateRequirements, and deploy.
    ...djangoTasks({
      // `./manage.py test pages`, run once per working copy before anything is pushed.
      apps: ['pages'],
      // Left out of REQUIREMENTS by `deploy run updateRequirements` (pip freeze).
      exclude: ['ipython', 'django-debug-toolbar'],
    }),
  },
});

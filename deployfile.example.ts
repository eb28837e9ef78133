// deployfile.example.ts: two Django sites on one server, each run by its
// own Unix user (alleged@web1, shop@web1), deployed with the built-in tasks.
// Copy it to your project as deployfile.ts and change the names.
//
//   deploy list                 the tasks and sites below
//   deploy run deploy           test, push, then on every site: pull,
//                               production settings, pip, collectstatic,
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
    shop: { host: 'web1.example.com', vars: { settings: 'shop_site' } },
  },
  groups: { web1: ['alleged', 'shop'] },
  tasks: {
    // test, push, pull, copyProductionSettings, installRequirements,
    // collectstatic, touchVassalIni, updateRequirements, and deploy (all in order).
    ...djangoTasks({
      // `./manage.py test pages`, run once on your machine before anything is pushed.
      apps: ['pages'],
      // Left out of REQUIREMENTS by `deploy run updateRequirements` (pip freeze).
      exclude: ['ipython', 'django-debug-toolbar'],
    }),
  },
});

import { siteTarget } from '../core/target.ts';
import { findDeployfile, loadDeployfile } from '../config/load.ts';
import { useColor, style } from '../views/style.ts';
import { reportFatal } from './report.ts';

/** `deploy list`: what a deployfile offers, for people reading it. */
export async function listCommand(flags: { file?: string }): Promise<number> {
  try {
    const deployfile = await loadDeployfile(findDeployfile(flags.file));
    const s = style(useColor(process.stdout));
    const out: string[] = [s.dim(deployfile.file), '', s.bold('Tasks')];
    const names = Object.keys(deployfile.tasks);
    const width = Math.max(0, ...names.map((name) => name.length));
    for (const [name, definition] of Object.entries(deployfile.tasks)) {
      const once = definition.once ? s.dim(' (once per run, on this machine)') : '';
      out.push(`  ${name.padEnd(width)}  ${definition.description ?? ''}${once}`.trimEnd());
    }
    out.push('', s.bold('Sites'));
    const siteWidth = Math.max(0, ...deployfile.sites.map((site) => site.name.length));
    for (const site of deployfile.sites) out.push(`  ${site.name.padEnd(siteWidth)}  ${siteTarget(site)}`);
    const groups = Object.entries(deployfile.groups);
    if (groups.length > 0) {
      out.push('', s.bold('Groups'));
      for (const [name, members] of groups) out.push(`  ${name}: ${members.join(', ')}`);
    }
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  } catch (error) {
    return reportFatal(error);
  }
}
